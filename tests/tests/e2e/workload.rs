//! Rollouts, node maintenance and pod cleanup on the disruptable cluster,
//! against what the rig's real kube-controller-manager does (ReplicaSets,
//! revisions, disruption budgets), with the apiserver's audit log as the
//! witness of what nskd sent.

use nskd_e2e::{
    apiserver_audit::{AuditLog, Event, now_stamp},
    daemon::{Daemon, DaemonSpec},
    kubeapi,
    mcp::Shim,
    rig::{DISRUPTABLE, Rig, RigCluster},
};
use serde_json::{Value, json};

use crate::{eventually, rig_or_skip};

fn start(rig: &Rig) -> Daemon {
    let spec = DaemonSpec {
        default_cluster: Some(DISRUPTABLE.into()),
        ..DaemonSpec::default()
    };
    Daemon::start(&spec, |dir| rig.write_nskd_kubeconfigs(dir, &[DISRUPTABLE]))
}

fn get(c: &RigCluster, path: &str) -> Value {
    serde_json::from_str(&kubeapi::call(c, "GET", path, None)).expect("JSON from the apiserver")
}

fn post(c: &RigCluster, path: &str, body: Value) -> Value {
    serde_json::from_str(&kubeapi::call(c, "POST", path, Some(&body.to_string())))
        .expect("JSON from the apiserver")
}

fn exists(c: &RigCluster, path: &str) -> bool {
    kubeapi::try_call(c, "GET", path, None).is_ok()
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"].as_str().unwrap_or("").to_string()
}

/// Waits for the controller-manager: the first item of `list_path` that
/// `pick` accepts.
fn wait_for(c: &RigCluster, list_path: &str, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    eventually(60.0, || {
        get(c, list_path)["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| pick(i)).cloned())
    })
    .unwrap_or_else(|| {
        panic!(
            "{what} did not appear within 60s (is the rig's kube-controller-manager running?): {}",
            get(c, list_path)
        )
    })
}

fn namespace(c: &RigCluster, prefix: &str) -> String {
    let ns = format!("{prefix}-{}", std::process::id());
    post(
        c,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    ns
}

fn deployment(name: &str, image: &str, cause: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": cause}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 0,
                    "containers": [{"name": name, "image": image}]}}}})
}

fn revision_of(rs: &Value) -> Option<&str> {
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()
}

fn image_of(v: &Value) -> String {
    v["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The plan id a dry run answered ("plan: ID (valid ...").
fn plan_id(text: &str) -> String {
    text.split("plan: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no plan id in {text}"))
        .to_string()
}

fn mutating(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.is_mutating())
        .map(Event::describe)
        .collect()
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_restores_the_previous_template_of_real_replicasets() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let c = rig.cluster(DISRUPTABLE);
    let audit = AuditLog::for_cluster(rig, DISRUPTABLE);
    let ns = namespace(c, "e2e-rollout");
    let deploys = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let replicasets = format!("/apis/apps/v1/namespaces/{ns}/replicasets");
    post(
        c,
        &deploys,
        deployment("web", "registry.invalid/web:1", "deploy v1"),
    );
    wait_for(c, &replicasets, "ReplicaSet revision 1", |rs| {
        revision_of(rs) == Some("1")
    });
    kubeapi::call(
        c,
        "PATCH",
        &format!("{deploys}/web"),
        Some(&json!({"metadata": {"annotations": {"kubernetes.io/change-cause": "image v2"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.invalid/web:2"}]}}}})
        .to_string()),
    );
    wait_for(c, &replicasets, "ReplicaSet revision 2", |rs| {
        revision_of(rs) == Some("2") && image_of(rs) == "registry.invalid/web:2"
    });

    let d = start(rig);
    let shim = Shim::start(&d.socket).await;
    let web = json!({"kind": "Deployment", "name": "web", "namespace": ns});
    let history = shim.ok("rollout_history", web.clone()).await;
    for part in [
        "REVISION",
        "web=registry.invalid/web:1",
        "web=registry.invalid/web:2",
        "deploy v1",
        "image v2",
    ] {
        assert!(history.contains(part), "{part}: {history}");
    }

    // Out of range, negative, huge: refused, and nothing changes.
    for (to, says) in [
        (json!(99), "not in its history"),
        (json!(i64::MAX), "not in its history"),
        (json!(-1), "invalid toRevision"),
        (json!("2"), "invalid"),
        (json!(1.5), "invalid"),
    ] {
        let mark = audit.mark();
        let from = now_stamp();
        let mut args = web.clone();
        args["toRevision"] = to.clone();
        let e = shim.err("rollout_undo", args).await;
        assert!(e.contains(says), "toRevision {to}: {e}");
        let sent = mutating(&audit.nskd_requests_since(&mark, &from));
        assert!(sent.is_empty(), "toRevision {to} changed: {sent:?}");
    }

    // A dry run changes nothing and answers the diff and a plan.
    let before = get(c, &format!("{deploys}/web"));
    let mut dry = web.clone();
    dry["dryRun"] = json!(true);
    let preview = shim.ok("rollout_undo", dry).await;
    assert!(
        preview.contains("Dry run") && preview.contains("registry.invalid/web:1"),
        "{preview}"
    );
    let after = get(c, &format!("{deploys}/web"));
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "the dry run changed the Deployment"
    );
    assert_eq!(image_of(&after), "registry.invalid/web:2");

    // Applying the plan restores revision 1's template; the controller
    // makes the old ReplicaSet revision 3.
    let mut apply = web.clone();
    apply["plan"] = json!(plan_id(&preview));
    let undone = shim.ok("rollout_undo", apply).await;
    assert!(undone.contains("rolled back"), "{undone}");
    let restored = get(c, &format!("{deploys}/web"));
    assert_eq!(image_of(&restored), "registry.invalid/web:1", "{restored}");
    assert_eq!(
        restored["metadata"]["annotations"]["kubernetes.io/change-cause"], "deploy v1",
        "{restored}"
    );
    let rs3 = wait_for(c, &replicasets, "ReplicaSet revision 3", |rs| {
        revision_of(rs) == Some("3")
    });
    assert_eq!(image_of(&rs3), "registry.invalid/web:1");
    let history = shim.ok("rollout_history", web.clone()).await;
    assert!(
        history.contains("3 ") && !history.lines().any(|l| l.starts_with("1 ")),
        "{history}"
    );

    // Pause holds undo off (as kubectl); resume lets it through again.
    let paused = shim
        .ok("rollout_pause", json!({"name": "web", "namespace": ns}))
        .await;
    assert!(paused.contains("paused"), "{paused}");
    assert_eq!(get(c, &format!("{deploys}/web"))["spec"]["paused"], true);
    let again = shim
        .ok("rollout_pause", json!({"name": "web", "namespace": ns}))
        .await;
    assert!(again.contains("already paused"), "{again}");
    let e = shim.err("rollout_undo", web.clone()).await;
    assert!(e.contains("paused") && e.contains("rollout_resume"), "{e}");
    let resumed = shim
        .ok("rollout_resume", json!({"name": "web", "namespace": ns}))
        .await;
    assert!(resumed.contains("resumed"), "{resumed}");
    assert!(get(c, &format!("{deploys}/web"))["spec"]["paused"].is_null());

    // A StatefulSet-or-DaemonSet-only kind check: ConfigMaps have no rollouts.
    let e = shim
        .err(
            "rollout_undo",
            json!({"kind": "ConfigMap", "name": "x", "namespace": ns}),
        )
        .await;
    assert!(
        e.contains("Deployments, StatefulSets and DaemonSets"),
        "{e}"
    );
    shim.close().await;
}

/// Deletes the test's node however the test ends: a node left behind
/// (NotReady, no kubelet) would make the cluster Degraded for later tests.
struct NodeGone<'a>(&'a RigCluster, String);

impl Drop for NodeGone<'_> {
    fn drop(&mut self) {
        let _ = kubeapi::try_call(self.0, "DELETE", &format!("/api/v1/nodes/{}", self.1), None);
    }
}

/// Binds `pod` to `node` as a scheduler would (the rig has none).
fn bind(c: &RigCluster, ns: &str, pod: &str, node: &str) {
    post(
        c,
        &format!("/api/v1/namespaces/{ns}/pods/{pod}/binding"),
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}),
    );
}

/// The pod a controller made for `app` (not yet bound), bound to `node`.
fn controller_pod(c: &RigCluster, ns: &str, app: &str, node: &str) -> Value {
    let pods = format!("/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{app}");
    let pod = wait_for(c, &pods, &format!("a pod of {app}"), |_| true);
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    bind(c, ns, &name, node);
    get(c, &format!("/api/v1/namespaces/{ns}/pods/{name}"))
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_honours_a_budget_skips_daemonset_and_mirror_pods_and_reports_each_pod() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let c = rig.cluster(DISRUPTABLE);
    let audit = AuditLog::for_cluster(rig, DISRUPTABLE);
    let pid = std::process::id().to_string();
    let node = format!("e2e-drain-{pid}");
    post(
        c,
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "labels": {"e2e-drain": pid}}}),
    );
    let _gone = NodeGone(c, node.clone());
    let ns = namespace(c, "e2e-drain");
    let pods_path = format!("/api/v1/namespaces/{ns}/pods");
    post(
        c,
        &format!("/apis/apps/v1/namespaces/{ns}/daemonsets"),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    // New nodes carry the not-ready taint (admission); with
                    // no node lifecycle controller in the rig, it stays.
                    "spec": {"nodeSelector": {"e2e-drain": pid}, "terminationGracePeriodSeconds": 0,
                        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}],
                        "containers": [{"name": "agent", "image": "registry.invalid/agent:1"}]}}}}),
    );
    for app in ["guarded", "free"] {
        post(
            c,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            deployment(app, "registry.invalid/app:1", "e2e"),
        );
    }
    let agent = controller_pod(c, &ns, "agent", &node);
    let guarded = controller_pod(c, &ns, "guarded", &node);
    let free = controller_pod(c, &ns, "free", &node);
    let guarded_name = guarded["metadata"]["name"].as_str().unwrap().to_string();
    let free_name = free["metadata"]["name"].as_str().unwrap().to_string();
    let agent_name = agent["metadata"]["name"].as_str().unwrap().to_string();
    // The budget counts only Ready pods.
    kubeapi::call(
        c,
        "PATCH",
        &format!("{pods_path}/{guarded_name}/status"),
        Some(
            &json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
                .to_string(),
        ),
    );
    post(
        c,
        &format!("/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets"),
        json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "guard"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}),
    );
    let pdbs = format!("/apis/policy/v1beta1/namespaces/{ns}/poddisruptionbudgets");
    wait_for(
        c,
        &pdbs,
        "the budget's status (disruption controller)",
        |p| p["status"]["currentHealthy"] == 1 && p["status"]["disruptionsAllowed"] == 0,
    );
    post(
        c,
        &pods_path,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "static-web", "annotations": {"kubernetes.io/config.mirror": "e2e"}},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}),
    );
    post(
        c,
        &pods_path,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loner"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "loner", "image": "registry.invalid/loner:1"}]}}),
    );

    let d = start(rig);
    let shim = Shim::start(&d.socket).await;
    let node_path = format!("/api/v1/nodes/{node}");

    // Hostile node names and timeouts: refused before anything is sent.
    let long = "n".repeat(300);
    for (tool, args) in [
        ("nodes_drain", json!({"name": "../nodes/node-1"})),
        ("nodes_drain", json!({"name": "node-1/proxy"})),
        ("nodes_drain", json!({"name": "node-1%2F..%2Fx"})),
        ("nodes_drain", json!({"name": "Node-1"})),
        ("nodes_drain", json!({"name": "node-1\u{0}x"})),
        ("nodes_drain", json!({"name": "node-1?dryRun=All"})),
        ("nodes_drain", json!({"name": long})),
        ("nodes_cordon", json!({"name": "node-1\n"})),
        ("nodes_uncordon", json!({"name": "../../api"})),
        ("nodes_drain", json!({"name": node, "timeout": 999_999})),
        ("nodes_drain", json!({"name": node, "timeout": -5})),
        ("nodes_drain", json!({"name": node, "timeout": "10"})),
        ("nodes_drain", json!({"name": node, "plan": "../x"})),
        ("pods_cleanup", json!({"namespace": "../kube-system"})),
    ] {
        let mark = audit.mark();
        let from = now_stamp();
        let e = shim.err(tool, args.clone()).await;
        assert!(
            ["invalid", "at most 3600", "timeout"]
                .iter()
                .any(|w| e.contains(w)),
            "{tool} {args}: {e}"
        );
        let sent = audit.nskd_requests_since(&mark, &from);
        assert!(
            sent.iter().all(|e| !e.is_mutating()),
            "{tool} {args} sent {:?}",
            mutating(&sent)
        );
        assert!(
            sent.iter().all(|e| !e.request_uri.contains("..")),
            "{tool} {args}"
        );
    }

    // An unmanaged pod: refused as kubectl drain does, but before the cordon.
    let mark = audit.mark();
    let from = now_stamp();
    let e = shim.err("nodes_drain", json!({"name": node})).await;
    assert!(
        e.contains("loner") && e.contains("force") && e.contains("nothing was changed"),
        "{e}"
    );
    let sent = mutating(&audit.nskd_requests_since(&mark, &from));
    assert!(sent.is_empty(), "a refused drain changed: {sent:?}");
    assert!(get(c, &node_path)["spec"]["unschedulable"].is_null());
    kubeapi::call(c, "DELETE", &format!("{pods_path}/loner"), None);

    // Dry run: the cordon previewed, each eviction dry-run; nothing changes.
    let mark = audit.mark();
    let from = now_stamp();
    let preview = shim
        .ok("nodes_drain", json!({"name": node, "dryRun": true}))
        .await;
    for part in [
        format!("{free_name}: would be evicted"),
        format!("{guarded_name}: would be blocked by a PodDisruptionBudget"),
        format!("{agent_name}: skipped: managed by DaemonSet agent"),
        "static-web: skipped: mirror pod".to_string(),
        "plan: ".to_string(),
    ] {
        assert!(preview.contains(&part), "{part}: {preview}");
    }
    let sent = audit.nskd_requests_since(&mark, &from);
    assert!(
        sent.iter()
            .filter(|e| e.is_mutating())
            .all(|e| e.request_uri.contains("dryRun=All")),
        "the dry run sent a real change: {:?}",
        mutating(&sent)
    );
    assert!(get(c, &node_path)["spec"]["unschedulable"].is_null());
    assert_eq!(
        uid(&get(c, &format!("{pods_path}/{free_name}"))),
        uid(&free)
    );

    // The drain: the free pod goes, the budget holds the guarded one until
    // the timeout, DaemonSet and mirror pods stay.
    let mark = audit.mark();
    let from = now_stamp();
    let started = std::time::Instant::now();
    let e = shim
        .err("nodes_drain", json!({"name": node, "timeout": 5}))
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    for part in [
        "NOT drained".to_string(),
        format!("{free_name}: evicted"),
        format!("{guarded_name}: blocked by a PodDisruptionBudget"),
        format!("{agent_name}: skipped"),
        "static-web: skipped".to_string(),
    ] {
        assert!(e.contains(&part), "{part}: {e}");
    }
    assert_eq!(get(c, &node_path)["spec"]["unschedulable"], true);
    let gone = kubeapi::try_call(c, "GET", &format!("{pods_path}/{free_name}"), None)
        .map(|t| uid(&serde_json::from_str(&t).unwrap_or_default()) != uid(&free))
        .unwrap_or(true);
    assert!(gone, "the free pod was not evicted");
    assert!(exists(c, &format!("{pods_path}/{guarded_name}")));
    assert!(exists(c, &format!("{pods_path}/{agent_name}")));
    assert!(exists(c, &format!("{pods_path}/static-web")));
    let sent = audit.nskd_requests_since(&mark, &from);
    let evictions: Vec<&Event> = sent
        .iter()
        .filter(|e| e.is_mutating() && e.request_uri.ends_with("/eviction"))
        .collect();
    assert!(
        evictions
            .iter()
            .all(|e| e.request_uri.contains(&free_name) || e.request_uri.contains(&guarded_name)),
        "evicted beyond the drainable pods: {:?}",
        evictions.iter().map(|e| e.describe()).collect::<Vec<_>>()
    );
    assert!(
        evictions
            .iter()
            .filter(|e| e.request_uri.contains(&guarded_name))
            .count()
            >= 2,
        "the blocked eviction was not retried"
    );

    let uncordoned = shim.ok("nodes_uncordon", json!({"name": node})).await;
    assert!(uncordoned.contains("uncordoned"), "{uncordoned}");
    assert!(get(c, &node_path)["spec"]["unschedulable"].is_null());
    let again = shim.ok("nodes_uncordon", json!({"name": node})).await;
    assert!(again.contains("already"), "{again}");
    shim.close().await;
    drop(d);

    // Under disable_destructive: cordon and uncordon (reversible, nothing
    // stops) stay; drain is hidden and refused, nothing evicted.
    let spec = DaemonSpec {
        default_cluster: Some(DISRUPTABLE.into()),
        top: "disable_destructive = true\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_nskd_kubeconfigs(dir, &[DISRUPTABLE]));
    let shim = Shim::start(&d.socket).await;
    let names: Vec<String> = shim
        .tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(
        names.iter().any(|n| n == "nodes_cordon")
            && names.iter().any(|n| n == "rollout_pause")
            && !names.iter().any(|n| n == "nodes_drain")
            && !names.iter().any(|n| n == "rollout_undo"),
        "{names:?}"
    );
    let cordoned = shim.ok("nodes_cordon", json!({"name": node})).await;
    assert!(cordoned.contains("cordoned"), "{cordoned}");
    assert_eq!(get(c, &node_path)["spec"]["unschedulable"], true);
    let mark = audit.mark();
    let from = now_stamp();
    let e = shim.err("nodes_drain", json!({"name": node})).await;
    assert!(e.contains("disable_destructive"), "{e}");
    let sent = mutating(&audit.nskd_requests_since(&mark, &from));
    assert!(sent.is_empty(), "a refused drain changed: {sent:?}");
    assert!(exists(c, &format!("{pods_path}/{guarded_name}")));
    shim.close().await;
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_finished_pods_with_counts_per_reason() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let c = rig.cluster(DISRUPTABLE);
    let ns = namespace(c, "e2e-cleanup");
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    for (name, status) in [
        (
            "evicted-1",
            json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}),
        ),
        ("evicted-2", json!({"phase": "Failed", "reason": "Evicted"})),
        ("crashed", json!({"phase": "Failed", "reason": "Error"})),
        ("done", json!({"phase": "Succeeded"})),
        ("running", json!({"phase": "Running"})),
    ] {
        post(
            c,
            &pods,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "c", "image": "registry.invalid/c:1"}]}}),
        );
        kubeapi::call(
            c,
            "PATCH",
            &format!("{pods}/{name}/status"),
            Some(&json!({"status": status}).to_string()),
        );
    }
    let d = start(rig);
    let shim = Shim::start(&d.socket).await;
    let preview = shim
        .ok("pods_cleanup", json!({"namespace": ns, "dryRun": true}))
        .await;
    assert!(
        preview.contains("4 finished pod(s)")
            && preview.contains("Evicted 2, Failed 1, Succeeded 1")
            && preview.contains("plan: "),
        "{preview}"
    );
    assert_eq!(get(c, &pods)["items"].as_array().map(Vec::len), Some(5));
    let done = shim.ok("pods_cleanup", json!({"namespace": ns})).await;
    assert!(
        done.contains("Evicted 2, Failed 1, Succeeded 1") && done.contains("deleted"),
        "{done}"
    );
    let left: Vec<String> = get(c, &pods)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(left, ["running"]);
    let none = shim.ok("pods_cleanup", json!({"namespace": ns})).await;
    assert!(
        none.contains("no Failed, Evicted or Succeeded pods"),
        "{none}"
    );
    shim.close().await;
}
