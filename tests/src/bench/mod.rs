//! Pieces of the benchmarks (`bench`, `bench-calls`, `bench-refresh`, the
//! `parallel_cluster_status` cargo bench): timing statistics, the raw-GET
//! floor, fleets of many kubeconfigs over a few real apiservers, the
//! refresh run, and facts about the machine and its processes.
//!
//! ```no_run
//! use nskd_e2e::bench::stats::Samples;
//! let mut s = Samples::default();
//! s.time(|| std::thread::sleep(std::time::Duration::from_millis(1)));
//! println!("p50 {}", s.p50_ms());
//! ```

pub mod fleet;
pub mod floor;
pub mod machine;
pub mod refresh;
pub mod replicas;
pub mod stats;

/// The part of `doc` from `begin` to `end`, markers included (a section a
/// `scripts/bench` subcommand owns).
pub fn marked_section<'a>(doc: &'a str, begin: &str, end: &str) -> Option<&'a str> {
    let a = doc.find(begin)?;
    let b = doc[a..].find(end)? + a;
    Some(&doc[a..b + end.len()])
}
