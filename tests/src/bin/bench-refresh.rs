//! Benchmark: kubeconfig refresh of N clusters through the fake nsk, whose
//! kubeconfigs point at the real test apiservers (N names over the rig's
//! clusters). Measures `nskctl refresh --force` end to end and the
//! daemon's own duration, cold (every file new) and warm (unchanged).
//!
//! Usage: cargo run --release -p nskd-e2e --bin bench-refresh -- [N...]
//! (needs the release binaries: cargo build --release --bins)

use std::time::Instant;

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    fake_nsk::{FakeCluster, FakeNsk, FakeState},
    rig::{self, SHARED},
};

const TOKEN: &str = "token-bench:BENCHSECRETTOKEN0123456789";
const RUNS: usize = 5;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![50, 200]
    } else {
        sizes
    };
    let Some(rig) = rig::shared() else {
        eprintln!("no kube-apiserver rig: build it with tests/rig/build.sh");
        std::process::exit(1);
    };
    println!(
        "| clusters | cold refresh (all new) | warm refresh (median of {RUNS}) | daemon-side warm | nsk runs |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes {
        let home = tempfile::tempdir().expect("tempdir");
        let base: Vec<FakeCluster> = SHARED
            .iter()
            .enumerate()
            .map(|(i, c)| FakeCluster::from_rig(rig.cluster(c), &format!("c-base{i}")))
            .collect();
        let clusters = (0..n)
            .map(|i| {
                base[i % base.len()].renamed(&format!("c{i:03}-bench"), &format!("c-m-{i:05}"))
            })
            .collect();
        let fake = FakeNsk::create(
            &home.path().join("fake"),
            FakeState {
                expected_token: Some(TOKEN.into()),
                ..FakeState::with_clusters(clusters)
            },
        );
        let spec = DaemonSpec {
            sections: format!(
                "[health]\nprobe_interval = \"1h\"\n[nsk]\nsource = \"nsk\"\nnsk_path = {:?}\nrancher_url = \"https://rancher.bench.invalid\"\nrancher_token = {TOKEN:?}\n",
                fake.path().display().to_string()
            ),
            ..DaemonSpec::default()
        };
        let d = Daemon::start(&spec, |_| {});
        let run = || {
            let t = Instant::now();
            let v = d.nskctl_json(&["refresh", "--force"]);
            assert_eq!(v["listed"].as_u64(), Some(n as u64), "{v}");
            assert!(v["failed"].as_array().is_some_and(|f| f.is_empty()), "{v}");
            (t.elapsed(), v["duration_ms"].as_u64().unwrap_or(0))
        };
        let (cold, _) = run();
        let mut warm: Vec<_> = (0..RUNS).map(|_| run()).collect();
        warm.sort();
        let (wall, daemon_ms) = warm[RUNS / 2];
        println!(
            "| {n} | {:.2} s | {:.2} s | {:.2} s | {} |",
            cold.as_secs_f64(),
            wall.as_secs_f64(),
            daemon_ms as f64 / 1000.0,
            fake.calls().len()
        );
    }
}
