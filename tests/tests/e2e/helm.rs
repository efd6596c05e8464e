//! Helm releases (issue 17): releases written by Helm's own release binary
//! on three rig clusters at different chart versions and states, read by
//! nskd from Helm's storage without a helm binary, and compared field by
//! field with what helm itself reports. Then hostile records and hostile
//! arguments, with the apiserver's audit log as the witness.

use base64::Engine as _;
use nskd_e2e::{
    apiserver_audit::AuditLog,
    daemon::{Daemon, DaemonSpec},
    helm::Helm,
    kubeapi,
    mcp::Shim,
    rig::{Rig, SHARED},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

/// The password the tests set; never in a masked answer.
const PASSWORD: &str = "s3cr3t-helm-one";
/// The chart's default password (in computed values).
const CHART_PASSWORD: &str = "chart-default-password";

fn b64(s: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A namespace on some clusters, deleted (with its releases) when dropped.
pub(crate) struct Scratch {
    rig: &'static Rig,
    pub(crate) namespace: String,
    clusters: Vec<&'static str>,
    /// Held until the namespace is gone (tests that count namespaces wait).
    _namespaces: tokio::sync::RwLockWriteGuard<'static, ()>,
}

impl Scratch {
    pub(crate) fn new(rig: &'static Rig, tag: &str, clusters: &[&'static str]) -> Scratch {
        let guard = tokio::task::block_in_place(|| nskd_e2e::rig::NAMESPACES.blocking_write());
        let namespace = format!("helm-{tag}-{}", std::process::id());
        for c in clusters {
            kubeapi::call(
                rig.cluster(c),
                "POST",
                "/api/v1/namespaces",
                Some(&json!({"metadata": {"name": namespace}}).to_string()),
            );
        }
        Scratch {
            rig,
            namespace,
            clusters: clusters.to_vec(),
            _namespaces: guard,
        }
    }
}

impl Drop for Scratch {
    /// The rig has no namespace controller: the release records and the
    /// chart's objects are deleted first, so that no later `"*"` answer
    /// sees them.
    fn drop(&mut self) {
        for c in &self.clusters {
            let c = self.rig.cluster(c);
            for kind in ["secrets", "configmaps"] {
                let path = format!("/api/v1/namespaces/{}/{kind}", self.namespace);
                let _ = kubeapi::try_call(c, "DELETE", &path, None);
            }
            let path = format!("/api/v1/namespaces/{}", self.namespace);
            let _ = kubeapi::try_call(c, "DELETE", &path, None);
            // No namespace controller finalizes it: empty its finalizers so
            // it is gone now, not Terminating for the other tests.
            let finalized = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.namespace}, "spec": {"finalizers": []},
            });
            let _ = kubeapi::try_call(
                c,
                "PUT",
                &format!("{path}/finalize"),
                Some(&finalized.to_string()),
            );
        }
    }
}

/// Helm's `time.Time.String()` of an RFC 3339 time, as `helm list` shows it.
fn go_time(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").trim_end_matches('Z').to_string() + " +0000 UTC"
}

/// An answer's JSON; a cached answer's note (a part of its own) left out.
fn parse(text: &str) -> Value {
    let json = text
        .split(&format!("\n{}", nskd_e2e::mcp::FROM_CACHE))
        .next()
        .unwrap_or("");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Installs, upgrades, fails and rolls back releases; returns the scratch
/// namespace. c1-sv5: `demo` 0.1.0 installed, failed upgrade, rolled back
/// (revision 3, deployed) and `cmrel` 0.1.0 in the ConfigMap driver;
/// c1-dfw1: `demo` 0.2.0 deployed; c1-lax1: `demo` 0.2.0, failed upgrade.
fn write_releases(rig: &'static Rig, helm: &Helm) -> Scratch {
    let s = Scratch::new(rig, "e2e", &SHARED);
    let ns = s.namespace.as_str();
    let v1 = helm.chart("0.1.0", "1.0.0");
    let v2 = helm.chart("0.2.0", "2.0.0");
    let (v1, v2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    let pw = format!("database.password={PASSWORD}");
    let sv5 = rig.cluster("c1-sv5");
    helm.ok(sv5, &["install", "demo", v1, "-n", ns, "--set", &pw]);
    let failed = helm.run(
        sv5,
        &["upgrade", "demo", v1, "-n", ns, "--set", "fail=true"],
    );
    assert!(!failed.status.success(), "the failing upgrade succeeded");
    helm.ok(sv5, &["rollback", "demo", "1", "-n", ns]);
    let cm = helm.run_env(
        sv5,
        &["install", "cmrel", v1, "-n", ns, "--set", "greeting=cm"],
        &[("HELM_DRIVER", "configmap")],
    );
    assert!(
        cm.status.success(),
        "{}",
        String::from_utf8_lossy(&cm.stderr)
    );
    helm.ok(rig.cluster("c1-dfw1"), &["install", "demo", v2, "-n", ns]);
    let lax = rig.cluster("c1-lax1");
    helm.ok(
        lax,
        &["install", "demo", v2, "-n", ns, "--set", "replicas=3"],
    );
    let failed = helm.run(
        lax,
        &["upgrade", "demo", v2, "-n", ns, "--set", "fail=true"],
    );
    assert!(!failed.status.success(), "the failing upgrade succeeded");
    s
}

fn daemon(rig: &Rig, top: &str) -> Daemon {
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        top: top.into(),
        ..DaemonSpec::default()
    };
    Daemon::start(&spec, |dir| rig.write_nskd_kubeconfigs(dir, &SHARED))
}

/// The configmap-driver release is read by helm only with that driver.
fn helm_list(helm: &Helm, rig: &Rig, cluster: &str, ns: &str) -> Vec<Value> {
    let c = rig.cluster(cluster);
    let mut all: Vec<Value> = Vec::new();
    for driver in ["secret", "configmap"] {
        let out = helm.run_env(
            c,
            &["list", "-n", ns, "-o", "json"],
            &[("HELM_DRIVER", driver)],
        );
        assert!(out.status.success());
        let v = parse(&String::from_utf8_lossy(&out.stdout));
        all.extend(v.as_array().cloned().unwrap_or_default());
    }
    all.sort_by_key(|v| v["name"].as_str().unwrap_or("").to_string());
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_reads_match_what_helm_itself_reports() {
    let Some(rig) = rig_or_skip() else { return };
    let Some(helm) = Helm::get() else { return };
    let scratch = write_releases(rig, &helm);
    let ns = scratch.namespace.as_str();
    let masked = daemon(rig, "");
    let shim = Shim::start(&masked.socket).await;
    let revealed = daemon(rig, "reveal_secrets = true\n");
    let clear = Shim::start(&revealed.socket).await;
    let mut answers: Vec<String> = Vec::new();

    // helm_list: every field of every release, per cluster.
    for cluster in SHARED {
        let want = helm_list(&helm, rig, cluster, ns);
        assert!(!want.is_empty(), "helm lists nothing on {cluster}");
        let got = parse(
            &shim
                .ok(
                    "helm_list",
                    json!({"cluster": cluster, "namespace": ns, "output": "json"}),
                )
                .await,
        );
        let got = got.as_array().expect("array");
        assert_eq!(got.len(), want.len(), "{cluster}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(&want) {
            for key in [
                "name",
                "namespace",
                "revision",
                "status",
                "chart",
                "app_version",
            ] {
                assert_eq!(g[key], w[key], "{cluster} {key}: nskd {g} helm {w}");
            }
            assert_eq!(
                go_time(g["updated"].as_str().unwrap()),
                w["updated"].as_str().unwrap(),
                "{cluster}"
            );
        }
    }

    // The fleet question, and the table of all three.
    let fleet = json!({"clusters": SHARED, "namespace": ns});
    let summary = shim
        .ok(
            "helm_list",
            json!({"clusters": SHARED, "namespace": ns, "summary": true}),
        )
        .await;
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["nskd-demo", "0.1.0", "deployed", "1", "2", "c1-sv5"],
        "{summary}"
    );
    assert_eq!(
        rows[1],
        ["nskd-demo", "0.2.0", "deployed", "1", "1", "c1-dfw1"],
        "{summary}"
    );
    assert_eq!(
        rows[2],
        ["nskd-demo", "0.2.0", "failed", "1", "1", "c1-lax1"],
        "{summary}"
    );
    assert!(summary.contains("4 releases on 3 clusters"), "{summary}");
    // One merged table: CLUSTER first, then helm's columns.
    let table = shim.ok("helm_list", fleet.clone()).await;
    assert!(table.starts_with("CLUSTER"), "{table}");
    for c in SHARED {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(c) && l.contains("demo")),
            "{c}: {table}"
        );
    }
    let items = parse(
        &shim
            .ok(
                "helm_list",
                json!({"clusters": SHARED, "namespace": ns, "output": "json"}),
            )
            .await,
    );
    assert_eq!(items.as_array().map(Vec::len), Some(4), "{items}");
    let failed_only = shim
        .ok(
            "helm_list",
            json!({"clusters": SHARED, "namespace": ns, "status": "failed", "summary": true}),
        )
        .await;
    assert!(
        failed_only.contains("1 releases on 3 clusters"),
        "{failed_only}"
    );
    let by_chart = shim
        .ok(
            "helm_list",
            json!({"clusters": "*", "chart": "no-such-chart", "namespace": ns}),
        )
        .await;
    assert!(!by_chart.contains("demo"), "{by_chart}");

    // helm_status and helm_history, field by field.
    for cluster in SHARED {
        let c = rig.cluster(cluster);
        let want = helm.json(c, &["status", "demo", "-n", ns]);
        let got = parse(
            &shim
                .ok(
                    "helm_status",
                    json!({"cluster": cluster, "name": "demo", "namespace": ns, "output": "json"}),
                )
                .await,
        );
        assert_eq!(got["name"], want["name"]);
        assert_eq!(got["namespace"], want["namespace"]);
        assert_eq!(got["revision"], want["version"]);
        for key in [
            "status",
            "description",
            "first_deployed",
            "last_deployed",
            "notes",
        ] {
            assert_eq!(got[key], want["info"][key], "{cluster} {key}");
        }
        let text = shim
            .ok(
                "helm_status",
                json!({"cluster": cluster, "name": "demo", "namespace": ns}),
            )
            .await;
        assert!(
            text.contains(&format!(
                "STATUS: {}",
                want["info"]["status"].as_str().unwrap()
            )),
            "{text}"
        );
        answers.push(text);

        let want = helm.json(c, &["history", "demo", "-n", ns]);
        let got = parse(
            &shim
                .ok(
                    "helm_history",
                    json!({"cluster": cluster, "name": "demo", "namespace": ns, "output": "json"}),
                )
                .await,
        );
        assert_eq!(got, want, "{cluster} history");
    }
    let history = shim
        .ok("helm_history", json!({"name": "demo", "namespace": ns}))
        .await;
    let revisions: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{history}");
    assert!(history.contains("Rollback to 1"), "{history}");

    // Values, manifest, notes: identical to helm's with reveal_secrets, masked without.
    let sv5 = rig.cluster("c1-sv5");
    for (all, flag) in [(false, None), (true, Some("--all"))] {
        let mut args = vec!["get", "values", "demo", "-n", ns];
        args.extend(flag);
        let want = helm.json(sv5, &args);
        let call = json!({"name": "demo", "namespace": ns, "all": all, "output": "json"});
        let got = parse(&clear.ok("helm_get_values", call.clone()).await);
        assert_eq!(got, want, "values all={all} with reveal_secrets");
        let masked_text = shim.ok("helm_get_values", call).await;
        let got = parse(&masked_text);
        let mut expected = want.clone();
        let pw = expected["database"]["password"]
            .as_str()
            .unwrap()
            .to_string();
        expected["database"]["password"] = json!(format!(
            "[MASKED: {} bytes; reveal_secrets is off]",
            pw.len()
        ));
        assert_eq!(got, expected, "values all={all} masked");
        answers.push(masked_text);
    }
    let yaml = shim
        .ok("helm_get_values", json!({"name": "demo", "namespace": ns}))
        .await;
    assert!(yaml.starts_with("USER-SUPPLIED VALUES:\n"), "{yaml}");
    answers.push(yaml);
    for cluster in SHARED {
        let want = helm.ok(rig.cluster(cluster), &["get", "manifest", "demo", "-n", ns]);
        let args = json!({"cluster": cluster, "name": "demo", "namespace": ns});
        let got = clear.ok("helm_get_manifest", args.clone()).await;
        assert_eq!(got.trim_end(), want.trim_end(), "{cluster} manifest");
        let masked_manifest = shim.ok("helm_get_manifest", args.clone()).await;
        let config_map = want
            .split("---")
            .find(|d| d.contains("kind: ConfigMap"))
            .unwrap();
        assert!(
            masked_manifest.contains(config_map.trim()),
            "{masked_manifest}"
        );
        assert!(
            masked_manifest.contains("kind: Secret") && masked_manifest.contains("[MASKED:"),
            "{masked_manifest}"
        );
        answers.push(masked_manifest);
        let want = helm.ok(rig.cluster(cluster), &["get", "notes", "demo", "-n", ns]);
        let got = shim.ok("helm_get_notes", args).await;
        assert_eq!(got.trim_end(), want.trim_end(), "{cluster} notes");
    }
    // One revision by number: the failed upgrade's values.
    let rev2 = parse(
        &shim
            .ok(
                "helm_get_values",
                json!({"name": "demo", "namespace": ns, "revision": 2, "output": "json"}),
            )
            .await,
    );
    assert_eq!(
        rev2,
        helm.json(sv5, &["get", "values", "demo", "-n", ns, "--revision", "2"])
    );

    // nskctl over the same API.
    let out = masked.nskctl_json(&[
        "helm",
        "list",
        "--clusters",
        "c1-sv5,c1-dfw1,c1-lax1",
        "--namespace",
        ns,
        "--chart",
        "nskd-demo",
    ]);
    let counts: Vec<usize> = SHARED
        .iter()
        .map(|c| {
            out["releases"]
                .as_array()
                .unwrap_or_else(|| panic!("{out}"))
                .iter()
                .filter(|r| r["cluster"] == *c)
                .count()
        })
        .collect();
    assert_eq!(counts, [2, 1, 1], "{out}");
    let text = masked.nskctl(&[
        "helm",
        "list",
        "--clusters",
        "*",
        "--namespace",
        ns,
        "--summary",
    ]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success() && stdout.contains("nskd-demo"),
        "{stdout}"
    );

    for a in &answers {
        for secret in [PASSWORD, &b64(PASSWORD), CHART_PASSWORD] {
            assert!(!a.contains(secret), "{secret} leaked: {a}");
        }
    }
    // A change after lists were answered (and remembered) shows at once.
    let dfw = rig.cluster("c1-dfw1");
    let v1 = helm.chart("0.1.0", "1.0.0");
    helm.ok(dfw, &["upgrade", "demo", v1.to_str().unwrap(), "-n", ns]);
    let got = parse(
        &shim
            .ok(
                "helm_list",
                json!({"cluster": "c1-dfw1", "namespace": ns, "output": "json"}),
            )
            .await,
    );
    let want = helm_list(&helm, rig, "c1-dfw1", ns);
    assert_eq!(got[0]["revision"], "2", "{got}");
    assert_eq!(got[0]["chart"], want[0]["chart"], "{got}");
    assert_eq!(got[0]["chart"], "nskd-demo-0.1.0", "{got}");
    let missing = shim
        .err("helm_status", json!({"name": "nope", "namespace": ns}))
        .await;
    assert!(
        missing.contains("nope") && missing.contains("helm_list"),
        "{missing}"
    );
    let no_rev = shim
        .err(
            "helm_status",
            json!({"name": "demo", "namespace": ns, "revision": 9}),
        )
        .await;
    assert!(
        no_rev.contains("no revision 9") && no_rev.contains("1, 2, 3"),
        "{no_rev}"
    );
    drop(scratch);
}

/// A release Secret as Helm's driver writes it, holding `stored` (Helm's
/// base64 text) under `release`.
fn record(name: &str, stored: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{name}.v1"),
                     "labels": {"owner": "helm", "name": name, "version": "1", "status": "deployed"}},
        "data": {"release": b64(stored)}})
}

fn gzip_b64(data: &[u8]) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    b64(gz.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_release_records_and_arguments_are_refused() {
    let Some(rig) = rig_or_skip() else { return };
    let cluster = "c1-sv5";
    let scratch = Scratch::new(rig, "abuse", &[cluster]);
    let ns = scratch.namespace.clone();
    let c = rig.cluster(cluster);
    let good = json!({"name": "good", "namespace": ns, "version": 1,
        "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z", "notes": "ok"},
        "chart": {"metadata": {"name": "c", "version": "1.0.0"}}, "config": {}, "manifest": ""});
    let bomb = vec![b' '; 64 * 1024 * 1024];
    for (name, stored) in [
        ("good", gzip_b64(good.to_string().as_bytes())),
        ("bomb", gzip_b64(&bomb)),
        ("badb64", "%%% not base64 %%%".to_string()),
        (
            "badjson",
            gzip_b64(b"{\"name\": \"badjson\", \"version\": "),
        ),
    ] {
        kubeapi::call(
            c,
            "POST",
            &format!("/api/v1/namespaces/{ns}/secrets"),
            Some(&record(name, &stored).to_string()),
        );
    }
    let d = daemon(rig, "");
    let shim = Shim::start(&d.socket).await;

    // One broken record hides no other; each says what is wrong.
    let list = shim.ok("helm_list", json!({"namespace": ns})).await;
    assert!(list.contains("good") && list.contains("c-1.0.0"), "{list}");
    for (name, why) in [
        ("bomb", "decompresses to more than"),
        ("badb64", "not base64"),
        ("badjson", "not valid Helm release JSON"),
    ] {
        assert!(
            list.lines()
                .any(|l| l.starts_with("! ") && l.contains(name) && l.contains(why)),
            "{name}: {list}"
        );
        let err = shim
            .err("helm_status", json!({"name": name, "namespace": ns}))
            .await;
        assert!(
            err.contains(why) && err.contains(name) && err.contains(cluster),
            "{err}"
        );
    }
    let ok = shim
        .ok("helm_status", json!({"name": "good", "namespace": ns}))
        .await;
    assert!(ok.contains("STATUS: deployed"), "{ok}");
    let summary = shim
        .ok(
            "helm_list",
            json!({"clusters": [cluster], "namespace": ns, "summary": true}),
        )
        .await;
    assert!(summary.contains("(unreadable)"), "{summary}");

    // Hostile arguments: refused before anything is sent.
    let audit = AuditLog::for_cluster(rig, cluster);
    let mark = audit.mark();
    let long = "a".repeat(54);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "helm_status",
            json!({"name": "good,owner=helm", "namespace": ns}),
            "name",
        ),
        (
            "helm_status",
            json!({"name": "../good", "namespace": ns}),
            "name",
        ),
        (
            "helm_status",
            json!({"name": "good\n", "namespace": ns}),
            "name",
        ),
        (
            "helm_status",
            json!({"name": "good%2F..", "namespace": ns}),
            "name",
        ),
        (
            "helm_history",
            json!({"name": long, "namespace": ns}),
            "name",
        ),
        (
            "helm_get_values",
            json!({"name": "--post-renderer=/bin/sh", "namespace": ns}),
            "name",
        ),
        (
            "helm_get_manifest",
            json!({"name": "x --kubeconfig=/etc/passwd", "namespace": ns}),
            "name",
        ),
        (
            "helm_get_notes",
            json!({"name": "good", "namespace": "default/../kube-system"}),
            "namespace",
        ),
        (
            "helm_status",
            json!({"name": "good", "namespace": ns, "revision": -1}),
            "revision",
        ),
        (
            "helm_list",
            json!({"namespace": "kube-system\u{0}"}),
            "namespace",
        ),
        ("helm_list", json!({"chart": "x/../y"}), "chart"),
        ("helm_list", json!({"chart": "c,owner=helm"}), "chart"),
        ("helm_list", json!({"name": "x,name!=y"}), "name"),
        (
            "helm_list",
            json!({"status": "deployed,owner=helm"}),
            "status",
        ),
        (
            "helm_list",
            json!({"status": "x".repeat(100_000)}),
            "status",
        ),
    ];
    for (tool, args, field) in &cases {
        let err = shim.err(tool, args.clone()).await;
        assert!(err.contains(field), "{tool} {args}: {err}");
    }
    let (events, _) = audit.fence(&mark);
    // The other helm test's daemon reads its own namespace meanwhile.
    let other = format!("helm-e2e-{}", std::process::id());
    let sent: Vec<String> = events
        .iter()
        .filter(|e| e.is_nskd() && !e.is_discovery())
        .filter(|e| {
            e.object_ref.as_ref().is_none_or(|o| {
                matches!(o.resource.as_str(), "secrets" | "configmaps") && o.namespace != other
            })
        })
        .map(|e| e.describe())
        .collect();
    assert!(
        sent.is_empty(),
        "hostile arguments reached the apiserver: {sent:#?}"
    );
    drop(scratch);
}
