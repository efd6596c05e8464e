//! Benchmark: kubeconfig refresh of N clusters through the fake nsk (see
//! `nskd_e2e::bench::refresh`), cold and warm.
//!
//! Usage: cargo run --release -p nskd-e2e --bin bench-refresh -- [N...]
//! (needs the release binaries: cargo build --release --bins)

use nskd_e2e::{bench::refresh, rig};

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
        let f = refresh::run(rig, n, RUNS);
        println!(
            "| {n} | {:.2} s | {:.2} s | {:.2} s | {} |",
            f.cold.as_secs_f64(),
            f.warm.as_secs_f64(),
            f.warm_daemon.as_secs_f64(),
            f.nsk_runs
        );
    }
}
