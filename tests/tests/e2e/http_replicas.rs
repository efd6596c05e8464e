//! Two replicas behind one plain Service: two daemons, each with its own
//! `mcp-shim --http --stateless`, and clients whose requests alternate
//! between them (as kube-proxy spreads connections). Reads naming their
//! cluster answer the same on both; what stays with one replica (plans,
//! `continue` pages), the active cluster and confirmations are refused with
//! what to do, and nothing is sent to the cluster. The official Python MCP
//! SDK client talks to both through a round-robin proxy.

use std::{path::Path, process::Command};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    endpoints::ServiceProxy,
    kubeapi,
    mcp_http::{StatelessShim, post},
    rig::{DISRUPTABLE, Rig, SHARED},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

const TOKEN: &str = "replicas-e2e-shared-token-0123456789";

/// One replica: a daemon and its stateless HTTP shim.
struct Replica {
    _daemon: Daemon,
    shim: StatelessShim,
}

fn replica(rig: &Rig, ns: &str) -> Replica {
    let mut spec = DaemonSpec {
        default_cluster: Some(SHARED[0].into()),
        ..DaemonSpec::default()
    };
    spec.sections.push_str(&format!(
        "[safety]\nconfirm = [ {{ operation = \"delete\", namespace = {ns:?} }} ]\n"
    ));
    let daemon = Daemon::start(&spec, |dir| {
        rig.write_nskd_kubeconfigs(dir, &[DISRUPTABLE, SHARED[0]])
    });
    let shim = StatelessShim::start(&daemon.socket, TOKEN);
    Replica {
        _daemon: daemon,
        shim,
    }
}

/// One request on `port` with no session id: the JSON-RPC answer.
fn rpc(port: u16, id: u64, method: &str, params: Value) -> Value {
    let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let (status, session, message) = post(port, None, Some(TOKEN), &req);
    assert_eq!(status, 200, "{method} on port {port}: {message:?}");
    assert_eq!(
        session, None,
        "a stateless endpoint handed out a session id"
    );
    message.unwrap_or_else(|| panic!("{method} on port {port}: no JSON-RPC answer"))
}

/// A tool call: its text and whether it is an error.
fn tool(port: u16, name: &str, args: Value) -> (String, bool) {
    let m = rpc(
        port,
        7,
        "tools/call",
        json!({"name": name, "arguments": args}),
    );
    let text = m["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: {m}"))
        .to_string();
    (text, m["result"]["isError"] == true)
}

fn ok(port: u16, name: &str, args: Value) -> String {
    let (text, failed) = tool(port, name, args);
    assert!(!failed, "{name} on port {port} failed:\n{text}");
    text
}

fn err(port: u16, name: &str, args: Value) -> String {
    let (text, failed) = tool(port, name, args);
    assert!(failed, "{name} on port {port} should have failed:\n{text}");
    text
}

/// A namespace of this test with a Deployment `web` (1 replica) and a
/// ConfigMap `settings`.
fn seed(rig: &Rig) -> String {
    let c = rig.cluster(DISRUPTABLE);
    let ns = format!("e2e-replicas-{}", std::process::id());
    let post = |path: &str, body: Value| {
        kubeapi::call(c, "POST", path, Some(&body.to_string()));
    };
    post(
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    );
    post(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}}),
    );
    post(
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
            "data": {"mode": "blue"}}),
    );
    ns
}

fn replicas_of_web(rig: &Rig, ns: &str) -> Value {
    let d: Value = serde_json::from_str(&kubeapi::call(
        rig.cluster(DISRUPTABLE),
        "GET",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments/web"),
        None,
    ))
    .unwrap();
    d["spec"]["replicas"].clone()
}

/// The `continue` token of a paged answer's footer.
fn continue_token(text: &str) -> String {
    let at = text
        .find("\"continue\": \"")
        .unwrap_or_else(|| panic!("no continue token in:\n{text}"))
        + 13;
    text[at..].split('"').next().unwrap().to_string()
}

/// The plan id of a dry-run answer.
fn plan_of(text: &str) -> String {
    let at = text
        .find("plan: p-")
        .unwrap_or_else(|| panic!("no plan id in:\n{text}"));
    text[at + 6..at + 6 + 26].to_string()
}

#[test]
fn two_replicas_behind_a_service_answer_alike_and_refuse_what_stays_with_one() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let ns = seed(rig);
    let (a, b) = (replica(rig, &ns), replica(rig, &ns));
    let (a, b) = (a.shim.port, b.shim.port);

    // No session: initialize answers, but no Mcp-Session-Id; tools/list
    // works on the other replica without one.
    let init = rpc(
        a,
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}},
            "clientInfo": {"name": "e2e-replicas", "version": "1"}}),
    );
    let caps = &init["result"]["capabilities"];
    assert!(caps["tools"].is_object(), "{init}");
    assert!(
        caps["resources"]["subscribe"] != true && caps["tools"]["listChanged"] != true,
        "a stateless endpoint offered notifications: {init}"
    );
    let instructions = init["result"]["instructions"].as_str().unwrap();
    assert!(
        instructions.contains("stateless") && instructions.contains("Pass `cluster`"),
        "{instructions}"
    );
    let tools = rpc(b, 2, "tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"pods_list") && names.contains(&"cluster_use"));

    // Reads naming their cluster: the same answer on either replica.
    for port in [a, b, a, b] {
        let t = ok(port, "namespaces_list", json!({"cluster": DISRUPTABLE}));
        assert!(t.contains(&ns), "port {port}:\n{t}");
        let t = ok(
            port,
            "resources_get",
            json!({"cluster": DISRUPTABLE, "apiVersion": "v1", "kind": "ConfigMap",
                "namespace": ns, "name": "settings", "output": "yaml"}),
        );
        assert!(t.contains("mode: blue"), "port {port}:\n{t}");
    }
    // Without `cluster`, both go to the daemon's default cluster.
    for port in [a, b] {
        let t = ok(port, "namespaces_list", json!({}));
        assert!(
            !t.contains(&ns),
            "port {port} did not use the default:\n{t}"
        );
    }

    // The active cluster: refused with how to name it instead; nothing kept.
    let e = err(a, "cluster_use", json!({"cluster": DISRUPTABLE}));
    assert!(
        e.contains("stateless") && e.contains(&format!("\"cluster\": \"{DISRUPTABLE}\"")),
        "{e}"
    );
    let e = err(b, "cluster_use", json!({"cluster": "no-such-cluster"}));
    assert!(e.contains("no-such-cluster"), "{e}");
    let t = ok(b, "cluster_current", json!({}));
    assert!(
        t.contains("stateless") && t.contains(SHARED[0]),
        "cluster_current on b:\n{t}"
    );
    let t = ok(a, "namespaces_list", json!({}));
    assert!(!t.contains(&ns), "cluster_use changed a later call:\n{t}");

    // Pages stay with the replica that made them.
    let first = ok(
        a,
        "namespaces_list",
        json!({"cluster": DISRUPTABLE, "limit": 1}),
    );
    let token = continue_token(&first);
    let e = err(
        b,
        "namespaces_list",
        json!({"cluster": DISRUPTABLE, "limit": 1, "continue": token}),
    );
    assert!(
        e.contains("another nskd replica") && e.contains("without `continue`"),
        "{e}"
    );
    let second = ok(
        a,
        "namespaces_list",
        json!({"cluster": DISRUPTABLE, "limit": 1, "continue": token}),
    );
    assert_ne!(first.lines().nth(1), second.lines().nth(1), "{second}");

    // Plans too: one made on a is refused by b (nothing sent), applies on a.
    let scale = json!({"cluster": DISRUPTABLE, "apiVersion": "apps/v1", "kind": "Deployment",
        "namespace": ns, "name": "web", "scale": 2});
    let mut dry = scale.clone();
    dry["dryRun"] = json!(true);
    let plan = plan_of(&ok(a, "resources_scale", dry));
    let mut apply = scale.clone();
    apply["plan"] = json!(plan);
    let e = err(b, "resources_scale", apply.clone());
    assert!(
        e.contains(&plan) && e.contains("another nskd replica") && e.contains("dryRun"),
        "{e}"
    );
    assert_eq!(
        replicas_of_web(rig, &ns),
        1,
        "b applied a plan it did not make"
    );
    let t = ok(a, "resources_scale", apply);
    assert!(t.contains(&format!("Applied plan {plan}")), "{t}");
    assert_eq!(replicas_of_web(rig, &ns), 2);

    // A change a confirm rule holds: no request can reach the client, so
    // it is refused, saying where it can be confirmed.
    let e = err(
        b,
        "resources_delete",
        json!({"cluster": DISRUPTABLE, "kind": "ConfigMap", "namespace": ns, "name": "settings"}),
    );
    assert!(
        e.contains("stateless") && e.contains("nothing was sent"),
        "{e}"
    );
    kubeapi::call(
        rig.cluster(DISRUPTABLE),
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps/settings"),
        None,
    );

    // Subscriptions would never be notified: refused.
    let m = rpc(
        a,
        9,
        "resources/subscribe",
        json!({"uri": "nskd://clusters"}),
    );
    let msg = m["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("stateless"), "{m}");

    // The official Python SDK through a round-robin "Service".
    let service = ServiceProxy::start(vec![a, b]);
    let out = python(service.port, &ns);
    assert_eq!(out["initialized"], true, "{out}");
    let results = out["results"].as_array().unwrap();
    assert!(results.len() >= 6, "{out}");
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["isError"], false, "{out}");
        // Alternately the namespaces (this test's among them) and the
        // ConfigMaps of this test's namespace.
        let want = if i % 2 == 0 { ns.as_str() } else { "settings" };
        assert!(r["text"].as_str().unwrap().contains(want), "{out}");
    }
    let spread = service.connections();
    assert!(
        spread.iter().all(|&n| n >= 4),
        "the proxy did not spread the client's requests over both replicas: {spread:?}"
    );
    let e = &out["cluster_use"];
    assert!(
        e["isError"] == true && e["text"].as_str().unwrap().contains("stateless"),
        "{out}"
    );

    kubeapi::call(
        rig.cluster(DISRUPTABLE),
        "DELETE",
        &format!("/api/v1/namespaces/{ns}"),
        None,
    );
}

/// Runs tests/clients/http_replicas_client.py (the official Python MCP
/// SDK) against `port`: its last line of output.
fn python(port: u16, ns: &str) -> Value {
    let clients = crate::mcp_clients::setup();
    let out = Command::new(clients.join("venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/http_replicas_client.py"))
        .arg(format!("http://127.0.0.1:{port}/mcp"))
        .arg(DISRUPTABLE)
        .arg(ns)
        .env("NSKD_SHIM_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
