//! Changes with a plan, on the disruptable cluster: dry-run changes
//! nothing and its diff is the change applied later; plans bind to the
//! object's version, their cluster and their request; require_plan;
//! confirmation through MCP elicitation by a real client (the Python SDK);
//! patches that would change an object's identity are never sent. The rig
//! apiserver's audit log witnesses what nskd sent.

use std::{path::PathBuf, process::Command, sync::Mutex};

use nskd_e2e::{
    apiserver_audit::{AuditLog, Event, now_stamp},
    bins::bin,
    daemon::{Daemon, DaemonSpec},
    kubeapi,
    mcp::Shim,
    rig::{DISRUPTABLE, Rig, SHARED},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

const CLUSTER: &str = DISRUPTABLE;

fn spec(safety: &str) -> DaemonSpec {
    let mut s = DaemonSpec {
        default_cluster: Some(CLUSTER.into()),
        ..DaemonSpec::default()
    };
    s.sections.push_str(&format!("[safety]\n{safety}\n"));
    s
}

fn start(rig: &Rig, safety: &str) -> Daemon {
    Daemon::start(&spec(safety), |dir| {
        rig.write_nskd_kubeconfigs(dir, &[CLUSTER, SHARED[0]])
    })
}

/// A namespace of this test with a Deployment `web` (1 replica) and a
/// ConfigMap `settings`, made directly with the admin token.
fn seed(rig: &Rig, tag: &str) -> String {
    let c = rig.cluster(CLUSTER);
    let ns = format!("e2e-plans-{tag}-{}", std::process::id());
    kubeapi::call(
        c,
        "POST",
        "/api/v1/namespaces",
        Some(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
        ),
    );
    kubeapi::call(
        c,
        "POST",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        Some(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}})
            .to_string(),
        ),
    );
    kubeapi::call(
        c,
        "POST",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        Some(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                "data": {"mode": "blue"}})
            .to_string(),
        ),
    );
    ns
}

fn get(rig: &Rig, path: &str) -> Value {
    serde_json::from_str(&kubeapi::call(rig.cluster(CLUSTER), "GET", path, None)).unwrap()
}

fn deployment(rig: &Rig, ns: &str) -> Value {
    get(
        rig,
        &format!("/apis/apps/v1/namespaces/{ns}/deployments/web"),
    )
}

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The plan id an answer names.
fn plan_of(text: &str) -> String {
    let at = text
        .find("plan: p-")
        .or_else(|| text.find("new plan: p-").map(|i| i + 4))
        .unwrap_or_else(|| panic!("no plan id in:\n{text}"));
    text[at + 6..at + 6 + 26].to_string()
}

/// The diff part of an answer: its unified diff lines.
fn diff_of(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with("--- "))
        .take_while(|l| !l.starts_with("plan: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The daemon's requests of one call, through the apiserver's audit log.
async fn seen(
    audit: &AuditLog,
    shim: &Shim,
    tool: &str,
    args: Value,
) -> (String, bool, Vec<Event>) {
    let mark = audit.mark();
    let from = now_stamp();
    let a = shim.call(tool, args).await;
    (a.text, a.is_error, audit.nskd_requests_since(&mark, &from))
}

fn writes(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.is_mutating()).collect()
}

fn describe(events: &[&Event]) -> String {
    events
        .iter()
        .map(|e| e.describe())
        .collect::<Vec<_>>()
        .join("\n  ")
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_its_plan_applies_exactly_that() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig, "dry");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "");
    let shim = Shim::start(&d.socket).await;
    let before = deployment(rig, &ns);
    let args = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": ns, "scale": 3});

    let mut dry_args = args.clone();
    dry_args["dryRun"] = json!(true);
    let (preview, failed, events) = seen(&audit, &shim, "resources_scale", dry_args).await;
    assert!(!failed, "{preview}");
    assert!(
        preview.contains("Dry run") && preview.contains("+  replicas: 3"),
        "{preview}"
    );
    let w = writes(&events);
    assert!(
        !w.is_empty() && w.iter().all(|e| e.request_uri.contains("dryRun=All")),
        "every write of a dry-run carries dryRun=All:\n  {}",
        describe(&w)
    );
    let unchanged = deployment(rig, &ns);
    assert_eq!(rv(&unchanged), rv(&before), "a dry-run changed the object");
    assert_eq!(unchanged["spec"]["replicas"], 1);

    let plan = plan_of(&preview);
    let mut apply_args = args.clone();
    apply_args["plan"] = json!(plan);
    let (applied, failed, events) =
        seen(&audit, &shim, "resources_scale", apply_args.clone()).await;
    assert!(!failed, "{applied}");
    assert!(
        applied.contains(&format!("Applied plan {plan}")),
        "{applied}"
    );
    assert_eq!(
        diff_of(&applied),
        diff_of(&preview),
        "the applied diff differs from the preview"
    );
    let w = writes(&events);
    assert!(
        w.len() == 1 && !w[0].request_uri.contains("dryRun"),
        "one real write:\n  {}",
        describe(&w)
    );
    assert_eq!(deployment(rig, &ns)["spec"]["replicas"], 3);

    // Used once.
    let again = shim.err("resources_scale", apply_args).await;
    assert!(
        again.contains("unknown") && again.contains("nothing was sent"),
        "{again}"
    );

    // Bound to its request: other arguments are refused.
    let mut dry = args.clone();
    dry["dryRun"] = json!(true);
    dry["scale"] = json!(2);
    let plan2 = plan_of(&shim.ok("resources_scale", dry).await);
    let mut other = args.clone();
    other["scale"] = json!(5);
    other["plan"] = json!(plan2);
    let e = shim.err("resources_scale", other).await;
    assert!(e.contains("different request"), "{e}");
    // Bound to its cluster.
    let mut elsewhere = args.clone();
    elsewhere["scale"] = json!(2);
    elsewhere["plan"] = json!(plan2);
    elsewhere["cluster"] = json!(SHARED[0]);
    let e = shim.err("resources_scale", elsewhere).await;
    assert!(e.contains(&format!("made on cluster {CLUSTER}")), "{e}");
    // Forged ids.
    for forged in [
        "p-000000000000000000000000",
        "../../p",
        "p-ZZ",
        &"p-".repeat(5000),
    ] {
        let mut f = args.clone();
        f["plan"] = json!(forged);
        let (text, failed, events) = seen(&audit, &shim, "resources_scale", f).await;
        assert!(failed, "{forged}: {text}");
        assert!(
            writes(&events).is_empty(),
            "{forged}: {}",
            describe(&writes(&events))
        );
    }

    // pods_run and rollout_restart preview too, and change nothing.
    let (run, failed, events) = seen(
        &audit,
        &shim,
        "pods_run",
        json!({"image": "registry.invalid/dry:1", "name": "dry-pod", "namespace": ns, "dryRun": true}),
    )
    .await;
    assert!(!failed && run.contains("+kind: Pod"), "{run}");
    assert!(
        writes(&events)
            .iter()
            .all(|e| e.request_uri.contains("dryRun=All"))
    );
    let pod = kubeapi::try_call(
        rig.cluster(CLUSTER),
        "GET",
        &format!("/api/v1/namespaces/{ns}/pods/dry-pod"),
        None,
    );
    assert!(pod.is_err(), "a dry-run created the pod: {pod:?}");
    let rv_before = rv(&deployment(rig, &ns));
    let restart = shim
        .ok(
            "rollout_restart",
            json!({"kind": "Deployment", "name": "web", "namespace": ns, "dryRun": true}),
        )
        .await;
    assert!(
        restart.contains("kubectl.kubernetes.io/restartedAt"),
        "{restart}"
    );
    assert_eq!(rv(&deployment(rig, &ns)), rv_before);

    // The daemon's audit log names the plan and the diff's digest.
    let log = std::fs::read_to_string(d.home.path().join("audit.jsonl")).unwrap();
    let entries: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let applied_entry = entries
        .iter()
        .find(|e| e["plan"] == json!(plan) && e["outcome"] == "ok" && e.get("dry_run").is_none())
        .unwrap_or_else(|| panic!("no audit entry of the applied plan:\n{log}"));
    assert_eq!(applied_entry["diff_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(applied_entry["name"], "web");
    assert!(
        entries
            .iter()
            .any(|e| e["plan"] == json!(plan) && e["dry_run"] == true),
        "{log}"
    );
    shim.close().await;
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_refused_after_a_concurrent_edit_with_a_fresh_diff() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig, "conflict");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "");
    let shim = Shim::start(&d.socket).await;
    let args = json!({"kind": "ConfigMap", "name": "settings", "namespace": ns,
        "patch": {"data": {"mode": "green"}}});
    let mut dry = args.clone();
    dry["dryRun"] = json!(true);
    let preview = shim.ok("resources_patch", dry).await;
    assert!(
        preview.contains("-  mode: blue") && preview.contains("+  mode: green"),
        "{preview}"
    );
    let plan = plan_of(&preview);

    // Someone else edits the object.
    kubeapi::call(
        rig.cluster(CLUSTER),
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/configmaps/settings"),
        Some(r#"{"data": {"owner": "someone-else"}}"#),
    );
    let mut apply = args.clone();
    apply["plan"] = json!(plan);
    let (text, failed, events) = seen(&audit, &shim, "resources_patch", apply).await;
    assert!(failed, "{text}");
    assert!(
        text.contains("changed since the plan") && text.contains("new plan: p-"),
        "{text}"
    );
    assert!(text.contains("+  mode: green"), "the fresh diff: {text}");
    let real: Vec<&Event> = writes(&events)
        .into_iter()
        .filter(|e| !e.request_uri.contains("dryRun"))
        .collect();
    assert!(
        real.iter().all(|e| e.code == Some(409)),
        "only the refused write reached the server:\n  {}",
        describe(&real)
    );
    let cm = get(rig, &format!("/api/v1/namespaces/{ns}/configmaps/settings"));
    assert_eq!(cm["data"]["mode"], "blue");
    assert_eq!(cm["data"]["owner"], "someone-else");

    // The fresh plan applies.
    let fresh = text[text.find("new plan: ").unwrap() + 10..][..26].to_string();
    let mut apply = args.clone();
    apply["plan"] = json!(fresh);
    let done = shim.ok("resources_patch", apply).await;
    assert!(done.contains("patched"), "{done}");
    let cm = get(rig, &format!("/api/v1/namespaces/{ns}/configmaps/settings"));
    assert_eq!(cm["data"]["mode"], "green");
    shim.close().await;
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_plan_refuses_a_planless_delete() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig, "require");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "require_plan = [\"delete\", \"scale_to_zero\"]\n");
    let shim = Shim::start(&d.socket).await;
    let args = json!({"kind": "ConfigMap", "name": "settings", "namespace": ns});
    let (text, failed, events) = seen(&audit, &shim, "resources_delete", args.clone()).await;
    assert!(
        failed && text.contains("require_plan") && text.contains("dryRun"),
        "{text}"
    );
    assert!(writes(&events).is_empty(), "{}", describe(&writes(&events)));
    let zero = shim
        .err(
            "resources_scale",
            json!({"kind": "Deployment", "name": "web", "namespace": ns, "scale": 0}),
        )
        .await;
    assert!(zero.contains("scale_to_zero"), "{zero}");
    // Scaling to a non-zero count needs none.
    shim.ok(
        "resources_scale",
        json!({"kind": "Deployment", "name": "web", "namespace": ns, "scale": 2}),
    )
    .await;

    let mut dry = args.clone();
    dry["dryRun"] = json!(true);
    let preview = shim.ok("resources_delete", dry).await;
    assert!(
        preview.contains("removed") || preview.contains("-data:"),
        "{preview}"
    );
    let mut apply = args.clone();
    apply["plan"] = json!(plan_of(&preview));
    let done = shim.ok("resources_delete", apply).await;
    assert!(done.contains("deleted"), "{done}");
    let gone = kubeapi::try_call(
        rig.cluster(CLUSTER),
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps/settings"),
        None,
    );
    assert!(gone.is_err(), "{gone:?}");
    shim.close().await;
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_that_change_identity_or_are_malformed_are_never_sent() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig, "abuse");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(rig, "");
    let shim = Shim::start(&d.socket).await;
    let base = json!({"kind": "ConfigMap", "name": "settings", "namespace": ns});
    let huge = "x".repeat(600 * 1024);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"metadata": {"name": "other"}}),
            "merge",
            "/metadata/name",
        ),
        (
            json!({"metadata": {"namespace": "kube-system"}}),
            "merge",
            "/metadata/namespace",
        ),
        (json!({"kind": "Secret"}), "strategic", "/kind"),
        (json!({"apiVersion": "v2"}), "merge", "/apiVersion"),
        (
            json!([{"op": "replace", "path": "/metadata/name", "value": "x"}]),
            "json",
            "identity",
        ),
        (
            json!([{"op": "move", "from": "/metadata/namespace", "path": "/data/ns"}]),
            "json",
            "identity",
        ),
        (
            json!([{"op": "remove", "path": "/metadata"}]),
            "json",
            "identity",
        ),
        (json!({"data": {"a": "b"}}), "json", "list of operations"),
        (
            json!([{"op": "add", "path": "/data/a", "value": "b"}]),
            "merge",
            "JSON object",
        ),
        (json!(42), "merge", "JSON object"),
        (json!({"data": {"a": huge}}), "merge", "at most"),
        (
            json!("{\"data\": {\"a\": \"\u{0}\"}"),
            "merge",
            "neither JSON",
        ),
    ];
    for (patch, kind, says) in cases {
        let mut args = base.clone();
        args["patch"] = patch.clone();
        args["type"] = json!(kind);
        let (text, failed, events) = seen(&audit, &shim, "resources_patch", args).await;
        let shown: String = patch.to_string().chars().take(80).collect();
        assert!(failed && text.contains(says), "{kind} {shown}: {text}");
        assert!(
            writes(&events).is_empty(),
            "{kind} {shown} was sent:\n  {}",
            describe(&writes(&events))
        );
    }
    // A wrong type name is refused by the schema.
    let mut args = base.clone();
    args["patch"] = json!({"data": {"a": "b"}});
    args["type"] = json!("apply");
    assert!(shim.call("resources_patch", args).await.is_error);
    // Strategic works on a built-in kind.
    let mut args = base.clone();
    args["patch"] = json!({"data": {"mode": "red"}});
    args["type"] = json!("strategic");
    shim.ok("resources_patch", args).await;
    let cm = get(rig, &format!("/api/v1/namespaces/{ns}/configmaps/settings"));
    assert_eq!(cm["data"]["mode"], "red");
    shim.close().await;
}

/// The venv of the Python MCP SDK (shared with other client tests).
fn python_client() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cache = std::env::var_os("NSKD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/nskd-test"));
    let venv = cache.join("clients/venv");
    let python = venv.join("bin/python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import mcp.client.stdio"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        std::fs::create_dir_all(cache.join("clients")).unwrap();
        let venv_ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            venv_ok,
            "python3 -m venv {} failed (install python3-venv)",
            venv.display()
        );
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "mcp==1.*"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            pip && ready(),
            "pip install mcp==1.* into {} failed",
            venv.display()
        );
    }
    python
}

/// Runs the Python MCP client with `answer` for its elicitations.
fn python_session(d: &Daemon, answer: &str, calls: Value) -> Value {
    let python = python_client();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients/elicit_client.py");
    let cfg =
        json!({"shim": bin("mcp-shim"), "socket": d.socket, "answer": answer, "calls": calls});
    let out = Command::new(python)
        .arg(script)
        .arg(cfg.to_string())
        .output()
        .expect("run the Python MCP client");
    assert!(
        out.status.success(),
        "Python MCP client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_is_asked_through_elicitation_and_a_no_sends_nothing() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig, "confirm");
    let audit = AuditLog::for_cluster(rig, CLUSTER);
    let d = start(
        rig,
        &format!(
            "confirm = [ {{ operation = \"delete\", namespace = {ns:?}, cluster = \"c1-*\" }}, {{ operation = \"rollout_pause\", namespace = {ns:?} }} ]\n"
        ),
    );
    let delete =
        json!(["resources_delete", {"kind": "ConfigMap", "name": "settings", "namespace": ns}]);
    let cm_path = format!("/api/v1/namespaces/{ns}/configmaps/settings");

    for answer in ["decline", "cancel", "refuse"] {
        let mark = audit.mark();
        let from = now_stamp();
        let out = python_session(&d, answer, json!([delete]));
        let asked = out["asked"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{out}");
        let question = asked[0].as_str().unwrap();
        assert!(
            question.contains("delete configmaps/settings") && question.contains("diff lines"),
            "{question}"
        );
        let r = &out["results"][0];
        assert!(
            r["isError"] == true && r["text"].as_str().unwrap().contains("nothing was sent"),
            "{answer}: {r}"
        );
        let events = audit.nskd_requests_since(&mark, &from);
        let real: Vec<&Event> = writes(&events)
            .into_iter()
            .filter(|e| !e.request_uri.contains("dryRun=All"))
            .collect();
        assert!(real.is_empty(), "{answer}: sent\n  {}", describe(&real));
        kubeapi::call(rig.cluster(CLUSTER), "GET", &cm_path, None);
    }

    // A client that cannot ask (the Rust test client): confirm_fallback = deny.
    let shim = Shim::start(&d.socket).await;
    let e = shim.err("resources_delete", delete[1].clone()).await;
    assert!(
        e.contains("cannot ask") && e.contains("confirm_fallback"),
        "{e}"
    );
    // Operations no rule names go through without a question.
    shim.ok(
        "resources_scale",
        json!({"kind": "Deployment", "name": "web", "namespace": ns, "scale": 2}),
    )
    .await;
    shim.close().await;
    kubeapi::call(rig.cluster(CLUSTER), "GET", &cm_path, None);

    let out = python_session(&d, "accept", json!([delete]));
    let r = &out["results"][0];
    assert!(
        r["isError"] == false && r["text"].as_str().unwrap().contains("deleted"),
        "{out}"
    );
    assert!(kubeapi::try_call(rig.cluster(CLUSTER), "GET", &cm_path, None).is_err());

    // The Workload service's changes ask the same way (rollout_pause).
    let pause = json!(["rollout_pause", {"name": "web", "namespace": ns}]);
    let web = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let paused = || {
        let dep: serde_json::Value =
            serde_json::from_str(&kubeapi::call(rig.cluster(CLUSTER), "GET", &web, None)).unwrap();
        dep["spec"]["paused"] == true
    };
    let out = python_session(&d, "decline", json!([pause]));
    assert_eq!(out["asked"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(out["results"][0]["isError"] == true, "{out}");
    assert!(!paused(), "a declined pause was sent");
    let out = python_session(&d, "accept", json!([pause]));
    assert!(out["results"][0]["isError"] == false, "{out}");
    assert!(paused(), "an accepted pause was not applied: {out}");

    let log = std::fs::read_to_string(d.home.path().join("audit.jsonl")).unwrap();
    for word in ["declined", "cancelled", "unavailable", "accepted"] {
        assert!(
            log.contains(&format!("\"confirmation\":\"{word}\"")),
            "{word}:\n{log}"
        );
    }
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategic_patch_of_a_custom_resource_is_refused_clearly() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig, "crd");
    let c = rig.cluster(CLUSTER);
    // Cluster-scoped and kept between runs: an existing one is fine.
    let _ = kubeapi::try_call(
        c,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(
            &json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.plans.e2e.example.com"},
                "spec": {"group": "plans.e2e.example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object",
                            "x-kubernetes-preserve-unknown-fields": true}}}]}})
            .to_string(),
        ),
    );
    let served = crate::eventually(20.0, || {
        kubeapi::try_call(c, "GET", "/apis/plans.e2e.example.com/v1", None)
            .ok()
            .filter(|t| t.contains("widgets"))
    });
    assert!(served.is_some(), "the Widget CRD was not served within 20s");
    let path = format!("/apis/plans.e2e.example.com/v1/namespaces/{ns}/widgets");
    let created = crate::eventually(20.0, || {
        kubeapi::try_call(
            c,
            "POST",
            &path,
            Some(r#"{"apiVersion": "plans.e2e.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "size": 1}"#),
        )
        .ok()
    });
    assert!(created.is_some(), "could not create the Widget");
    let d = start(rig, "");
    let shim = Shim::start(&d.socket).await;
    let args = |t: &str| {
        json!({"apiVersion": "plans.e2e.example.com/v1", "kind": "Widget", "name": "w",
            "namespace": ns, "type": t, "patch": {"size": 2}})
    };
    let e = shim.err("resources_patch", args("strategic")).await;
    assert!(
        e.contains("built-in kinds only") && e.contains("\"merge\""),
        "{e}"
    );
    let w: Value =
        serde_json::from_str(&kubeapi::call(c, "GET", &format!("{path}/w"), None)).unwrap();
    assert_eq!(w["size"], 1);
    shim.ok("resources_patch", args("merge")).await;
    let w: Value =
        serde_json::from_str(&kubeapi::call(c, "GET", &format!("{path}/w"), None)).unwrap();
    assert_eq!(w["size"], 2);
    shim.close().await;
    // Other tests see the cluster's kinds: take the CRD away again.
    let _ = kubeapi::try_call(
        c,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.plans.e2e.example.com",
        None,
    );
}
