//! Metrics, health endpoints, the audit trail and health at scale.

use std::{os::unix::fs::PermissionsExt, time::Instant};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec, text},
    endpoints::{BlackHole, http_get, refused_port},
    fake_nsk::FakeState,
    mcp::Shim,
    rig::{DISRUPTABLE, SHARED},
};
use serde_json::{Value, json};

use crate::{eventually, nsk, rig_or_skip};

fn json_get(port: u16, path: &str) -> (u16, Value) {
    let (status, body) = http_get(port, path);
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_endpoints_and_audit_show_real_activity() {
    let Some(rig) = rig_or_skip() else { return };
    let port = refused_port();
    let (d, fake, _home) = nsk::nsk_daemon_with_server(
        rig,
        FakeState::default(),
        false,
        "",
        &format!("port = {port}"),
    );
    let shim = Shim::start(&d.socket).await;
    shim.ok("nsk_refresh", json!({})).await;
    fake.update(|s| {
        s.fail = Some(nskd_e2e::fake_nsk::FakeFailure::new(
            1,
            "Error: unknown command \"x\"",
        ))
    });
    shim.call("nsk_refresh", json!({"force": true})).await;
    fake.update(|s| s.fail = None);
    shim.ok(
        "pods_list",
        json!({"cluster": "c1-sv5", "namespace": "shop"}),
    )
    .await;
    shim.ok("clusters_status", json!({"refresh": true})).await;
    shim.ok("nsk_get", json!({"cluster_name": "c1-dfw1"})).await;

    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{metrics}");
    for want in [
        "kubernetes_mcp_cluster_total{environment=\"e2e\"} 3",
        "kubernetes_mcp_cluster_healthy{environment=\"e2e\",cluster=\"c1-sv5\"} 1",
        "kubernetes_mcp_refresh_success_total{environment=\"e2e\"} 1",
        // The label is the failure's kind: nsk's "unknown command" is internal.
        "kubernetes_mcp_refresh_failure_total{environment=\"e2e\",reason=\"internal\"} 1",
        "kubernetes_mcp_refresh_duration_seconds_count{environment=\"e2e\"} 2",
        "kubernetes_mcp_cluster_api_latency_seconds_count{environment=\"e2e\",cluster=\"c1-sv5\",operation=\"list\"} 1",
        "kubernetes_mcp_cluster_api_latency_seconds_count{environment=\"e2e\",cluster=\"c1-dfw1\",operation=\"probe\"}",
        "nskd_tool_calls_total{environment=\"e2e\",tool=\"pods_list\",outcome=\"ok\"} 1",
        "nskd_tool_calls_total{environment=\"e2e\",tool=\"nsk_refresh\",outcome=\"error\"} 1",
        "nskd_tool_call_duration_seconds_count{environment=\"e2e\",tool=\"nsk_refresh\",outcome=\"ok\"} 1",
        "nskd_grpc_requests_total{environment=\"e2e\",method=\"List\",code=\"OK\"} 1",
        "nskd_connected_clients{environment=\"e2e\"} 1",
    ] {
        assert!(
            metrics.contains(want),
            "missing {want:?} in /metrics:\n{metrics}"
        );
    }
    assert!(!metrics.contains(nsk::TOKEN));

    for path in ["/healthz", "/health"] {
        let (status, body) = json_get(port, path);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("ok")),
            "{path}: {body}"
        );
    }
    for path in ["/readyz", "/ready"] {
        let (status, body) = json_get(port, path);
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["total_clusters"], 3, "{body}");
        assert_eq!(body["healthy_clusters"], 3, "{body}");
        assert_eq!(body["nsk_configured"], true, "{body}");
        assert!(body["last_refresh"].is_string(), "{body}");
        assert!(body.get("next_refresh").is_some(), "{body}");
        assert_eq!(body["components"]["socket"]["ready"], true, "{body}");
    }
    assert_eq!(http_get(port, "/nope").0, 404);

    // The audit trail: every refresh and credential fetch, with who and how.
    let audit_path = d.home.path().join("audit.jsonl");
    assert_eq!(
        std::fs::metadata(&audit_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(
        !audit.contains(nsk::TOKEN) && !audit.contains("NSKSECRET"),
        "{audit}"
    );
    let entries: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refreshes: Vec<&Value> = entries.iter().filter(|e| e["verb"] == "refresh").collect();
    assert_eq!(refreshes.len(), 2, "{audit}");
    assert_eq!(refreshes[0]["tool"], "nsk_refresh");
    assert_eq!(
        refreshes[0]["peer_uid"],
        rustix::process::geteuid().as_raw()
    );
    assert!(!refreshes[0]["session"].as_str().unwrap().is_empty());
    assert!(
        refreshes[1]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Failed"),
        "{audit}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["verb"] == "get-kubeconfig" && e["name"] == "c1-dfw1"),
        "{audit}"
    );
    assert!(
        !entries.iter().any(|e| e["verb"] == "list"),
        "reads are audited only with audit_reads"
    );
    let out = d.nskctl(&["audit", "--tail", "2"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.contains("get-kubeconfig") && stdout.contains("via nsk_get"),
        "{stdout}"
    );
    shim.close().await;
}

#[test]
fn readyz_follows_cluster_health() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let port = refused_port();
    let spec = DaemonSpec {
        server: format!("port = {port}\naudit_reads = true"),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &[DISRUPTABLE]));
    let ready =
        |want: u16| eventually(15.0, || (http_get(port, "/readyz").0 == want).then_some(()));
    assert!(ready(200).is_some(), "{}", http_get(port, "/readyz").1);
    rig.stop_apiserver(DISRUPTABLE);
    let went_down = ready(503);
    let (_, body) = json_get(port, "/readyz");
    rig.start_apiserver(DISRUPTABLE);
    assert!(
        went_down.is_some(),
        "readyz stayed 200 with the only cluster down: {body}"
    );
    assert_eq!(body["components"]["clusters"]["ready"], false, "{body}");
    assert!(
        ready(200).is_some(),
        "readyz did not recover: {}",
        http_get(port, "/readyz").1
    );
    // With audit_reads, reads are audited too.
    d.nskctl(&["status"]);
    let _ = d;
}

#[test]
fn two_hundred_clusters_with_twenty_dead_answer_within_one_probe_timeout() {
    let Some(rig) = rig_or_skip() else { return };
    let hole = BlackHole::open();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        for i in 0..180 {
            let src = &rig.cluster(SHARED[i % 3]).kubeconfig;
            let text = std::fs::read_to_string(src).unwrap();
            std::fs::write(dir.join(format!("c2-{i:03}.yaml")), text).unwrap();
        }
        for i in 0..20 {
            rig.write_unreachable(dir, &format!("c9-dead{i:02}"), "c1-sv5", hole.port);
        }
    });
    let started = Instant::now();
    let status = d.status_json(&[]);
    let took = started.elapsed();
    eprintln!("status of 200 clusters (20 black-holed) took {took:?}");
    let clusters = status["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 200);
    let ready = clusters.iter().filter(|c| c["status"] == "Ready").count();
    // Dead ones are NotReady, or (probe still running at the deadline)
    // Unknown with an error saying so.
    let dead = clusters
        .iter()
        .filter(|c| c["status"] != "Ready" && c["error"].as_str().is_some_and(|e| !e.is_empty()))
        .count();
    assert_eq!((ready, dead), (180, 20), "{status}");
    // probe_timeout is 3 s; one timeout plus client setup, never 20 timeouts.
    assert!(
        took.as_secs_f64() < 4.5,
        "status of 200 clusters took {took:?}"
    );
    let cached = Instant::now();
    d.status_json(&["--cached"]);
    assert!(
        cached.elapsed().as_secs_f64() < 1.0,
        "the tracker answers instantly: {:?}",
        cached.elapsed()
    );
}
