//! nskctl's layouts: tables for people, JSON for scripts.

use comfy_table::{Table, presets};
use nskd_proto::{
    present::{STATUS_HEADER, age_since, state_word, status_row},
    v1::{ClusterStatusResponse, DaemonInfo, ListClustersResponse, SourceKind},
};
use serde_json::{Value, json};

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.to_vec());
    t
}

fn lines(t: &Table) -> String {
    // comfy-table pads each cell by one space on both sides; trim the ends.
    t.lines().map(|l| format!("{}\n", l.trim())).collect()
}

/// The status table with a summary line.
pub fn status_table(resp: &ClusterStatusResponse, info: &DaemonInfo) -> String {
    if resp.clusters.is_empty() {
        return format!(
            "No clusters in environment '{}'. Check kubeconfig_dir / kubeconfig in the config, or run `nskctl clusters`.\n",
            info.environment
        );
    }
    let mut t = table(&STATUS_HEADER);
    let default = (!info.default_cluster.is_empty()).then_some(info.default_cluster.as_str());
    for h in &resp.clusters {
        t.add_row(status_row(h, default, 60));
    }
    let ready = resp
        .clusters
        .iter()
        .filter(|h| state_word(h.state) == "Ready")
        .count();
    let mut out = lines(&t);
    if default.is_some() {
        out.push_str("\n* = default cluster (a new agent session starts there)\n");
    }
    out.push_str(&format!(
        "{} clusters, {ready} Ready; environment {} (answered in {} ms)\n",
        resp.clusters.len(),
        info.environment,
        resp.elapsed_ms
    ));
    out.push_str(&replica_line(info));
    out
}

/// `replica: leader (...)` when the daemon is one of several replicas,
/// else nothing.
pub fn replica_line(info: &DaemonInfo) -> String {
    let Some(r) = info.replication.as_ref() else {
        return String::new();
    };
    let holder = if r.holder.is_empty() {
        "nobody"
    } else {
        r.holder.as_str()
    };
    let sync = match r.last_sync_ms {
        0 => "Secrets not listed yet".to_string(),
        ms => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
            format!("Secrets synced {}", humantime::format_rfc3339_seconds(at))
        }
    };
    let mut line = format!(
        "replica: {} {} (Lease {}/{} held by {holder}); {sync}, {} used, {} refused\n",
        r.role, r.identity, r.namespace, r.lease, r.secrets_accepted, r.secrets_refused
    );
    if !r.error.is_empty() {
        line.push_str(&format!("replication problem: {}\n", r.error));
    }
    line
}

/// The clusters listing.
pub fn clusters(resp: &ListClustersResponse) -> String {
    let mut t = table(&["CLUSTER", "SOURCE", "SERVER", "AUTH", "KUBECONFIG", "AGE"]);
    for c in &resp.clusters {
        let mut name = c.name.clone();
        if c.is_default {
            name.push_str(" *");
        }
        t.add_row(vec![
            name,
            source_word(c.source).into(),
            if c.error.is_empty() {
                c.server.clone()
            } else {
                "(unusable)".into()
            },
            c.auth.clone(),
            c.kubeconfig_path.clone(),
            age_since(c.kubeconfig_modified_ms),
        ]);
    }
    let mut out = if resp.clusters.is_empty() {
        "No clusters.\n".to_string()
    } else {
        lines(&t)
    };
    for c in resp.clusters.iter().filter(|c| !c.error.is_empty()) {
        out.push_str(&format!("problem: {}: {}\n", c.name, c.error));
    }
    for p in &resp.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}

/// `nskctl version`.
pub fn version(info: &DaemonInfo, ours: &str) -> String {
    format!(
        "nskctl {ours} (API v{})\nnskd {} (API v{}), environment {}, pid {}, up {}, socket {}\nsource {}, {} clusters{}\n",
        nskd_proto::API_VERSION,
        info.version,
        info.api_version,
        info.environment,
        info.pid,
        humantime::format_duration(std::time::Duration::from_secs(info.uptime_seconds)),
        info.socket_path,
        info.source,
        info.cluster_count,
        if info.default_cluster.is_empty() {
            String::new()
        } else {
            format!(", default {}", info.default_cluster)
        },
    ) + &replica_line(info)
}

fn source_word(s: i32) -> &'static str {
    match SourceKind::try_from(s).unwrap_or(SourceKind::Unspecified) {
        SourceKind::Directory => "directory",
        SourceKind::Kubeconfig => "kubeconfig",
        SourceKind::Nsk => "nsk",
        SourceKind::Rancher => "rancher",
        SourceKind::Unspecified => "-",
    }
}

/// JSON of the daemon info.
pub fn info_json(info: &DaemonInfo) -> Value {
    json!({
        "nskctl": {"version": env!("CARGO_PKG_VERSION"), "api_version": nskd_proto::API_VERSION},
        "nskd": {
            "version": info.version, "api_version": info.api_version, "environment": info.environment,
            "uptime_seconds": info.uptime_seconds, "source": info.source, "cluster_count": info.cluster_count,
            "default_cluster": info.default_cluster, "pid": info.pid, "socket": info.socket_path,
            "replication": info.replication.as_ref().map(|r| json!({
                "role": r.role, "holder": r.holder, "identity": r.identity,
                "namespace": r.namespace, "lease": r.lease, "last_sync_ms": r.last_sync_ms,
                "synced": r.synced, "secrets_accepted": r.secrets_accepted,
                "secrets_refused": r.secrets_refused, "error": r.error,
            })),
        }
    })
}

/// JSON of the clusters listing.
pub fn clusters_json(resp: &ListClustersResponse) -> Value {
    json!({
        "clusters": resp.clusters.iter().map(|c| json!({
            "name": c.name, "server": c.server, "kubeconfig": c.kubeconfig_path, "context": c.context,
            "source": source_word(c.source), "kubeconfig_modified_ms": c.kubeconfig_modified_ms,
            "auth": c.auth, "error": c.error, "default": c.is_default,
            "token_expiry_ms": c.token_expiry_ms,
        })).collect::<Vec<_>>(),
        "problems": resp.problems,
    })
}

/// JSON of a status answer.
pub fn status_json(resp: &ClusterStatusResponse) -> Value {
    json!({
        "elapsed_ms": resp.elapsed_ms,
        "clusters": resp.clusters.iter().map(|h| {
            let info = h.info.clone().unwrap_or_default();
            let mut v = json!({
                "name": h.name, "status": state_word(h.state), "version": h.version,
                "nodes_total": h.nodes_total, "nodes_ready": h.nodes_ready, "namespaces": h.namespaces,
                "latency_ms": h.latency_us as f64 / 1000.0, "error": h.error,
                "error_kind": nskd_proto::error_kind::label(nskd_proto::error_kind::from_i32(h.error_kind)),
                "degraded_reason": h.degraded_reason,
                "last_checked_ms": h.last_checked_ms, "last_success_ms": h.last_success_ms,
                "consecutive_failures": h.consecutive_failures, "server": info.server,
                "kubeconfig": info.kubeconfig_path, "kubeconfig_modified_ms": info.kubeconfig_modified_ms,
            });
            if let Some(d) = &h.detail {
                v["detail"] = json!({
                    "control_plane_nodes": d.control_plane_nodes, "control_plane_ready": d.control_plane_ready,
                    "worker_nodes": d.worker_nodes, "worker_ready": d.worker_ready,
                    "pods_by_phase": d.pods_by_phase, "services": d.services, "deployments": d.deployments,
                    "statefulsets": d.statefulsets, "platform": d.platform, "partial_errors": d.partial_errors,
                });
            }
            v
        }).collect::<Vec<_>>(),
    })
}
