//! End-to-end tests: the real nskd, mcp-shim and nskctl binaries against
//! real kube-apiservers on loopback (see `nskd_e2e::rig`). One test binary
//! so that the rig is started once for all of them.

mod adversarial;
mod cache;
mod change_tools;
mod config;
mod discovery;
mod faults;
mod fleet_answers;
mod helm;
mod helm_index;
mod helm_writes;
mod hostile_sources;
mod http_replicas;
mod http_shim;
mod kube_tools;
mod local_trust;
mod logs_search;
mod malformed;
mod mcp_clients;
mod nsk;
mod observe;
mod packaging;
mod plans;
mod rancher;
mod replicas;
mod shim;
mod socket;
mod status;
mod team;
mod throttle;
mod units;
mod version;
mod workload;

use nskd_e2e::rig::{self, Rig};

/// The shared rig, or `None` after a loud skip message.
pub fn rig_or_skip() -> Option<&'static Rig> {
    rig::shared()
}

/// Polls `f` every 50 ms until it returns `Some` or `secs` pass.
pub fn eventually<T>(secs: f64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The data rows of a table answer: no header, blank lines, notes (`...`)
/// or the watch-cache line.
pub fn data_rows(text: &str) -> Vec<&str> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("...") && !l.starts_with('('))
        .collect()
}

/// `cluster` is still served from its kubeconfig after a failed refresh,
/// and `status` shows it Degraded, "using cached kubeconfig".
pub fn assert_served_stale(d: &nskd_e2e::daemon::Daemon, cluster: &str) {
    let status = d.status_json(&[cluster]);
    let c = &status["clusters"][0];
    assert_eq!(c["status"], "Degraded", "{c}");
    assert!(
        c["degraded_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("using cached kubeconfig"),
        "{c}"
    );
}
