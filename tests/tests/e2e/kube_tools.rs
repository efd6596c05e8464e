//! The generic Kubernetes read tools through the real shim and daemon.

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    endpoints::refused_port,
    mcp::Shim,
    rig::SHARED,
};
use serde_json::json;

use crate::rig_or_skip;

fn rows(text: &str) -> usize {
    crate::data_rows(text).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_tools_answer_from_real_clusters_with_secrets_masked() {
    let Some(rig) = rig_or_skip() else { return };
    let dead = refused_port();
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        rig.write_kubeconfigs(dir, &SHARED);
        rig.write_unreachable(dir, "c9-dead", "c1-sv5", dead);
    });
    let shim = Shim::start(&d.socket).await;

    let names: Vec<String> = shim
        .tools()
        .await
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for want in [
        "resources_list",
        "resources_get",
        "pods_get",
        "nodes_list",
        "events_list",
        "clusters_list",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }

    let deployments = shim
        .ok(
            "resources_list",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "shop"}),
        )
        .await;
    assert!(
        deployments.starts_with("NAME") && deployments.contains("frontend"),
        "{deployments}"
    );
    let by_short_name = shim
        .ok(
            "resources_list",
            json!({"kind": "svc", "namespace": "shop"}),
        )
        .await;
    assert!(by_short_name.contains("frontend"), "{by_short_name}");
    let cms = shim
        .ok(
            "resources_list",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "output": "json"}),
        )
        .await;
    assert!(cms.contains("\"app-config\""), "{cms}");

    let nodes = shim.ok("nodes_list", json!({})).await;
    assert_eq!(rows(&nodes), 3, "{nodes}");
    assert!(nodes.contains("Ready"), "{nodes}");
    let in_ns = shim.ok("pods_list", json!({"namespace": "payments"})).await;
    assert_eq!(rows(&in_ns), 3, "{in_ns}");
    shim.ok("events_list", json!({"namespace": "shop"})).await;

    // One object, YAML by default, JSON on request, managedFields stripped.
    let pod_name = in_ns
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let pod = shim
        .ok(
            "pods_get",
            json!({"name": pod_name, "namespace": "payments"}),
        )
        .await;
    assert!(
        pod.contains(&format!("name: {pod_name}")) && pod.contains("kind: Pod"),
        "{pod}"
    );
    assert!(!pod.contains("managedFields"), "{pod}");
    let deploy = shim.ok("resources_get", json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend", "namespace": "shop", "output": "json"})).await;
    assert!(deploy.contains("\"kind\": \"Deployment\""), "{deploy}");

    // Secrets: masked in get (yaml and json) and in list yaml/json; the table shows no values.
    let secret_value_b64 = "czNjcjN0LWMxLXN2NQ=="; // base64 of s3cr3t-c1-sv5
    for (tool, args) in [
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        ),
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Secret", "name": "db-credentials", "namespace": "shop", "output": "json"}),
        ),
        (
            "resources_list",
            json!({"apiVersion": "v1", "kind": "Secret", "namespace": "shop", "output": "yaml"}),
        ),
        (
            "resources_list",
            json!({"apiVersion": "v1", "kind": "Secret", "namespace": "shop", "output": "json"}),
        ),
        (
            "resources_list",
            json!({"apiVersion": "v1", "kind": "Secret", "namespace": "shop"}),
        ),
    ] {
        let text = shim.ok(tool, args.clone()).await;
        assert!(
            !text.contains(secret_value_b64) && !text.contains("s3cr3t"),
            "{tool} {args} leaked the secret:\n{text}"
        );
        assert!(text.contains("db-credentials"), "{text}");
    }
    let masked = shim
        .ok(
            "resources_get",
            json!({"kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        )
        .await;
    assert!(masked.contains("MASKED"), "{masked}");

    // Not found and unknown kinds say so, naming the cluster.
    let missing = shim
        .err(
            "pods_get",
            json!({"name": "no-such-pod", "namespace": "shop"}),
        )
        .await;
    assert!(
        missing.contains("no-such-pod") && missing.contains("c1-sv5") && missing.contains("404"),
        "{missing}"
    );
    let unknown = shim
        .err("resources_list", json!({"kind": "Frobnicator"}))
        .await;
    assert!(unknown.contains("Frobnicator"), "{unknown}");

    // Many clusters, with a dead one inline.
    let across = shim.ok("resources_list", json!({"kind": "Deployment", "namespace": "shop", "clusters": ["c1-sv5", "c1-lax1", "c9-dead"]})).await;
    assert!(
        across.starts_with("CLUSTER ")
            && across.contains("\nc1-lax1 ")
            && across.contains("1 cluster failed (connection refused): c9-dead"),
        "{across}"
    );

    let described = shim
        .ok(
            "resources_describe",
            json!({"kind": "Pod", "name": pod_name, "namespace": "payments"}),
        )
        .await;
    for want in [
        "Name:         ",
        "Namespace:    payments",
        "Kind:         Pod (v1)",
        "Containers:",
        "Image:",
        "Events:",
    ] {
        assert!(described.contains(want), "missing {want:?}:\n{described}");
    }
    let svc = shim
        .ok(
            "resources_describe",
            json!({"kind": "Service", "name": "frontend", "namespace": "shop"}),
        )
        .await;
    assert!(
        svc.contains("ClusterIP:") && svc.contains("Selector:     app=frontend"),
        "{svc}"
    );
    let secret = shim
        .ok(
            "resources_describe",
            json!({"kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        )
        .await;
    assert!(!secret.contains("s3cr3t"), "{secret}");

    // Single-object reads take `clusters` too; changes refuse it.
    let rollouts = shim.ok("rollout_status", json!({"kind": "Deployment", "name": "frontend", "namespace": "shop", "clusters": ["c1-sv5", "c1-lax1"]})).await;
    assert!(
        rollouts.contains("=== cluster c1-sv5 ===")
            && rollouts.contains("=== cluster c1-lax1 ===")
            && rollouts.contains("Waiting"),
        "{rollouts}"
    );
    let stats = shim
        .call(
            "nodes_stats_summary",
            json!({"name": "node-1", "clusters": ["c1-sv5", "c1-dfw1"]}),
        )
        .await;
    assert!(
        stats.text.contains("clusters failed") && stats.text.contains("c1-dfw1"),
        "{}",
        stats.text
    );
    let many_delete = shim.err("resources_delete", json!({"kind": "ConfigMap", "name": "app-config", "namespace": "shop", "clusters": ["c1-sv5", "c1-lax1"]})).await;
    // A single-object change does not take `clusters` (not advertised either).
    assert!(
        many_delete.contains("unknown field `clusters`"),
        "{many_delete}"
    );

    let view = shim.ok("configuration_view", json!({})).await;
    assert!(
        view.contains("current-context: c1-sv5") && view.contains("token: REDACTED"),
        "{view}"
    );
    assert_eq!(
        view.matches("- name: ").count(),
        3,
        "minified: one cluster, context, user:\n{view}"
    );
    assert!(!view.contains(&rig.cluster("c1-sv5").admin_token), "{view}");
    let full = shim
        .ok("configuration_view", json!({"minified": false}))
        .await;
    assert!(
        full.contains("c1-lax1") && full.contains("c9-dead"),
        "{full}"
    );
    for tool in ["pods_top", "nodes_top"] {
        let top = shim.err(tool, json!({})).await;
        assert!(
            top.contains("metrics-server") && top.contains("c1-sv5"),
            "{tool}: {top}"
        );
    }

    let contexts = shim.ok("clusters_list", json!({})).await;
    assert!(
        contexts.contains("c1-sv5 *") && contexts.contains("c9-dead"),
        "{contexts}"
    );
    shim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denials_name_the_verb_resource_cluster_and_user() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        std::fs::copy(
            &rig.cluster("c1-dfw1").kubeconfig_noperm,
            dir.join("c1-dfw1-noperm.yaml"),
        )
        .unwrap();
    });
    let shim = Shim::start(&d.socket).await;
    let denied = shim
        .err(
            "resources_get",
            json!({"kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        )
        .await;
    for want in ["c1-dfw1-noperm", "get", "secrets", "403", "noperm", "RBAC"] {
        assert!(denied.contains(want), "missing {want:?} in: {denied}");
    }
    shim.close().await;
}

/// tools/list is the agents' contract: any change to a name, argument or
/// annotation must be deliberate. Regenerate with NSKD_UPDATE_GOLDEN=1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_matches_the_golden_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let shim = Shim::start(&dir.path().join("none.sock")).await;
    let mut tools: Vec<serde_json::Value> = shim
        .tools()
        .await
        .into_iter()
        .map(|t| serde_json::to_value(&t).unwrap())
        .collect();
    tools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let actual = serde_json::to_string_pretty(&tools).unwrap() + "\n";
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/tools.json");
    if std::env::var("NSKD_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        actual == expected,
        "tools/list changed; review and regenerate with NSKD_UPDATE_GOLDEN=1 cargo test -p nskd-e2e tools_list_matches\n{actual}"
    );
    shim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_secrets_is_the_only_way_to_see_secret_values() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        top: "reveal_secrets = true\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-lax1"]));
    let shim = Shim::start(&d.socket).await;
    let text = shim
        .ok(
            "resources_get",
            json!({"kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        )
        .await;
    assert!(
        text.contains("czNjcjN0LWMxLWxheDE="),
        "reveal_secrets = true shows the value:\n{text}"
    );
    shim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star_over_three_clusters_with_a_black_hole_answers_within_the_request_timeout() {
    let Some(rig) = rig_or_skip() else { return };
    let hole = nskd_e2e::endpoints::BlackHole::open();
    let spec = DaemonSpec {
        sections: "[health]\nprobe_timeout = \"2s\"\nprobe_interval = \"1h\"\n[pool]\nrequest_timeout = \"2s\"\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5", "c1-dfw1"]);
        rig.write_unreachable(dir, "c9-hole", "c1-sv5", hole.port);
    });
    let shim = Shim::start(&d.socket).await;
    let started = std::time::Instant::now();
    let every = shim.ok("namespaces_list", json!({"clusters": "*"})).await;
    let took = started.elapsed();
    eprintln!("\"*\" over 3 clusters, one black-holed: {took:?}");
    assert!(took.as_secs_f64() < 4.0, "{took:?}");
    assert!(
        every.starts_with("CLUSTER ")
            && every.contains("\nc1-sv5 ")
            && every.contains("\nc1-dfw1 "),
        "{every}"
    );
    assert!(
        every.contains("c9-hole")
            && (every.contains("timed out after 2s") || every.contains("deadline has elapsed")),
        "{every}"
    );
    shim.close().await;
}
