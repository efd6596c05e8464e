//! Side-by-side parity run: the Go kubernetes-mcp-server (npm package,
//! pinned 0.0.67) and nskd (daemon + mcp-shim) on the same real cluster,
//! the same tool calls, raw answers kept in docs/parity/raw/, the table in
//! docs/parity.md.
//!
//! Usage: cargo build --bins && cargo run -p nskd-e2e --bin parity -- PATH/TO/kubernetes-mcp-server
//! (scripts/parity installs the npm package and runs this).

use std::{path::PathBuf, time::Instant};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    go_server,
    mcp::Shim,
    rig,
};
use serde_json::{Value, json};

struct Outcome {
    ok: bool,
    bytes: usize,
    ms: f64,
    text: String,
}

async fn call(session: &Shim, tool: &str, args: &Value) -> Outcome {
    let started = Instant::now();
    let (ok, text) = match session.try_call(tool, args.clone()).await {
        Ok(a) => (!a.is_error, a.text),
        Err(e) => (false, e),
    };
    Outcome {
        ok,
        bytes: text.len(),
        ms: started.elapsed().as_secs_f64() * 1000.0,
        text,
    }
}

fn cell(o: &Option<Outcome>) -> String {
    match o {
        None => "— (no such tool)".into(),
        Some(o) => format!(
            "{} · {} B · {:.1} ms",
            if o.ok { "ok" } else { "error" },
            o.bytes,
            o.ms
        ),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let go_bin: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: parity PATH/TO/kubernetes-mcp-server"))?;
    let rig = rig::shared().ok_or_else(|| anyhow::anyhow!("no kube-apiserver rig"))?;
    let cluster = rig.cluster("c1-sv5");
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-sv5"]));
    let shim = Shim::start(&d.socket).await;
    let go = go_server::start(&go_bin, &cluster.kubeconfig, false).await?;

    let go_tools: Vec<String> = go
        .tools()
        .await
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    let our_tools: Vec<String> = shim
        .tools()
        .await
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();

    let pod = "cart-01";
    let calls: Vec<(&str, Value)> = vec![
        ("configuration_view", json!({})),
        ("namespaces_list", json!({})),
        ("nodes_list", json!({})),
        ("pods_list", json!({})),
        ("pods_list", json!({"labelSelector": "tier=web"})),
        ("pods_list_in_namespace", json!({"namespace": "shop"})),
        ("pods_list", json!({"namespace": "shop"})),
        ("pods_get", json!({"name": pod, "namespace": "shop"})),
        ("pods_log", json!({"name": pod, "namespace": "shop"})),
        ("pods_top", json!({})),
        ("nodes_top", json!({})),
        ("events_list", json!({})),
        (
            "resources_list",
            json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
        ),
        (
            "resources_list",
            json!({"apiVersion": "v1", "kind": "Secret", "namespace": "shop"}),
        ),
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Service", "name": "frontend", "namespace": "shop"}),
        ),
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Secret", "name": "db-credentials", "namespace": "shop"}),
        ),
        (
            "resources_get",
            json!({"apiVersion": "v1", "kind": "Pod", "name": "no-such-pod", "namespace": "shop"}),
        ),
    ];
    // Changes: each server gets its own object names ({who} = go | nskd).
    let changes: Vec<(&str, String)> = vec![
        ("resources_create_or_update", r#"{"resource": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: parity-{who}\n  namespace: default\ndata:\n  k: v\n"}"#.into()),
        ("resources_scale", r#"{"apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend", "namespace": "shop", "scale": 2}"#.into()),
        ("pods_run", r#"{"image": "registry.invalid/parity:1", "name": "parity-run-{who}", "namespace": "default"}"#.into()),
        ("pods_delete", r#"{"name": "parity-run-{who}", "namespace": "default"}"#.into()),
        ("resources_delete", r#"{"apiVersion": "v1", "kind": "ConfigMap", "name": "parity-{who}", "namespace": "default"}"#.into()),
        ("pods_exec", r#"{"name": "cart-01", "namespace": "shop", "command": ["echo", "hi"]}"#.into()),
        ("nodes_log", r#"{"name": "node-1", "query": "kubelet.log"}"#.into()),
        ("nodes_stats_summary", r#"{"name": "node-1"}"#.into()),
    ];
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let raw = root.join("parity/raw");
    std::fs::create_dir_all(&raw)?;
    let mut rows = Vec::new();
    let reads = calls.iter().map(|(t, a)| (*t, a.clone(), a.clone()));
    let writes = changes.iter().map(|(t, a)| {
        let per = |who: &str| {
            serde_json::from_str::<Value>(&a.replace("{who}", who)).expect("valid JSON")
        };
        (*t, per("go"), per("nskd"))
    });
    for (i, (tool, go_args, args)) in reads.chain(writes).enumerate() {
        let (tool, args) = (&tool, &args);
        let go_out = if go_tools.iter().any(|t| t == *tool) {
            Some(call(&go, tool, &go_args).await)
        } else {
            None
        };
        let our_out = if our_tools.iter().any(|t| t == *tool) {
            Some(call(&shim, tool, args).await)
        } else {
            None
        };
        for (who, o) in [("go", &go_out), ("nskd", &our_out)] {
            if let Some(o) = o {
                // The raw files are committed: never a credential, even a test one.
                let kept = o
                    .text
                    .replace(
                        &cluster.admin_token,
                        "<TOKEN PRINTED BY THE SERVER, removed by scripts/parity>",
                    )
                    .replace(
                        "czNjcjN0LWMxLXN2NQ==",
                        "<SECRET VALUE PRINTED BY THE SERVER, removed by scripts/parity>",
                    );
                std::fs::write(
                    raw.join(format!("{i:02}-{tool}.{who}.txt")),
                    format!("# {tool} {args}\n{kept}"),
                )?;
            }
        }
        let secret_leak = |o: &Option<Outcome>| {
            o.as_ref()
                .is_some_and(|o| o.text.contains("czNjcjN0") || o.text.contains("s3cr3t"))
        };
        let token_leak = |o: &Option<Outcome>| {
            o.as_ref()
                .is_some_and(|o| o.text.contains(&cluster.admin_token))
        };
        let note = match (&go_out, &our_out) {
            _ if token_leak(&go_out) && !token_leak(&our_out) => {
                "Go prints the kubeconfig's bearer token; nskd redacts credentials".to_string()
            }
            _ if secret_leak(&go_out) && !secret_leak(&our_out) => {
                "Go shows the Secret's value; nskd masks it".to_string()
            }
            (Some(g), Some(o)) if g.ok == o.ok => "same outcome".into(),
            (Some(g), Some(o)) if o.ok && !g.ok => "nskd answers, Go fails".into(),
            (Some(_), Some(_)) => "Go answers, nskd fails".into(),
            (None, Some(_)) => "nskd only".into(),
            (Some(_), None) => "Go only".into(),
            (None, None) => "neither".into(),
        };
        rows.push(format!(
            "| {i:02} | `{tool}` `{args}` | {} | {} | {note} |",
            cell(&go_out),
            cell(&our_out)
        ));
    }
    let missing: Vec<&String> = go_tools.iter().filter(|t| !our_tools.contains(t)).collect();
    let extra: Vec<&String> = our_tools.iter().filter(|t| !go_tools.contains(t)).collect();
    let mut md = String::from(
        "# Parity with the Go kubernetes-mcp-server 0.0.67\n\nGenerated by `scripts/parity` (tests/src/bin/parity.rs): both servers on the same real kube-apiserver 1.20 (rig cluster c1-sv5: 3 nodes, 7 namespaces, 25 pods, one Secret), the same calls, raw answers in [parity/raw/](parity/raw/). No kubelet and no metrics-server run in the rig, so `pods_log`, `pods_exec`, `nodes_log`, `nodes_stats_summary` and `*_top` fail on both sides by design (nskd's own tests run `pods_log` and `pods_exec` end to end against a fake kubelet). Changes use separate object names per server ({who} = go / nskd).\n\n",
    );
    md.push_str(&format!(
        "Go tools (core, config): {}\n\nGo tools nskd lacks: {}\n\nnskd tools Go lacks: {}\n\n",
        go_tools.join(", "),
        if missing.is_empty() {
            "none".to_string()
        } else {
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    md.push_str("| # | call | Go 0.0.67 | nskd | note |\n|---|---|---|---|---|\n");
    md.push_str(&rows.join("\n"));
    md.push('\n');
    std::fs::write(root.join("parity.md"), md)?;
    println!("wrote docs/parity.md ({} calls)", rows.len());
    go.close().await;
    shim.close().await;
    Ok(())
}
