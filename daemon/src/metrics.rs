//! Prometheus metrics named `nskd_*` (docs/operations.md; every series
//! carries an `environment` label), rendered at `/metrics`.

use std::{sync::OnceLock, time::Duration};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) with the `environment` label.
pub fn install(environment: &str) -> Option<&'static PrometheusHandle> {
    if HANDLE.get().is_none() {
        let recorder = PrometheusBuilder::new()
            .add_global_label("environment", environment)
            .set_buckets(&[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ])
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            let _ = HANDLE.set(handle);
            describe();
        }
    }
    HANDLE.get()
}

fn describe() {
    describe_gauge!(
        "kubernetes_mcp_cluster_total",
        "Clusters known to the daemon."
    );
    describe_gauge!(
        "kubernetes_mcp_cluster_healthy",
        "1 when the cluster is Ready or Degraded, else 0."
    );
    describe_counter!(
        "kubernetes_mcp_refresh_success_total",
        "Kubeconfig refreshes that succeeded."
    );
    describe_counter!(
        "kubernetes_mcp_refresh_failure_total",
        "Kubeconfig refreshes that failed or were partial, by reason."
    );
    describe_histogram!(
        "kubernetes_mcp_refresh_duration_seconds",
        "Duration of kubeconfig refreshes."
    );
    describe_histogram!(
        "kubernetes_mcp_cluster_api_latency_seconds",
        "Kubernetes API call latency by cluster and operation."
    );
    describe_counter!(
        "nskd_tool_calls_total",
        "MCP tool calls served, by tool and outcome."
    );
    describe_histogram!(
        "nskd_tool_call_duration_seconds",
        "MCP tool call duration, by tool and outcome."
    );
    describe_counter!(
        "nskd_grpc_requests_total",
        "gRPC requests, by method and code."
    );
    describe_gauge!(
        "nskd_connected_clients",
        "Open client connections on the socket (shims and nskctl)."
    );
    describe_counter!(
        "nskd_cache_hits_total",
        "Reads answered from a watch cache, by cluster and resource."
    );
    describe_counter!(
        "nskd_cache_misses_total",
        "Reads of a cacheable kind that went to the API server, by cluster, resource and reason."
    );
    describe_gauge!(
        "nskd_cache_objects",
        "Objects held by a cluster's watch caches."
    );
    describe_gauge!(
        "nskd_cache_bytes",
        "Bytes (serialized) held by a cluster's watch caches."
    );
    describe_counter!(
        "nskd_cache_watch_restarts_total",
        "Watches re-established after an error, by cluster and resource."
    );
    describe_gauge!(
        "nskd_replication_leader",
        "1 while this replica holds the refresher Lease, else 0."
    );
    describe_counter!(
        "nskd_replication_secrets_refused_total",
        "Kubeconfig Secrets refused (not used), by reason: name, size, content, untrusted."
    );
    describe_counter!(
        "nskd_replication_secrets_published_total",
        "Kubeconfig Secrets written by this replica as leader."
    );
}

/// Whether this replica holds the refresher Lease.
pub fn replication_leader(leader: bool) {
    gauge!("nskd_replication_leader").set(if leader { 1.0 } else { 0.0 });
}

/// A kubeconfig Secret refused.
pub fn replication_refused(reason: &'static str) {
    counter!("nskd_replication_secrets_refused_total", "reason" => reason).increment(1);
}

/// A kubeconfig Secret written.
pub fn replication_published() {
    counter!("nskd_replication_secrets_published_total").increment(1);
}

/// A read answered from a watch cache.
pub fn cache_hit(cluster: &str, resource: &str) {
    counter!("nskd_cache_hits_total", "cluster" => cluster.to_string(), "resource" => resource.to_string())
        .increment(1);
}

/// A read of a cacheable kind that went to the API server.
pub fn cache_miss(cluster: &str, resource: &str, reason: &'static str) {
    counter!("nskd_cache_misses_total", "cluster" => cluster.to_string(), "resource" => resource.to_string(), "reason" => reason)
        .increment(1);
}

/// A watch re-established after an error.
pub fn cache_watch_restart(cluster: &str, resource: &str) {
    counter!("nskd_cache_watch_restarts_total", "cluster" => cluster.to_string(), "resource" => resource.to_string())
        .increment(1);
}

/// What a cluster's caches hold now.
pub fn cache_usage(cluster: &str, objects: usize, bytes: usize) {
    gauge!("nskd_cache_objects", "cluster" => cluster.to_string()).set(objects as f64);
    gauge!("nskd_cache_bytes", "cluster" => cluster.to_string()).set(bytes as f64);
}

/// A Kubernetes API call's latency.
pub fn api_latency(cluster: &str, operation: &'static str, elapsed: Duration) {
    histogram!("kubernetes_mcp_cluster_api_latency_seconds", "cluster" => cluster.to_string(), "operation" => operation)
        .record(elapsed.as_secs_f64());
}

/// Why a refresh run did not fully succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailed {
    /// The whole run failed: the kind of its error.
    Run(nskd_proto::v1::ErrorKind),
    /// Some clusters failed, others were refreshed.
    Partial,
    /// Every cluster failed (the source itself answered).
    ClustersFailed,
}

impl RefreshFailed {
    /// The `reason` label: the error kind's name (`timeout`, `refused`,
    /// `unauthorized`, `storage`, ...), `partial` or `clusters_failed`.
    pub fn label(self) -> &'static str {
        match self {
            RefreshFailed::Run(kind) => nskd_proto::error_kind::label(kind),
            RefreshFailed::Partial => "partial",
            RefreshFailed::ClustersFailed => "clusters_failed",
        }
    }
}

/// A finished refresh run: `failure` is `None` on success.
pub fn refresh_done(failure: Option<RefreshFailed>, duration: Duration) {
    match failure {
        None => counter!("kubernetes_mcp_refresh_success_total").increment(1),
        Some(f) => {
            counter!("kubernetes_mcp_refresh_failure_total", "reason" => f.label()).increment(1)
        }
    }
    histogram!("kubernetes_mcp_refresh_duration_seconds").record(duration.as_secs_f64());
}

/// One gRPC request (and the tool it served, when a shim says).
pub fn grpc_request(
    method: &str,
    tool: Option<&str>,
    code: &str,
    verdict: Option<&str>,
    elapsed: Duration,
) {
    counter!("nskd_grpc_requests_total", "method" => method.to_string(), "code" => code.to_string()).increment(1);
    if let Some(tool) = tool.filter(|t| !t.is_empty()) {
        let outcome = match (code, verdict) {
            ("OK", None) => "ok",
            ("OK", Some("partial")) => "partial",
            _ => "error",
        };
        counter!("nskd_tool_calls_total", "tool" => tool.to_string(), "outcome" => outcome)
            .increment(1);
        histogram!("nskd_tool_call_duration_seconds", "tool" => tool.to_string(), "outcome" => outcome)
            .record(elapsed.as_secs_f64());
    }
}

/// Connection count changes.
pub fn client_connected(delta: f64) {
    gauge!("nskd_connected_clients").increment(delta);
}

/// Renders the metrics, after setting the cluster gauges from
/// `clusters` (name, answering).
pub fn render<'a>(clusters: impl ExactSizeIterator<Item = (&'a str, bool)>) -> String {
    gauge!("kubernetes_mcp_cluster_total").set(clusters.len() as f64);
    for (name, healthy) in clusters {
        gauge!("kubernetes_mcp_cluster_healthy", "cluster" => name.to_string()).set(if healthy {
            1.0
        } else {
            0.0
        });
    }
    HANDLE.get().map(|h| h.render()).unwrap_or_default()
}
