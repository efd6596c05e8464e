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
pub mod stats;
