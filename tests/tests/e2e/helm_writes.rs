//! Helm writes (issue 17, item 2): install, upgrade (dry-run diff, then the
//! plan), rollback and uninstall through nskd running Helm's real release
//! binary against a rig apiserver, each checked against `helm status` /
//! `helm history` run by the test; plans bound to the release's revision;
//! charts outside the allowlist and flag injections refused with nothing
//! sent (the apiserver's audit log is the witness); the timeout kills
//! helm's process group; no private file is left; the tools are hidden
//! without a helm binary.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use nskd_e2e::{
    apiserver_audit::AuditLog,
    daemon::{Daemon, DaemonSpec},
    helm::Helm,
    mcp::Shim,
};
use serde_json::{Value, json};

use crate::{helm::Scratch, rig_or_skip};

const CLUSTER: &str = "c1-sv5";

/// The plan id a dry run answered.
fn plan_of(text: &str) -> String {
    let at = text
        .find("plan: p-")
        .unwrap_or_else(|| panic!("no plan id in: {text}"));
    text[at + 6..at + 6 + 26].to_string()
}

/// nskd's private files left in `tmp` (none may be).
fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nskd-helm-"))
                .collect()
        })
        .unwrap_or_default()
}

/// A daemon whose `[helm]` runs `helm_path`, charts under `chart_dir`,
/// private files under `tmp`.
fn daemon(helm_path: &Path, chart_dir: &Path, tmp: &Path, extra: &str) -> Daemon {
    let rig = crate::rig_or_skip().expect("rig");
    let spec = DaemonSpec {
        default_cluster: Some(CLUSTER.into()),
        sections: format!(
            "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n\
             [helm]\nhelm_path = {:?}\nchart_dirs = [{:?}]\n\
             allowed_repositories = [\"oci://charts.example.com/allowed\"]\n{extra}",
            helm_path.display().to_string(),
            chart_dir.display().to_string(),
        ),
        env: vec![("TMPDIR".into(), tmp.display().to_string())],
        ..DaemonSpec::default()
    };
    Daemon::start(&spec, |dir| rig.write_nskd_kubeconfigs(dir, &[CLUSTER]))
}

fn history(helm: &Helm, ns: &str) -> Vec<Value> {
    let rig = rig_or_skip().expect("rig");
    helm.json(rig.cluster(CLUSTER), &["history", "web", "-n", ns])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn status(helm: &Helm, ns: &str) -> Value {
    let rig = rig_or_skip().expect("rig");
    helm.json(rig.cluster(CLUSTER), &["status", "web", "-n", ns])
}

/// The chart of the latest revision, as `helm history` shows it.
fn chart(helm: &Helm, ns: &str) -> String {
    let h = history(helm, ns);
    h.last().expect("history")["chart"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_writes_do_what_helm_reports_under_plans_and_refuse_what_is_not_allowed() {
    let Some(rig) = rig_or_skip() else { return };
    let Some(helm) = Helm::get() else { return };
    let scratch = Scratch::new(rig, "writes", &[CLUSTER]);
    let ns = scratch.namespace.clone();
    let v1 = helm.chart("0.1.0", "1.0.0");
    let v2 = helm.chart("0.2.0", "2.0.0");
    let charts = v1.parent().expect("chart dir").to_path_buf();
    let (v1, v2) = (v1.display().to_string(), v2.display().to_string());
    let tmp = tempfile::tempdir().expect("tmp");
    let d = daemon(
        helm.path(),
        &charts,
        tmp.path(),
        "timeout = \"60s\"\n[safety]\nrequire_plan = [\"helm_upgrade\"]\n",
    );
    let shim = Shim::start(&d.socket).await;
    let names: Vec<String> = shim
        .tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    for t in [
        "helm_install",
        "helm_upgrade",
        "helm_rollback",
        "helm_uninstall",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} not offered: {names:?}");
    }

    // Install: what helm reports afterwards.
    let out = shim
        .ok(
            "helm_install",
            json!({"name": "web", "namespace": ns, "chart": v1, "values": "greeting: hello-nskd\n"}),
        )
        .await;
    assert!(
        out.contains("revision 1, status deployed, chart nskd-demo-0.1.0"),
        "{out}"
    );
    let st = status(&helm, &ns);
    assert_eq!(st["version"], 1, "{st}");
    assert_eq!(st["info"]["status"], "deployed", "{st}");
    assert_eq!(chart(&helm, &ns), "nskd-demo-0.1.0");
    let values = helm.json(rig.cluster(CLUSTER), &["get", "values", "web", "-n", &ns]);
    assert_eq!(values["greeting"], "hello-nskd", "{values}");

    // Upgrade: a plan is required; the dry run changes nothing and shows
    // the rendered manifest's diff; the plan applies it.
    let upgrade =
        json!({"name": "web", "namespace": ns, "chart": v2, "values": "greeting: upgraded\n"});
    let refused = shim.err("helm_upgrade", upgrade.clone()).await;
    assert!(refused.contains("require_plan"), "{refused}");
    let mut dry = upgrade.clone();
    dry["dryRun"] = json!(true);
    let preview = shim.ok("helm_upgrade", dry.clone()).await;
    assert!(
        preview.contains("Dry run") && preview.contains("bound to revision 1 of the release"),
        "{preview}"
    );
    assert!(
        preview.contains("-  greeting: \"hello-nskd\"")
            && preview.contains("+  greeting: \"upgraded\""),
        "{preview}"
    );
    assert!(!preview.contains("chart-default-password"), "{preview}");
    assert_eq!(
        history(&helm, &ns).len(),
        1,
        "the dry run changed the release"
    );
    let plan = plan_of(&preview);
    let mut apply = upgrade.clone();
    apply["plan"] = json!(plan);
    let applied = shim.ok("helm_upgrade", apply.clone()).await;
    assert!(
        applied.contains("Applied plan") && applied.contains("revision 2"),
        "{applied}"
    );
    let st = status(&helm, &ns);
    assert_eq!(st["version"], 2, "{st}");
    assert_eq!(chart(&helm, &ns), "nskd-demo-0.2.0");
    // Used once.
    let again = shim.err("helm_upgrade", apply).await;
    assert!(again.contains("unknown"), "{again}");

    // A plan is bound to the release's revision: helm moves it meanwhile,
    // the plan is refused with a fresh preview and nothing is run.
    let mut dry2 = dry.clone();
    dry2["values"] = json!("greeting: second\n");
    let plan = plan_of(&shim.ok("helm_upgrade", dry2.clone()).await);
    helm.ok(
        rig.cluster(CLUSTER),
        &["upgrade", "web", &v2, "-n", &ns, "--reuse-values"],
    );
    let mut stale = dry2.clone();
    stale["dryRun"] = json!(false);
    stale["plan"] = json!(plan);
    let moved = shim.err("helm_upgrade", stale).await;
    assert!(
        moved.contains("moved from revision 2 to 3") && moved.contains("new plan: p-"),
        "{moved}"
    );
    assert_eq!(history(&helm, &ns).len(), 3, "a stale plan ran");

    // Rollback to revision 1.
    let rolled = shim
        .ok(
            "helm_rollback",
            json!({"name": "web", "namespace": ns, "revision": 1}),
        )
        .await;
    assert!(rolled.contains("helm_rollback"), "{rolled}");
    let h = history(&helm, &ns);
    let last = h.last().expect("history");
    assert_eq!(last["revision"], 4, "{h:?}");
    assert!(
        last["description"]
            .as_str()
            .unwrap_or("")
            .contains("Rollback to 1"),
        "{last}"
    );
    assert_eq!(chart(&helm, &ns), "nskd-demo-0.1.0");

    // Refused before anything is sent: charts outside the allowlist, flag
    // injections, hostile names.
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let mark = audit.mark();
    let outside = tempfile::tempdir().expect("outside");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": "oci://evil.example.com/chart"}),
            "allowed_repositories",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": "https://charts.example.com/allowed-not/x"}),
            "allowed_repositories",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": outside.path().display().to_string()}),
            "chart_dirs",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": format!("{}/../../../etc", v1)}),
            "chart",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": "--post-renderer=/bin/sh"}),
            "chart",
        ),
        (
            "helm_install",
            json!({"name": "--post-renderer", "namespace": ns, "chart": v1}),
            "name",
        ),
        (
            "helm_install",
            json!({"name": "-web", "namespace": ns, "chart": v1}),
            "name",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": "--kubeconfig=/etc/passwd", "chart": v1}),
            "namespace",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": v1, "version": "--kubeconfig=/x"}),
            "version",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": v1, "version": "1.0 --debug"}),
            "version",
        ),
        (
            "helm_install",
            json!({"name": "evil", "namespace": ns, "chart": v1, "values": "- a\n- b\n"}),
            "values",
        ),
        (
            "helm_upgrade",
            json!({"name": "web\n--post-renderer", "namespace": ns, "chart": v1}),
            "name",
        ),
        (
            "helm_rollback",
            json!({"name": "web", "namespace": ns, "revision": -3}),
            "revision",
        ),
        (
            "helm_uninstall",
            json!({"name": "x".repeat(100_000), "namespace": ns}),
            "name",
        ),
    ];
    for (tool, args, field) in &cases {
        let err = shim.err(tool, args.clone()).await;
        assert!(err.contains(field), "{tool} {args}: {err}");
        assert!(
            !err.contains("helm exit"),
            "helm ran for {tool} {args}: {err}"
        );
    }
    let (events, _) = audit.fence(&mark);
    let sent: Vec<String> = events
        .iter()
        .filter(|e| e.is_nskd() && !e.is_discovery())
        // Health probes list nodes and namespaces meanwhile: anything
        // that writes, or touches the release's namespace, counts.
        .filter(|e| e.is_mutating() || e.object_ref.as_ref().is_some_and(|o| o.namespace == ns))
        .map(|e| e.describe())
        .collect();
    assert!(
        sent.is_empty(),
        "refused writes reached the apiserver: {sent:#?}"
    );
    assert_eq!(
        history(&helm, &ns).len(),
        4,
        "a refused write changed the release"
    );

    // Uninstall: the dry run shows every object going, then it goes.
    let preview = shim
        .ok(
            "helm_uninstall",
            json!({"name": "web", "namespace": ns, "dryRun": true}),
        )
        .await;
    assert!(
        preview.contains("-kind: ConfigMap") && preview.contains("-kind: Secret"),
        "{preview}"
    );
    assert!(!preview.contains("chart-default-password"), "{preview}");
    let gone = shim
        .ok("helm_uninstall", json!({"name": "web", "namespace": ns}))
        .await;
    assert!(gone.contains("uninstalled"), "{gone}");
    let st = helm.run(rig.cluster(CLUSTER), &["status", "web", "-n", &ns]);
    assert!(!st.status.success(), "the release is still there");

    // Audited like every change, and no private file left behind.
    let audit_text = std::fs::read_to_string(d.home.path().join("audit.jsonl")).expect("audit log");
    for verb in [
        "helm_install",
        "helm_upgrade",
        "helm_rollback",
        "helm_uninstall",
    ] {
        assert!(
            audit_text.contains(verb),
            "{verb} not audited: {audit_text}"
        );
    }
    assert!(
        !audit_text.contains("hello-nskd"),
        "values reached the audit log"
    );
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    shim.close().await;
    drop(scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_helm_the_writes_are_hidden_and_a_slow_helm_is_killed_with_its_group() {
    let Some(_rig) = rig_or_skip() else { return };
    let charts = tempfile::tempdir().expect("charts");
    std::fs::create_dir_all(charts.path().join("web")).expect("chart");
    let tmp = tempfile::tempdir().expect("tmp");

    // No binary: hidden, refused, and doctor says why and how to fix it.
    let d = daemon(
        Path::new("/nonexistent/helm"),
        charts.path(),
        tmp.path(),
        "",
    );
    let shim = Shim::start(&d.socket).await;
    let names: Vec<String> = shim
        .tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "helm_list"), "{names:?}");
    for t in [
        "helm_install",
        "helm_upgrade",
        "helm_rollback",
        "helm_uninstall",
    ] {
        assert!(!names.iter().any(|n| n == t), "{t} offered without helm");
    }
    let doctor = d.nskctl(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        report.contains("helm writes") && report.contains("[helm] helm_path"),
        "{report}"
    );
    shim.close().await;
    drop(d);

    // A helm that hangs (and starts a child that would outlive it): killed
    // with its process group past [helm] timeout; nothing left behind.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let marker = tmp.path().join("child.pid");
    let fake = bin.join("helm");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nsleep 120 &\necho $! > {}\nwait\n",
            marker.display()
        ),
    )
    .expect("fake helm");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let private = tmp.path().join("private");
    std::fs::create_dir_all(&private).expect("private");
    let d = daemon(&fake, charts.path(), &private, "timeout = \"1s\"\n");
    let shim = Shim::start(&d.socket).await;
    let started = std::time::Instant::now();
    let err = shim
        .err(
            "helm_uninstall",
            json!({"name": "web", "namespace": "default"}),
        )
        .await;
    assert!(
        err.contains("was killed") && err.contains("[helm] timeout"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let pid = std::fs::read_to_string(&marker).expect("child pid");
    std::thread::sleep(Duration::from_millis(300));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "helm's child still runs: {stat}"
    );
    assert!(leftovers(&private).is_empty(), "{:?}", leftovers(&private));
    shim.close().await;
}
