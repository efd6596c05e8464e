//! Daemon types to `nskd.v1` messages.

use std::time::SystemTime;

use nskd_proto::v1 as pb;

use crate::{
    error::ErrorKind,
    health::{ClusterHealth, Health},
    probe::ClusterDetail,
    refresh::{RefreshOutcome, RefreshRecord},
    registry::{ClusterEntry, EntrySource},
};

/// Unix milliseconds (0 for `None`).
pub fn unix_ms(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn cluster_info(e: &ClusterEntry, default_cluster: Option<&str>) -> pb::ClusterInfo {
    pb::ClusterInfo {
        name: e.name.clone(),
        server: e.server.clone(),
        kubeconfig_path: e.path.display().to_string(),
        context: e.context.clone(),
        source: match e.source {
            EntrySource::Directory => pb::SourceKind::Directory,
            EntrySource::Kubeconfig => pb::SourceKind::Kubeconfig,
            EntrySource::Nsk => pb::SourceKind::Nsk,
            EntrySource::Rancher => pb::SourceKind::Rancher,
        } as i32,
        kubeconfig_modified_ms: unix_ms(Some(e.modified)),
        error: e
            .error
            .as_deref()
            .map(crate::redact::redact)
            .unwrap_or_default(),
        is_default: default_cluster == Some(e.name.as_str()),
        auth: e.auth.to_string(),
        cert_expiry_ms: unix_ms(e.cert_expiry),
        token_expiry_ms: unix_ms(e.token_expiry),
        ..Default::default()
    }
}

pub fn cluster_health(
    info: pb::ClusterInfo,
    h: &ClusterHealth,
    detail: Option<ClusterDetail>,
) -> pb::ClusterHealth {
    let state = if !info.error.is_empty() {
        pb::HealthState::Unknown
    } else {
        match h.state {
            Health::Unknown => pb::HealthState::Unknown,
            Health::Ready => pb::HealthState::Ready,
            Health::Degraded => pb::HealthState::Degraded,
            Health::NotReady => pb::HealthState::NotReady,
        }
    };
    // The registry's error is an unusable kubeconfig.
    let (error, error_kind) = if info.error.is_empty() {
        (h.error.clone().unwrap_or_default(), h.error_kind)
    } else {
        (info.error.clone(), ErrorKind::Invalid)
    };
    // A working cluster on a kubeconfig whose refresh failed: usable, but stale.
    let (state, degraded_reason) = if info.stale && state == pb::HealthState::Ready {
        (
            pb::HealthState::Degraded,
            format!(
                "using cached kubeconfig (refresh failing for {}: {})",
                nskd_proto::present::age_since(info.stale_since_ms),
                crate::kubeconfig::one_line(&info.stale_reason)
            ),
        )
    } else {
        (state, h.degraded_reason.clone().unwrap_or_default())
    };
    pb::ClusterHealth {
        name: info.name.clone(),
        state: state as i32,
        version: h.data.version.clone(),
        nodes_total: h.data.nodes_total.unwrap_or(0),
        nodes_ready: h.data.nodes_ready.unwrap_or(0),
        namespaces: h.data.namespaces.unwrap_or(0),
        latency_us: h.data.latency.as_micros() as u64,
        error,
        error_kind: error_kind as i32,
        last_checked_ms: unix_ms(h.last_checked),
        last_success_ms: unix_ms(h.last_success),
        consecutive_failures: h.consecutive_failures,
        degraded_reason,
        info: Some(info),
        detail: detail.map(|d| pb::ClusterDetail {
            control_plane_nodes: d.control_plane.0,
            control_plane_ready: d.control_plane.1,
            worker_nodes: d.workers.0,
            worker_ready: d.workers.1,
            pods_by_phase: d.pods_by_phase.into_iter().collect(),
            services: d.services,
            deployments: d.deployments,
            statefulsets: d.statefulsets,
            platform: d.platform,
            partial_errors: d
                .partial_errors
                .iter()
                .map(|e| crate::redact::redact(e))
                .collect(),
        }),
    }
}

pub fn refresh_record(r: &RefreshRecord, joined: bool) -> pb::RefreshRecord {
    pb::RefreshRecord {
        outcome: match r.outcome {
            RefreshOutcome::Success => pb::RefreshOutcome::Success,
            RefreshOutcome::Partial => pb::RefreshOutcome::Partial,
            RefreshOutcome::Failed => pb::RefreshOutcome::Failed,
            RefreshOutcome::Rescanned => pb::RefreshOutcome::Rescanned,
        } as i32,
        started_ms: unix_ms(Some(r.started)),
        duration_ms: r.duration.as_millis() as u32,
        trigger: r.trigger.clone(),
        updated: r.changes.changed.clone(),
        added: r.changes.added.clone(),
        removed: r.changes.removed.clone(),
        failed: r
            .failed
            .iter()
            .map(|f| pb::RefreshFailure {
                cluster: f.cluster.clone(),
                reason: crate::redact::redact(&f.failure.reason),
                kind: f.failure.kind as i32,
            })
            .collect(),
        error: r
            .error
            .as_ref()
            .map(|e| crate::redact::redact(&e.reason))
            .unwrap_or_default(),
        error_kind: r.error.as_ref().map_or(0, |e| e.kind as i32),
        joined,
        listed: r.listed as u32,
        note: r.note.clone().unwrap_or_default(),
    }
}
