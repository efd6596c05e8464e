//! Benchmark: what an agent and an operator wait for, against real
//! apiservers: MCP session start (spawn mcp-shim → initialized), tool calls
//! through shim → nskd → apiserver, and `nskctl status` with a dead cluster.
//!
//! Usage: cargo run --release -p nskd-e2e --bin bench-calls
//! (needs the release binaries: cargo build --release --bins)

use nskd_e2e::{
    bench::stats::{Samples, human},
    daemon::{Daemon, DaemonSpec},
    endpoints::refused_port,
    mcp::Shim,
    rig::{self, SHARED},
};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(rig) = rig::shared() else {
        eprintln!("no kube-apiserver rig: build it with tests/rig/build.sh");
        std::process::exit(1);
    };
    let dead = refused_port();
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        rig.write_kubeconfigs(dir, &SHARED);
        rig.write_unreachable(dir, "c9-dead", "c1-sv5", dead);
    });

    let mut rows = Vec::new();
    let mut status = Samples::default();
    for _ in 0..10 {
        let out = status.time(|| d.nskctl(&["status"]));
        assert!(out.status.success());
    }
    rows.push((
        "`nskctl status` (3 live + 1 refused, live probe), process start to exit".to_string(),
        status.median(),
    ));

    let mut init = Samples::default();
    for _ in 0..10 {
        let shim = init.time_async(Shim::start(&d.socket)).await;
        shim.close().await;
    }
    rows.push((
        "MCP session start: spawn mcp-shim to `initialize` answered".into(),
        init.median(),
    ));

    let shim = Shim::start(&d.socket).await;
    shim.ok("namespaces_list", json!({})).await; // connect once
    let calls: [(&str, serde_json::Value); 4] = [
        (
            "pods_list namespace=shop (20 pods)",
            json!({"namespace": "shop"}),
        ),
        ("pods_list all namespaces (25 pods)", json!({})),
        (
            "namespaces_list on all 3 live clusters (\"*\")",
            json!({"clusters": "*"}),
        ),
        ("clusters_status (from the tracker)", json!({})),
    ];
    for (label, args) in calls {
        let tool = label.split_whitespace().next().unwrap();
        let mut times = Samples::default();
        for _ in 0..30 {
            times.time_async(shim.ok(tool, args.clone())).await;
        }
        rows.push((
            format!("`{tool}`: {}", &label[tool.len() + 1..]),
            times.median(),
        ));
    }
    shim.close().await;

    println!("| what | median |");
    println!("|---|---|");
    for (what, t) in rows {
        println!("| {what} | {} |", human(t));
    }
}
