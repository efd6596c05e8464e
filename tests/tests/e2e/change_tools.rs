//! Tools that change clusters, on the disruptable cluster only, and the
//! safety switches that refuse them.

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    mcp::Shim,
    rig::DISRUPTABLE,
};
use serde_json::json;

use crate::rig_or_skip;

const MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: e2e-changes
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: e2e-changes
data:
  mode: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: e2e-changes
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
        - name: api
          image: registry.invalid/api:1
"#;

fn spec(extra_top: &str) -> DaemonSpec {
    DaemonSpec {
        default_cluster: Some(DISRUPTABLE.into()),
        top: extra_top.into(),
        ..DaemonSpec::default()
    }
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_scale_restart_status_and_delete_on_a_real_cluster() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let d = Daemon::start(&spec(""), |dir| rig.write_kubeconfigs(dir, &[DISRUPTABLE]));
    let shim = Shim::start(&d.socket).await;

    // Unique per run: the test clusters run no namespace controller, so a
    // deleted namespace stays Terminating for good.
    let ns = format!("e2e-changes-{}", std::process::id());
    let manifest = MANIFEST.replace("e2e-changes", &ns);
    let created = shim
        .ok("resources_create_or_update", json!({"resource": manifest}))
        .await;
    assert!(
        created.contains(&format!("namespaces/{ns} created")),
        "{created}"
    );
    assert!(
        created.contains(&format!("deployments.apps/api in namespace {ns} created")),
        "{created}"
    );
    let again = shim
        .ok(
            "resources_create_or_update",
            json!({"resource": manifest.replace("mode: blue", "mode: green")}),
        )
        .await;
    assert!(
        again.contains(&format!("configmaps/settings in namespace {ns} configured")),
        "{again}"
    );
    let cm = shim
        .ok(
            "resources_get",
            json!({"kind": "ConfigMap", "name": "settings", "namespace": ns}),
        )
        .await;
    assert!(cm.contains("mode: green"), "{cm}");

    let scaled = shim.ok("resources_scale", json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "namespace": ns, "scale": 3})).await;
    assert!(scaled.contains("scaled from 1 to 3"), "{scaled}");
    let restarted = shim
        .ok(
            "rollout_restart",
            json!({"kind": "Deployment", "name": "api", "namespace": ns}),
        )
        .await;
    assert!(restarted.contains("restarted"), "{restarted}");
    let deploy = shim
        .ok(
            "resources_get",
            json!({"kind": "Deployment", "name": "api", "namespace": ns}),
        )
        .await;
    assert!(
        deploy.contains("replicas: 3") && deploy.contains("kubectl.kubernetes.io/restartedAt"),
        "{deploy}"
    );
    // No controller-manager runs in the test clusters: the rollout is never observed.
    let status = shim
        .ok(
            "rollout_status",
            json!({"kind": "Deployment", "name": "api", "namespace": ns}),
        )
        .await;
    assert!(status.contains("Waiting"), "{status}");

    let deleted = shim
        .ok(
            "resources_delete",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "settings", "namespace": ns}),
        )
        .await;
    assert!(deleted.contains("deleted"), "{deleted}");
    let gone = shim
        .err(
            "resources_get",
            json!({"kind": "ConfigMap", "name": "settings", "namespace": ns}),
        )
        .await;
    assert!(gone.contains("404"), "{gone}");

    let run = shim
        .ok(
            "pods_run",
            json!({"image": "registry.invalid/team/web:2.1", "namespace": ns, "port": 8080}),
        )
        .await;
    assert!(
        run.contains("pods/web-") && run.contains("created"),
        "{run}"
    );
    let pod_name = run
        .split("pods/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let pod = shim
        .ok("pods_get", json!({"name": pod_name, "namespace": ns}))
        .await;
    assert!(
        pod.contains("image: registry.invalid/team/web:2.1") && pod.contains("containerPort: 8080"),
        "{pod}"
    );
    let deleted_pod = shim
        .ok("pods_delete", json!({"name": pod_name, "namespace": ns}))
        .await;
    assert!(deleted_pod.contains("deleted"), "{deleted_pod}");

    let audit = std::fs::read_to_string(d.home.path().join("audit.jsonl")).unwrap();
    for verb in [
        "\"apply\"",
        "\"scale\"",
        "\"rollout-restart\"",
        "\"delete\"",
    ] {
        assert!(audit.contains(verb), "{verb} not audited:\n{audit}");
    }
    shim.ok(
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "Namespace", "name": ns}),
    )
    .await;
    shim.close().await;
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_no_destructive_and_denied_resources_refuse_with_the_reason() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();

    let ro = Daemon::start(&spec("read_only = true\n"), |dir| {
        rig.write_kubeconfigs(dir, &[DISRUPTABLE])
    });
    let shim = Shim::start(&ro.socket).await;
    let listed: Vec<String> = shim
        .tools()
        .await
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        !listed
            .iter()
            .any(|n| n == "resources_delete" || n == "resources_create_or_update"),
        "read-only lists only read tools: {listed:?}"
    );
    assert!(listed.iter().any(|n| n == "resources_get"));
    let refused = shim
        .err("resources_create_or_update", json!({"resource": MANIFEST}))
        .await;
    assert!(refused.contains("read-only"), "{refused}");
    assert!(
        shim.ok("nodes_list", json!({})).await.contains("node-1"),
        "reads still work"
    );
    shim.close().await;
    drop(ro);

    let nd = Daemon::start(
        &spec("disable_destructive = true\ndenied_resources = [\"v1/Secret\"]\n"),
        |dir| rig.write_kubeconfigs(dir, &[DISRUPTABLE]),
    );
    let shim = Shim::start(&nd.socket).await;
    let listed: Vec<String> = shim
        .tools()
        .await
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        !listed.iter().any(|n| n == "resources_delete"
            || n == "resources_scale"
            || n == "pods_exec"
            || n == "pods_run"),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|n| n == "resources_create_or_update"),
        "{listed:?}"
    );
    let ns_name = format!("e2e-nodestroy-{}", std::process::id());
    let new_ns = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns_name}\n");
    let created = shim
        .ok("resources_create_or_update", json!({"resource": new_ns}))
        .await;
    assert!(
        created.contains("created"),
        "creating is not destructive: {created}"
    );
    let overwrite = shim
        .err("resources_create_or_update", json!({"resource": new_ns}))
        .await;
    assert!(overwrite.contains("disable_destructive"), "{overwrite}");
    let delete = shim
        .err(
            "resources_delete",
            json!({"apiVersion": "v1", "kind": "Namespace", "name": ns_name}),
        )
        .await;
    assert!(
        delete.contains("destructive operations are disabled"),
        "{delete}"
    );
    let scale = shim
        .err(
            "resources_scale",
            json!({"kind": "Deployment", "name": "frontend", "namespace": "shop", "scale": 5}),
        )
        .await;
    assert!(scale.contains("disabled"), "{scale}");
    let run = shim
        .err(
            "pods_run",
            json!({"image": "registry.invalid/x:1", "namespace": "default"}),
        )
        .await;
    assert!(run.contains("disable_destructive"), "{run}");
    let secret = shim
        .err(
            "resources_get",
            json!({"kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        )
        .await;
    assert!(secret.contains("denied_resources"), "{secret}");
    let listed = shim
        .err(
            "resources_list",
            json!({"kind": "secrets", "namespace": "shop"}),
        )
        .await;
    assert!(listed.contains("denied_resources"), "{listed}");
    shim.close().await;
    drop(nd);

    // Clean up with a permissive daemon.
    let d = Daemon::start(&spec(""), |dir| rig.write_kubeconfigs(dir, &[DISRUPTABLE]));
    let shim = Shim::start(&d.socket).await;
    shim.ok(
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "Namespace", "name": ns_name}),
    )
    .await;
    shim.close().await;
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_log_reads_through_the_apiserver_from_the_nodes_kubelet() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _kubelet = rig.start_fake_kubelet(DISRUPTABLE);
    let d = Daemon::start(&spec(""), |dir| rig.write_kubeconfigs(dir, &[DISRUPTABLE]));
    let shim = Shim::start(&d.socket).await;
    let running = shim
        .ok(
            "pods_list",
            json!({"namespace": "shop", "fieldSelector": "status.phase=Running"}),
        )
        .await;
    let pod = running
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let got = shim
        .call(
            "pods_get",
            json!({"name": pod, "namespace": "shop", "output": "json"}),
        )
        .await;
    // The JSON is an item of its own (a cached answer adds a note item).
    let got: serde_json::Value = serde_json::from_str(&got.parts[0]).unwrap();
    let container = got["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();

    let tail = shim
        .ok(
            "pods_log",
            json!({"name": pod, "namespace": "shop", "tail": 3}),
        )
        .await;
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 3, "{tail}");
    assert_eq!(
        lines[2],
        format!("line 10 of shop/{pod}/{container} ({DISRUPTABLE})"),
        "{tail}"
    );
    let previous = shim
        .ok(
            "pods_log",
            json!({"name": pod, "namespace": "shop", "previous": true, "tail": 1}),
        )
        .await;
    assert!(previous.starts_with("previous line 10 of"), "{previous}");
    let since = shim
        .ok(
            "pods_log",
            json!({"name": pod, "namespace": "shop", "since": 2, "container": container}),
        )
        .await;
    assert_eq!(since.lines().count(), 2, "{since}");
    let echo = shim
        .ok(
            "pods_exec",
            json!({"name": pod, "namespace": "shop", "command": ["echo", "hello", "world"]}),
        )
        .await;
    assert_eq!(echo, "hello world\n");
    let seq = shim.ok("pods_exec", json!({"name": pod, "namespace": "shop", "container": container, "command": ["seq", "3"]})).await;
    assert_eq!(seq, "1\n2\n3\n");
    let both = shim.ok("pods_exec", json!({"name": pod, "namespace": "shop", "command": ["sh", "-c", "echo out; echo err >&2"]})).await;
    assert!(
        both.starts_with("out\n") && both.contains("--- stderr ---\nerr"),
        "{both}"
    );
    let failed = shim
        .err(
            "pods_exec",
            json!({"name": pod, "namespace": "shop", "command": ["false"]}),
        )
        .await;
    assert!(
        failed.contains("exit code 1") && failed.contains(DISRUPTABLE),
        "{failed}"
    );
    // Node logs and stats go through the node proxy to the kubelet; the fake
    // kubelet serves neither, so the answer is the kubelet's 404, clearly attributed.
    for (tool, args) in [
        (
            "nodes_log",
            json!({"name": "node-1", "query": "kubelet.log", "tailLines": 10}),
        ),
        ("nodes_stats_summary", json!({"name": "node-1"})),
    ] {
        let a = shim.err(tool, args).await;
        assert!(
            a.contains("node-1") && a.contains(DISRUPTABLE) && a.contains("nodes/proxy"),
            "{tool}: {a}"
        );
    }
    let bad = shim
        .err(
            "nodes_log",
            json!({"name": "node-1", "query": "../../etc/passwd"}),
        )
        .await;
    assert!(
        bad.contains("invalid query") && bad.contains("nothing was sent"),
        "{bad}"
    );
    let missing = shim
        .err(
            "pods_log",
            json!({"name": "no-such-pod", "namespace": "shop"}),
        )
        .await;
    assert!(
        missing.contains("no-such-pod") && missing.contains(DISRUPTABLE),
        "{missing}"
    );
    shim.close().await;
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_pods_give_a_capped_useful_answer() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let d = Daemon::start(&spec(""), |dir| rig.write_kubeconfigs(dir, &[DISRUPTABLE]));
    let shim = Shim::start(&d.socket).await;
    let ns = format!("e2e-many-{}", std::process::id());
    let mut manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    for i in 0..500 {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: worker-{i:03}\n  namespace: {ns}\n  labels: {{shard: \"s{}\"}}\nspec:\n  containers:\n    - name: w\n      image: registry.invalid/worker:1\n",
            i % 10
        ));
    }
    let created = shim
        .ok("resources_create_or_update", json!({"resource": manifest}))
        .await;
    assert_eq!(
        created.matches(" created").count(),
        501,
        "{}",
        &created[..created.len().min(500)]
    );

    let listed = shim.ok("pods_list", json!({"namespace": ns})).await;
    eprintln!("500 pods: {} bytes answered", listed.len());
    assert!(
        listed.len() <= 33 * 1024,
        "capped near 32 KiB: {} bytes",
        listed.len()
    );
    // Compact rows: all 500 fit in the table under the cap.
    let shown = listed.lines().filter(|l| l.starts_with("worker-")).count();
    assert_eq!(shown, 500, "{} bytes", listed.len());
    let narrowed = shim
        .ok(
            "pods_list",
            json!({"namespace": ns, "labelSelector": "shard=s3"}),
        )
        .await;
    assert_eq!(
        narrowed
            .lines()
            .filter(|l| l.starts_with("worker-"))
            .count(),
        50,
        "narrowing works"
    );
    // Full objects do not fit: capped, saying how many were left out and how to narrow.
    let as_yaml = shim
        .ok("pods_list", json!({"namespace": ns, "output": "yaml"}))
        .await;
    eprintln!("500 pods as YAML: {} bytes answered", as_yaml.len());
    assert!(as_yaml.len() <= 34 * 1024, "{} bytes", as_yaml.len());
    // The answer's last line (a cached answer has the cache note after it).
    let note = as_yaml
        .lines()
        .rfind(|l| !l.is_empty() && !l.starts_with(nskd_e2e::mcp::FROM_CACHE))
        .unwrap();
    let kept = as_yaml.matches("kind: Pod").count();
    assert!(
        note.contains(&format!("{} more pods not shown", 500 - kept))
            && note.contains("labelSelector"),
        "{kept} shown; {note}"
    );
    shim.ok(
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "Namespace", "name": ns}),
    )
    .await;
    shim.close().await;
}
