//! The nsk CLI source against the fake nsk, whose kubeconfigs point at the
//! real test apiservers: refresh, store, staleness, every fault knob, and
//! the token never leaking.

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec, text},
    fake_nsk::{FakeCluster, FakeFailure, FakeNsk, FakeState},
    mcp::Shim,
    rig::{Rig, SHARED},
};
use serde_json::{Value, json};

use crate::{eventually, rig_or_skip};

/// The Rancher token the daemon is configured with; must never show up.
pub const TOKEN: &str = "token-e2e01:NSKSECRETTOKENVALUE0123456789";

fn fake_clusters(rig: &Rig) -> Vec<FakeCluster> {
    SHARED
        .iter()
        .enumerate()
        .map(|(i, name)| FakeCluster::from_rig(rig.cluster(name), &format!("c-m-000{i}")))
        .collect()
}

/// A daemon on the nsk source, with the fake installed beside it.
pub fn nsk_daemon(
    rig: &Rig,
    state: FakeState,
    auto_refresh: bool,
    extra_nsk: &str,
) -> (Daemon, FakeNsk, tempfile::TempDir) {
    nsk_daemon_with_server(rig, state, auto_refresh, extra_nsk, "")
}

/// Same, with extra `[server]` keys.
pub fn nsk_daemon_with_server(
    rig: &Rig,
    state: FakeState,
    auto_refresh: bool,
    extra_nsk: &str,
    server: &str,
) -> (Daemon, FakeNsk, tempfile::TempDir) {
    let fake_home = tempfile::tempdir().unwrap();
    let fake = FakeNsk::create(
        &fake_home.path().join("fake"),
        FakeState {
            expected_token: Some(TOKEN.into()),
            clusters: if state.clusters.is_empty() {
                fake_clusters(rig)
            } else {
                state.clusters.clone()
            },
            ..state
        },
    );
    // Tests force refreshes back to back, unless they test the spacing.
    let spacing = if extra_nsk.contains("min_force_interval") {
        ""
    } else {
        "min_force_interval = \"0s\"\n"
    };
    let spec = DaemonSpec {
        sections: format!(
            "[health]
probe_timeout = \"3s\"
probe_interval = \"2s\"
[nsk]
source = \"nsk\"
nsk_path = {:?}
rancher_token = {TOKEN:?}
profile = \"e2e\"
config_dir = {:?}
auto_refresh = {auto_refresh}
refresh_interval = \"1h\"
{spacing}{extra_nsk}",
            fake.path().display().to_string(),
            fake_home.path().join("nskconf").display().to_string(),
        ),
        server: server.to_string(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |_| {});
    (d, fake, fake_home)
}

fn clusters(d: &Daemon) -> Vec<String> {
    let v = d.nskctl_json(&["clusters"]);
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn refresh(d: &Daemon, args: &[&str]) -> (Value, i32) {
    let mut all = vec!["--json", "refresh"];
    all.extend_from_slice(args);
    let out = d.nskctl(&all);
    let (stdout, stderr) = text(&out);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("refresh json: {e}: {stdout}{stderr}"));
    (v, out.status.code().unwrap_or(-1))
}

fn assert_no_token(what: &str, text: &str) {
    assert!(
        !text.contains(TOKEN) && !text.contains("NSKSECRETTOKENVALUE"),
        "the Rancher token leaked into {what}:\n{text}"
    );
}

fn file_bytes(d: &Daemon, name: &str) -> Vec<u8> {
    std::fs::read(d.kubeconfig_dir.join(format!("{name}.yaml"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsk_source_fetches_validates_stores_and_serves_real_clusters() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), true, "");
    let all = eventually(10.0, || (clusters(&d).len() == 3).then_some(()));
    assert!(
        all.is_some(),
        "clusters not fetched: {:?}\n{}",
        clusters(&d),
        d.log_text()
    );

    // Stored privately, one file per cluster.
    assert_eq!(
        std::fs::metadata(&d.kubeconfig_dir)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    for name in SHARED {
        let meta = std::fs::metadata(d.kubeconfig_dir.join(format!("{name}.yaml"))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
    }
    let listed = d.nskctl_json(&["clusters"]);
    assert!(
        listed["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["source"] == "nsk"),
        "{listed}"
    );

    // Served live.
    let status = d.status_json(&[]);
    for c in status["clusters"].as_array().unwrap() {
        assert_eq!(c["status"], "Ready", "{c}");
    }
    let shim = Shim::start(&d.socket).await;
    let ns = shim
        .ok(
            "namespaces_list",
            json!({"cluster": "c1-dfw1", "labelSelector": "cluster=c1-dfw1"}),
        )
        .await;
    assert!(ns.contains("shop"), "{ns}");

    // The refresh view ("NSK Integration Status"), from real history.
    let view = shim.ok("clusters_refresh_status", json!({})).await;
    for want in [
        "NSK Integration Status",
        "Profile: e2e",
        "Rancher URL: -",
        "Auto-Refresh: Enabled (every 1h)",
        "Status: Success",
        "Success (3 clusters refreshed, 3 added)",
        "c1-sv5: Active",
        "Next Refresh: ",
    ] {
        assert!(view.contains(want), "missing {want:?}:\n{view}");
    }
    let status_text = shim.ok("nsk_status", json!({})).await;
    assert!(
        status_text.contains("Token: set, valid (user alice"),
        "{status_text}"
    );

    // nsk_get: a summary without credentials; save stores it.
    let got = shim.ok("nsk_get", json!({"cluster_name": "c1-lax1"})).await;
    assert!(
        got.contains(&rig.cluster("c1-lax1").server) && got.contains("nothing fetched"),
        "{got}"
    );
    assert!(
        !got.contains(&rig.cluster("c1-lax1").admin_token),
        "kubeconfig token leaked:\n{got}"
    );
    let saved = shim
        .ok("nsk_get", json!({"cluster_name": "c1-lax1", "save": true}))
        .await;
    assert!(saved.contains("c1-lax1.yaml (unchanged)"), "{saved}");
    let missing = shim
        .err("nsk_get", json!({"cluster_name": "c1-nope"}))
        .await;
    assert!(
        missing.contains("c1-nope") && missing.contains("not found"),
        "{missing}"
    );
    let missing = shim
        .err("nsk_get", json!({"cluster_name": "c1-nope", "save": true}))
        .await;
    assert!(
        missing.contains("c1-nope") && missing.contains("not found"),
        "{missing}"
    );

    // The child's environment: Rancher variables set, the rest an allowlist; never the token on argv.
    let calls = fake.calls();
    assert!(!calls.is_empty());
    let allowed = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "RANCHER_URL",
        "RANCHER_TOKEN",
        "RANCHER_INSECURE",
        "NSK_PROFILE",
        "NSK_CONFDIR",
        "NSK_DEBUG",
    ];
    for call in &calls {
        assert_eq!(call["rancher_token_matches"], true, "{call}");
        assert_eq!(call["nsk_profile"], "e2e", "{call}");
        assert_eq!(
            call["nsk_debug"], "true",
            "daemon logs at debug, so NSK_DEBUG=true: {call}"
        );
        for name in call["env_names"].as_array().unwrap() {
            let name = name.as_str().unwrap();
            // The LLVM profiling runtime of a coverage build of the fake sets
            // __LLVM_PROFILE_RT_INIT_ONCE in its own environment (scripts/coverage).
            assert!(
                allowed.contains(&name)
                    || ["PWD", "SHLVL", "_", "__LLVM_PROFILE_RT_INIT_ONCE"].contains(&name),
                "{name} leaked into nsk's environment"
            );
        }
        assert_no_token("nsk argv", &call["argv"].to_string());
    }
    let list_calls = calls
        .iter()
        .filter(|c| c["argv"] == json!(["cluster", "list", "--output", "json"]))
        .count();
    assert!(list_calls >= 1);
    let per_cluster = calls
        .iter()
        .filter(|c| c["argv"].to_string().contains("--stdout"))
        .count();
    assert!(
        per_cluster >= 3,
        "one `nsk cluster kubeconfig --name X --stdout` per cluster"
    );

    // The token never reaches logs, nskctl or MCP output.
    for args in [
        &["status"][..],
        &["clusters"],
        &["history"],
        &["source"],
        &["--json", "source"],
        &["--json", "history"],
    ] {
        let out = d.nskctl(args);
        let (o, e) = text(&out);
        assert_no_token(&format!("nskctl {args:?}"), &format!("{o}{e}"));
    }
    for tool in [
        "nsk_status",
        "clusters_refresh_status",
        "clusters_status",
        "clusters_list",
    ] {
        assert_no_token(tool, &shim.ok(tool, json!({})).await);
    }
    assert_no_token("the daemon log", &d.log_text());
    assert!(
        d.log_text().contains("rancher_auth=\"token configured\""),
        "logs say whether a token is set"
    );
    shim.close().await;
}

#[test]
fn failures_never_lose_a_good_kubeconfig_and_show_it_stale() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "");
    let (first, code) = refresh(&d, &[]);
    assert_eq!(
        (first["outcome"].as_str(), code),
        (Some("Success"), 0),
        "{first}"
    );
    let before = file_bytes(&d, "c1-dfw1");

    // A recent success is not repeated without force.
    let (skipped, _) = refresh(&d, &[]);
    assert!(
        skipped["note"].as_str().unwrap().contains("use force"),
        "{skipped}"
    );

    // One cluster fails (retryable 500: retried, then reported); the others refresh.
    fake.update(|s| s.fail_clusters = vec!["c1-dfw1".into()]);
    let (partial, code) = refresh(&d, &["--force"]);
    assert_eq!(
        (partial["outcome"].as_str(), code),
        (Some("Partial"), 0),
        "{partial}"
    );
    assert_eq!(partial["failed"][0]["cluster"], "c1-dfw1");
    assert!(
        partial["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("500"),
        "{partial}"
    );
    assert_eq!(
        file_bytes(&d, "c1-dfw1"),
        before,
        "the good kubeconfig must stay"
    );
    crate::assert_served_stale(&d, "c1-dfw1");
    let detail = text(&d.nskctl(&["status", "c1-dfw1"])).0;
    assert!(detail.contains("Kubeconfig Refresh: FAILING"), "{detail}");
    let history = text(&d.nskctl(&["history"])).0;
    assert!(
        history.contains("Partial (2/3 clusters, c1-dfw1 failed)"),
        "{history}"
    );
    assert!(history.contains("c1-dfw1: Inactive"), "{history}");

    // Garbage from nsk: nothing parsed, nothing replaced.
    fake.update(|s| {
        s.fail_clusters.clear();
        s.garbage = true;
    });
    let (garbage, code) = refresh(&d, &["--force"]);
    assert_eq!(
        (garbage["outcome"].as_str(), code),
        (Some("Failed"), 1),
        "{garbage}"
    );
    assert!(
        garbage["error"]
            .as_str()
            .unwrap()
            .contains("not the expected JSON"),
        "{garbage}"
    );
    assert_eq!(file_bytes(&d, "c1-dfw1"), before);

    // An old nsk without --output json: the table is parsed instead.
    fake.update(|s| {
        s.garbage = false;
        s.no_json_output = true;
    });
    let (table, _) = refresh(&d, &["--force"]);
    assert_eq!(table["outcome"], "Success", "{table}");

    // The cluster recovers: fresh again.
    let status = d.status_json(&["c1-dfw1"]);
    assert_eq!(status["clusters"][0]["status"], "Ready", "{status}");

    // A cluster that left Rancher is retired to .removed/ and shown Removed.
    fake.update(|s| s.clusters.retain(|c| c.name != "c1-lax1"));
    let (removed, _) = refresh(&d, &["--force"]);
    assert_eq!(removed["removed"], json!(["c1-lax1"]), "{removed}");
    assert!(d.kubeconfig_dir.join(".removed/c1-lax1.yaml").exists());
    assert!(!clusters(&d).contains(&"c1-lax1".to_string()));
    let history = text(&d.nskctl(&["history"])).0;
    assert!(
        history.contains("c1-lax1: Removed (not in Rancher anymore"),
        "{history}"
    );

    // Rancher listing nothing at all is treated as a failure, not as "delete everything".
    fake.update(|s| s.list_only = Some(vec![]));
    fake.update(|s| s.clusters.clear());
    let (empty, _) = refresh(&d, &["--force"]);
    assert_eq!(empty["outcome"], "Failed", "{empty}");
    assert_eq!(clusters(&d).len(), 2);
}

#[test]
fn an_expired_token_is_not_retried_and_says_what_to_do() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "");
    refresh(&d, &[]);
    let calls_before = fake.calls().len();
    fake.update(|s| s.token_expired = true);
    let started = std::time::Instant::now();
    let (failed, code) = refresh(&d, &["--force"]);
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    assert_eq!(code, 1);
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("token expired") && error.contains("renew"),
        "{error}"
    );
    assert_eq!(
        fake.calls().len(),
        calls_before + 1,
        "auth failures are not retried"
    );
    assert_eq!(clusters(&d).len(), 3, "kubeconfigs are kept");
    let out = d.nskctl(&["source"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("check FAILED") && stdout.contains("renew"),
        "{stdout}"
    );
    let doctor = d.nskctl(&["doctor"]);
    let (report, _) = text(&doctor);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  rancher token:") && report.contains("renew"),
        "{report}"
    );
    assert_no_token("nskctl doctor", &report);
    assert_no_token("nskctl source", &stdout);
    // A wrong token: the invalid-token message, also not retried.
    fake.update(|s| {
        s.token_expired = false;
        s.expected_token = Some("token-other:SOMEONEELSESTOKEN000000".into());
    });
    let (invalid, _) = refresh(&d, &["--force"]);
    assert!(
        invalid["error"].as_str().unwrap().contains("invalid token"),
        "{invalid}"
    );
    assert_no_token("daemon log", &d.log_text());
}

#[test]
fn a_partial_list_retires_clusters_without_deleting_them_and_they_come_back() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "");
    refresh(&d, &[]);
    fake.update(|s| s.list_only = Some(vec!["c1-sv5".into(), "c1-dfw1".into()]));
    let (partial, _) = refresh(&d, &["--force"]);
    assert_eq!(partial["removed"], json!(["c1-lax1"]), "{partial}");
    assert!(
        d.kubeconfig_dir.join(".removed/c1-lax1.yaml").exists(),
        "retired, not deleted"
    );
    fake.update(|s| s.list_only = None);
    let (back, _) = refresh(&d, &["--force"]);
    assert_eq!(back["added"], json!(["c1-lax1"]), "{back}");
    let history = text(&d.nskctl(&["history"])).0;
    assert!(!history.contains("c1-lax1: Removed"), "{history}");
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "");
    fake.update(|s| s.transient_failures = 2);
    fake.reset_counter();
    let started = std::time::Instant::now();
    let (ok, code) = refresh(&d, &[]);
    assert_eq!(
        (ok["outcome"].as_str(), code),
        (Some("Success"), 0),
        "{ok}\n{}",
        d.log_text()
    );
    // Backoff 1 s then 2 s (jittered): at least ~2 s.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let lists = fake
        .calls()
        .iter()
        .filter(|c| c["argv"][1] == "list")
        .count();
    assert_eq!(lists, 3, "two failures, then success");
    assert!(d.log_text().contains("retrying"), "retries are logged");
}

#[test]
fn a_hanging_nsk_is_killed_with_its_children_at_the_timeout() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "timeout = \"1s\"\n");
    fake.update(|s| s.hang = true);
    let started = std::time::Instant::now();
    let (failed, code) = refresh(&d, &[]);
    // 4 attempts of 1 s and 3 jittered backoffs (at most 2 + 4 + 8 s).
    let took = started.elapsed();
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert_eq!(code, 1, "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s"),
        "{failed}"
    );
    for call in fake.calls() {
        if let Some(pid) = call["grandchild_pid"].as_i64() {
            let alive = eventually(2.0, || {
                (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
            });
            assert!(alive.is_some(), "nsk's child {pid} survived the timeout");
        }
    }
}

#[test]
fn concurrent_refreshes_share_one_run() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "");
    fake.update(|s| s.slow_ms = 1500);
    let socket = d.socket.clone();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                nskd_e2e::daemon::nskctl(&socket, &["--json", "refresh", "--force"])
            })
        })
        .collect();
    let answers: Vec<Value> = handles
        .into_iter()
        .map(|h| serde_json::from_slice(&h.join().unwrap().stdout).unwrap())
        .collect();
    assert!(answers.iter().any(|a| a["joined"] == true), "{answers:?}");
    assert!(
        answers.iter().all(|a| a["outcome"] == "Success"),
        "{answers:?}"
    );
    let lists = fake
        .calls()
        .iter()
        .filter(|c| c["argv"][1] == "list")
        .count();
    assert_eq!(lists, 1, "one run for both callers");
}

#[test]
fn a_failing_nsk_and_a_missing_one_are_explained() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "");
    // nsk echoing the token in its error: it appears nowhere.
    let leaky = format!(
        "Error: something odd in nsk (sent RANCHER_TOKEN {TOKEN} to https://rancher.example.com)"
    );
    fake.update(|s| s.fail = Some(FakeFailure::new(1, &leaky)));
    let (failed, code) = refresh(&d, &[]);
    assert_eq!(code, 1);
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("something odd in nsk"),
        "{failed}"
    );
    assert_no_token("the refresh answer", &failed.to_string());
    assert_no_token("the daemon log", &d.log_text());
    assert_no_token(
        "the audit log",
        &std::fs::read_to_string(d.home.path().join("audit.jsonl")).unwrap(),
    );
    assert_no_token("nskctl history", &text(&d.nskctl(&["history"])).0);
    std::fs::remove_file(fake.path()).unwrap();
    let (missing, _) = refresh(&d, &["--force"]);
    assert!(
        missing["error"].as_str().unwrap().contains("nsk_path"),
        "{missing}"
    );
}

#[test]
fn bulk_mode_lets_nsk_write_and_the_daemon_validate_and_store() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(rig, FakeState::default(), false, "bulk_refresh = true\n");
    fake.update(|s| s.fail_clusters = vec!["c1-lax1".into()]);
    let (partial, code) = refresh(&d, &[]);
    assert_eq!(
        (partial["outcome"].as_str(), code),
        (Some("Partial"), 0),
        "{partial}\n{}",
        d.log_text()
    );
    assert_eq!(partial["added"], json!(["c1-dfw1", "c1-sv5"]), "{partial}");
    assert_eq!(partial["failed"][0]["cluster"], "c1-lax1");
    let bulk_calls: Vec<Value> = fake
        .calls()
        .into_iter()
        .filter(|c| c["argv"][1] == "kubeconfig")
        .collect();
    assert_eq!(bulk_calls.len(), 1, "{bulk_calls:?}");
    assert!(!bulk_calls[0]["argv"].to_string().contains("--stdout"));
    for name in ["c1-sv5", "c1-dfw1"] {
        let meta = std::fs::metadata(d.kubeconfig_dir.join(format!("{name}.yaml"))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let status = d.status_json(&["c1-dfw1"]);
    assert_eq!(status["clusters"][0]["status"], "Ready", "{status}");
}

#[test]
fn a_credential_about_to_expire_brings_the_next_refresh_forward() {
    let Some(rig) = rig_or_skip() else { return };
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 20 * 60;
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
    };
    let jwt = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"exp":{exp}}}"#))
    );
    let mut clusters = fake_clusters(rig);
    let mut expiring = clusters[0].renamed("c9-expiring", "c-m-0099");
    expiring.token = jwt;
    clusters.push(expiring);
    let (d, _fake, _home) = nsk_daemon(rig, FakeState::with_clusters(clusters), true, "");
    let scheduled = eventually(10.0, || {
        let h = d.nskctl_json(&["history"]);
        let next = h["next_refresh_ms"].as_i64().unwrap_or(0);
        (next > 0).then_some(next)
    })
    .unwrap_or_else(|| panic!("no next refresh scheduled:\n{}", d.log_text()));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let in_minutes = (scheduled - now_ms) / 60_000;
    assert!(
        in_minutes < 10,
        "refresh_interval is 1h but a token expires in 20 min: next refresh in {in_minutes} min"
    );
    let listed = d.nskctl_json(&["clusters"]);
    let c = listed["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "c9-expiring")
        .unwrap()
        .clone();
    assert!(c["token_expiry_ms"].as_i64().unwrap() > now_ms, "{c}");
}
