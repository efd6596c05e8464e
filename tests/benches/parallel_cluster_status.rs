//! BenchmarkParallelClusterStatus: a live status (`refresh = true`, every
//! cluster probed now) of 50 clusters through nskd's gRPC API: 45 on the
//! rig's real apiservers, 5 refused or black-holed. Prints a Go-style
//! benchmark line; `-- --out FILE` also writes it as JSON (scripts/bench
//! copies it into docs/benchmarks.md).
//!
//! Usage: cargo build --release --workspace --bins && cargo bench --workspace --bench parallel_cluster_status

use std::time::{Duration, Instant};

use nskd_e2e::{
    bench::{fleet::Fleet, stats::Samples},
    daemon::{Daemon, DaemonSpec},
    rig::{self, SHARED},
};
use nskd_proto::{client::NskdClient, socket::SocketLocation, v1::ClusterStatusRequest};

const CLUSTERS: usize = 50;
const ITERATIONS: usize = 10;
/// `DaemonSpec::bench()`'s probe timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1));
    let Some(rig) = rig::shared() else {
        anyhow::bail!("no kube-apiserver rig: build it with tests/rig/build.sh");
    };
    let mut fleet = None;
    let d = Daemon::start(&DaemonSpec::bench(), |dir| {
        fleet = Some(Fleet::write(rig, dir, CLUSTERS, &SHARED));
    });
    let fleet = fleet.expect("fleet");
    let location = SocketLocation::resolve(Some(&d.socket), Some(&d.environment))?;
    let client = NskdClient::connect(&location, "parallel_cluster_status").await?;
    let status = async || {
        let resp = client
            .clusters()
            .cluster_status(client.request(ClusterStatusRequest {
                clusters: Vec::new(),
                refresh: true,
                detail: false,
            }))
            .await
            .expect("ClusterStatus")
            .into_inner();
        assert_eq!(resp.clusters.len(), CLUSTERS);
    };
    status().await;
    let mut times = Samples::default();
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        times.time_async(status()).await;
    }
    let mean_ns = started.elapsed().as_nanos() / ITERATIONS as u128;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let line = format!("BenchmarkParallelClusterStatus-{cpus} {ITERATIONS} {mean_ns} ns/op");
    println!("{line}");
    if let Some(path) = out {
        let figure = serde_json::json!({
            "line": line,
            "fleet": fleet.describe(),
            "iterations": ITERATIONS,
            "mean_ns": mean_ns as u64,
            "median_ns": times.median().as_nanos() as u64,
            "probe_timeout_ms": PROBE_TIMEOUT.as_millis() as u64,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&figure)?)?;
    }
    Ok(())
}
