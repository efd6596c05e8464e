//! Kubeconfig refresh of N clusters through the fake nsk, whose kubeconfigs
//! point at the real test apiservers (N names over the rig's clusters):
//! `nskctl refresh --force` end to end and the daemon's own duration, cold
//! (every file new) and warm (every file unchanged).

use std::time::{Duration, Instant};

use crate::{
    daemon::{Daemon, DaemonSpec},
    fake_nsk::{FakeCluster, FakeNsk, FakeState},
    rig::{Rig, SHARED},
};

const TOKEN: &str = "token-bench:BENCHSECRETTOKEN0123456789";

/// What one refresh run of N clusters measured.
#[derive(Debug, Clone)]
pub struct RefreshFigures {
    /// Clusters listed by the fake nsk.
    pub clusters: usize,
    /// First refresh, every kubeconfig new.
    pub cold: Duration,
    /// Median wall time of the warm refreshes (`nskctl refresh --force`).
    pub warm: Duration,
    /// The daemon's own duration of that median warm refresh.
    pub warm_daemon: Duration,
    /// `nsk` processes run in all.
    pub nsk_runs: usize,
}

/// Refreshes `n` clusters once cold, then `warm_runs` times warm.
pub fn run(rig: &Rig, n: usize, warm_runs: usize) -> RefreshFigures {
    let home = tempfile::tempdir().expect("tempdir");
    let base: Vec<FakeCluster> = SHARED
        .iter()
        .enumerate()
        .map(|(i, c)| FakeCluster::from_rig(rig.cluster(c), &format!("c-base{i}")))
        .collect();
    let clusters = (0..n)
        .map(|i| base[i % base.len()].renamed(&format!("c{i:03}-bench"), &format!("c-m-{i:05}")))
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
            "[health]
probe_interval = \"1h\"
[nsk]
source = \"nsk\"
nsk_path = {:?}
rancher_token = {TOKEN:?}
min_force_interval = \"0s\"
",
            fake.path().display().to_string()
        ),
        ..DaemonSpec::bench()
    };
    let d = Daemon::start(&spec, |_| {});
    let run = || {
        let t = Instant::now();
        let v = d.nskctl_json(&["refresh", "--force"]);
        assert_eq!(v["listed"].as_u64(), Some(n as u64), "{v}");
        assert!(v["failed"].as_array().is_some_and(|f| f.is_empty()), "{v}");
        let daemon = Duration::from_millis(v["duration_ms"].as_u64().unwrap_or(0));
        (t.elapsed(), daemon)
    };
    let (cold, _) = run();
    let mut warm: Vec<_> = (0..warm_runs.max(1)).map(|_| run()).collect();
    warm.sort();
    let (wall, daemon) = warm[warm.len() / 2];
    RefreshFigures {
        clusters: n,
        cold,
        warm: wall,
        warm_daemon: daemon,
        nsk_runs: fake.calls().len(),
    }
}
