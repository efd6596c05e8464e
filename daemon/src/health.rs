//! Per-cluster health: Ready / Degraded / NotReady / Unknown, fed by probes
//! and by real calls.
//!
//! Transitions:
//! - a success resets the failure count; the cluster is Ready, or Degraded
//!   when slower than `degraded_latency` or when some nodes are NotReady;
//! - a failure of a cluster that never answered makes it NotReady at once;
//!   a cluster that did answer before is Degraded until `unhealthy_after`
//!   consecutive failures, then NotReady;
//! - a cluster whose kubeconfig is unusable is Unknown, with the reason.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, SystemTime},
};

use crate::{
    config::HealthConfig,
    error::{ErrorKind, OpError},
};

/// The tracker's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// Never probed, or unusable kubeconfig.
    #[default]
    Unknown,
    /// Answering within the latency threshold, all nodes Ready.
    Ready,
    /// Answering but slow or with NotReady nodes, or failing but not yet
    /// `unhealthy_after` times.
    Degraded,
    /// Not answering.
    NotReady,
}

/// What a successful probe measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeData {
    /// Server gitVersion.
    pub version: String,
    /// Round trip of `/version`.
    pub latency: Duration,
    /// Nodes (None when listing them failed, e.g. RBAC).
    pub nodes_total: Option<u32>,
    /// Ready nodes.
    pub nodes_ready: Option<u32>,
    /// Namespaces (None when listing them failed).
    pub namespaces: Option<u32>,
    /// Errors of the optional parts of the probe.
    pub partial_errors: Vec<String>,
}

/// Everything known about one cluster's health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterHealth {
    /// Verdict.
    pub state: Health,
    /// Last data of a successful probe.
    pub data: ProbeData,
    /// Last error, one line, redacted.
    pub error: Option<String>,
    /// The kind of `error` (`Unspecified` when there is none).
    pub error_kind: ErrorKind,
    /// Why Degraded.
    pub degraded_reason: Option<String>,
    /// When the last probe or call finished.
    pub last_checked: Option<SystemTime>,
    /// Last success.
    pub last_success: Option<SystemTime>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

/// The tracker.
#[derive(Debug)]
pub struct Tracker {
    config: HealthConfig,
    states: RwLock<HashMap<String, ClusterHealth>>,
}

impl Tracker {
    /// An empty tracker.
    pub fn new(config: HealthConfig) -> Self {
        Self {
            config,
            states: RwLock::new(HashMap::new()),
        }
    }

    /// Health settings.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Whether `name`'s last probe or call failed (or it is NotReady):
    /// then no cached answer stands in for it.
    pub fn failing(&self, name: &str) -> bool {
        self.states
            .read()
            .expect("health lock poisoned")
            .get(name)
            .is_some_and(|h| h.consecutive_failures > 0 || h.state == Health::NotReady)
    }

    /// The current health of `name` (Unknown if never seen).
    pub fn get(&self, name: &str) -> ClusterHealth {
        self.states
            .read()
            .expect("health lock poisoned")
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets clusters that are gone.
    pub fn forget<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        let mut states = self.states.write().expect("health lock poisoned");
        for n in names {
            states.remove(n);
        }
    }

    /// Marks a cluster whose kubeconfig cannot be used.
    pub fn record_unusable(&self, name: &str, kind: ErrorKind, reason: &str) -> ClusterHealth {
        self.update(name, |h| {
            h.state = Health::Unknown;
            h.error = Some(crate::redact::redact(reason));
            h.error_kind = kind;
            h.degraded_reason = None;
            h.last_checked = Some(SystemTime::now());
        })
    }

    /// Records a probe's outcome.
    pub fn record_probe(&self, name: &str, outcome: Result<ProbeData, &OpError>) -> ClusterHealth {
        match outcome {
            Ok(data) => self.update(name, |h| self.success(h, Some(data))),
            Err(error) => self.update(name, |h| self.failure(h, error)),
        }
    }

    /// Records a real call: `Ok` with its latency, or a cluster failure.
    /// Request errors (RBAC, not found) say nothing about health: skip them.
    pub fn record_call(&self, name: &str, outcome: Result<Duration, &OpError>) {
        match outcome {
            Ok(_) => {
                self.update(name, |h| self.success(h, None));
            }
            Err(error) => {
                self.update(name, |h| self.failure(h, error));
            }
        }
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut ClusterHealth)) -> ClusterHealth {
        let mut states = self.states.write().expect("health lock poisoned");
        let h = states.entry(name.to_string()).or_default();
        f(h);
        h.clone()
    }

    fn success(&self, h: &mut ClusterHealth, data: Option<ProbeData>) {
        let now = SystemTime::now();
        h.consecutive_failures = 0;
        h.error = None;
        h.error_kind = ErrorKind::Unspecified;
        h.last_checked = Some(now);
        h.last_success = Some(now);
        if let Some(data) = data {
            h.data = data;
        } else if h.state != Health::NotReady && h.state != Health::Unknown {
            // A real call proves reachability but measures nothing more.
            return;
        }
        h.degraded_reason = self.degradation(&h.data);
        h.state = if h.degraded_reason.is_some() {
            Health::Degraded
        } else {
            Health::Ready
        };
    }

    fn failure(&self, h: &mut ClusterHealth, error: &OpError) {
        h.consecutive_failures += 1;
        h.error = Some(crate::redact::redact(&error.to_string()));
        h.error_kind = error.kind();
        h.last_checked = Some(SystemTime::now());
        let never_answered = h.last_success.is_none();
        if never_answered || h.consecutive_failures >= self.config.unhealthy_after {
            h.state = Health::NotReady;
            h.degraded_reason = None;
        } else {
            h.state = Health::Degraded;
            h.degraded_reason = Some(format!(
                "{} of {} failed probes before NotReady",
                h.consecutive_failures, self.config.unhealthy_after
            ));
        }
    }

    fn degradation(&self, d: &ProbeData) -> Option<String> {
        let mut reasons = Vec::new();
        if d.latency > self.config.degraded_latency {
            reasons.push(format!(
                "slow: {} ms > {} ms",
                d.latency.as_millis(),
                self.config.degraded_latency.as_millis()
            ));
        }
        if let (Some(total), Some(ready)) = (d.nodes_total, d.nodes_ready)
            && ready < total
        {
            reasons.push(format!("{} of {total} nodes NotReady", total - ready));
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> Tracker {
        Tracker::new(HealthConfig {
            probe_interval: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(5),
            degraded_latency: Duration::from_millis(500),
            unhealthy_after: 3,
            probe_concurrency: 4,
        })
    }

    fn refused() -> OpError {
        OpError::Kinded {
            kind: ErrorKind::Refused,
            message: "refused".into(),
        }
    }

    fn ok(latency_ms: u64, nodes: (u32, u32)) -> Result<ProbeData, &'static OpError> {
        Ok(ProbeData {
            version: "v1.20.2".into(),
            latency: Duration::from_millis(latency_ms),
            nodes_total: Some(nodes.0),
            nodes_ready: Some(nodes.1),
            namespaces: Some(4),
            partial_errors: vec![],
        })
    }

    #[test]
    fn three_failures_make_a_healthy_cluster_not_ready_and_one_success_recovers_it() {
        let t = tracker();
        assert_eq!(t.record_probe("a", ok(10, (3, 3))).state, Health::Ready);
        assert_eq!(t.record_probe("a", Err(&refused())).state, Health::Degraded);
        assert_eq!(t.record_probe("a", Err(&refused())).state, Health::Degraded);
        let h = t.record_probe("a", Err(&refused()));
        assert_eq!((h.state, h.consecutive_failures), (Health::NotReady, 3));
        assert_eq!(h.error.as_deref(), Some("refused"));
        assert_eq!(h.error_kind, ErrorKind::Refused);
        let h = t.record_probe("a", ok(10, (3, 3)));
        assert_eq!(
            (h.state, h.consecutive_failures, h.error, h.error_kind),
            (Health::Ready, 0, None, ErrorKind::Unspecified)
        );
    }

    #[test]
    fn a_cluster_that_never_answered_is_not_ready_at_once() {
        let t = tracker();
        assert_eq!(
            t.record_probe("dead", Err(&refused())).state,
            Health::NotReady
        );
    }

    #[test]
    fn slow_or_node_trouble_is_degraded_with_a_reason() {
        let t = tracker();
        let h = t.record_probe("slow", ok(900, (3, 3)));
        assert_eq!(h.state, Health::Degraded);
        assert!(h.degraded_reason.unwrap().contains("slow"));
        let h = t.record_probe("nodes", ok(5, (3, 2)));
        assert_eq!(h.degraded_reason.as_deref(), Some("1 of 3 nodes NotReady"));
    }

    #[test]
    fn real_calls_feed_the_tracker_and_errors_are_redacted() {
        let t = tracker();
        let rejected = OpError::Kinded {
            kind: ErrorKind::Unauthorized,
            message: "Bearer abcdefghijklmnop rejected".into(),
        };
        t.record_call("a", Err(&rejected));
        let h = t.get("a");
        assert_eq!(h.state, Health::NotReady);
        assert!(!h.error.unwrap().contains("abcdefghijklmnop"));
        t.record_call("a", Ok(Duration::from_millis(3)));
        assert_eq!(t.get("a").state, Health::Ready);
    }
}
