//! Refresh views shared by nskctl and the shim: one line per refresh run,
//! the "NSK Integration Status" view (ARCHITECTURE.md's refresh view), the source status,
//! and a fetched kubeconfig's summary.

use std::fmt::Write;

use crate::{
    present::{age_since, timestamp, until},
    v1::{
        FetchKubeconfigResponse, RefreshHistoryResponse, RefreshOutcome, RefreshRecord,
        SourceStatusResponse,
    },
};

/// "Success", "Partial", "Failed" or "Rescanned".
pub fn outcome_word(outcome: i32) -> &'static str {
    match RefreshOutcome::try_from(outcome).unwrap_or(RefreshOutcome::Unspecified) {
        RefreshOutcome::Success => "Success",
        RefreshOutcome::Partial => "Partial",
        RefreshOutcome::Failed => "Failed",
        RefreshOutcome::Rescanned => "Rescanned",
        RefreshOutcome::Unspecified => "Unknown",
    }
}

/// One run, e.g. `Success (5 clusters updated)` or `Partial (4/5 clusters,
/// iad0-sandbox failed)`.
pub fn record_summary(r: &RefreshRecord) -> String {
    let word = outcome_word(r.outcome);
    if !r.error.is_empty() {
        return format!("{word} ({})", r.error);
    }
    let ok = r.listed.saturating_sub(r.failed.len() as u32);
    let mut parts = Vec::new();
    if r.failed.is_empty() {
        parts.push(format!("{} clusters refreshed", r.listed));
    } else {
        let names: Vec<&str> = r.failed.iter().map(|f| f.cluster.as_str()).collect();
        parts.push(format!(
            "{ok}/{} clusters, {} failed",
            r.listed,
            names.join(", ")
        ));
    }
    for (n, what) in [
        (r.added.len(), "added"),
        (r.updated.len(), "updated"),
        (r.removed.len(), "removed"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!("{word} ({})", parts.join(", "))
}

/// A refresh answer for a person or an agent: summary, changes, failures.
pub fn record_view(r: &RefreshRecord) -> String {
    let mut s = String::new();
    if !r.note.is_empty() {
        let _ = writeln!(s, "Refresh {}", r.note);
        return s;
    }
    let joined = if r.joined {
        " (joined a refresh already running)"
    } else {
        ""
    };
    let _ = writeln!(s, "Refresh: {}{joined}", record_summary(r));
    if outcome_word(r.outcome) == "Rescanned" {
        let _ = writeln!(
            s,
            "(NSK integration is not configured: this daemon uses the directory source, so its kubeconfig files were re-read and nothing was fetched from Rancher)"
        );
    }
    let _ = writeln!(s, "Trigger: {}, took {} ms", r.trigger, r.duration_ms);
    for (label, names) in [
        ("Added", &r.added),
        ("Updated", &r.updated),
        ("Removed (moved to .removed/)", &r.removed),
    ] {
        if !names.is_empty() {
            let _ = writeln!(s, "{label}: {}", names.join(", "));
        }
    }
    for f in &r.failed {
        let _ = writeln!(
            s,
            "Failed: {}: {} (its cached kubeconfig stays in use)",
            f.cluster, f.reason
        );
    }
    s
}

fn when(ms: i64) -> String {
    if ms <= 0 {
        "never".into()
    } else {
        format!("{} ({} ago)", timestamp(ms), age_since(ms))
    }
}

fn next(ms: i64) -> String {
    if ms <= 0 {
        "not scheduled".into()
    } else {
        format!("{} ({})", timestamp(ms), until(ms))
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The "NSK Integration Status" view: source, last and next refresh,
/// history and each cluster's refresh state.
pub fn integration_view(h: &RefreshHistoryResponse) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "NSK Integration Status\n----------------------");
    let _ = writeln!(s, "Source: {}", h.source);
    let _ = writeln!(s, "Profile: {}", or_dash(&h.profile));
    let _ = writeln!(s, "Rancher URL: {}", or_dash(&h.rancher_url));
    let _ = writeln!(s, "Config Directory: {}", or_dash(&h.config_dir));
    let auto = if h.auto_refresh {
        format!("Enabled (every {})", h.refresh_interval)
    } else {
        "Disabled".into()
    };
    let _ = writeln!(s, "Auto-Refresh: {auto}\n");
    let last = h.records.iter().find(|r| r.note.is_empty());
    let _ = writeln!(
        s,
        "Last Refresh: {}",
        when(last.map(|r| r.started_ms).unwrap_or(0))
    );
    let _ = writeln!(s, "Next Refresh: {}", next(h.next_refresh_ms));
    let _ = writeln!(
        s,
        "Status: {}\n",
        last.map(|r| outcome_word(r.outcome))
            .unwrap_or("no refresh yet")
    );
    let _ = writeln!(s, "Refresh History:");
    if h.records.is_empty() {
        let _ = writeln!(s, "  (none yet)");
    }
    for r in h.records.iter().filter(|r| r.note.is_empty()) {
        let _ = writeln!(
            s,
            "  - {}: {} [{}]",
            timestamp(r.started_ms),
            record_summary(r),
            r.trigger
        );
    }
    let _ = writeln!(s, "\nClusters:");
    if h.clusters.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for c in &h.clusters {
        let line = match c.state.as_str() {
            "Active" if c.last_seen_ms > 0 => {
                format!("Active, last seen {} ago", age_since(c.last_seen_ms))
            }
            "Active" => "Active, not contacted yet".to_string(),
            "Removed" => format!("Removed ({}, {} ago)", c.note, age_since(c.since_ms)),
            other if c.since_ms > 0 => {
                format!("{other}, {} since {} ago", c.note, age_since(c.since_ms))
            }
            other => format!("{other}, {}", c.note),
        };
        let _ = writeln!(s, "  - {}: {line}", c.name);
    }
    s
}

/// `nsk_status`: configuration, token, last and next refresh.
pub fn source_view(st: &SourceStatusResponse) -> String {
    let mut s = String::new();
    if st.source == "directory" {
        let _ = writeln!(
            s,
            "NSK integration is not configured: this daemon reads kubeconfigs from {} (directory source) and fetches nothing from Rancher.\nTo fetch from Rancher, set [nsk] rancher_url and profile (nsk CLI) or source = \"rancher\" in the daemon's config.",
            or_dash(&st.kubeconfig_dir)
        );
        let _ = writeln!(s, "Clusters: {}", st.clusters);
        return s;
    }
    let _ = writeln!(s, "NSK Integration: {} source", st.source);
    let _ = writeln!(s, "Rancher URL: {}", or_dash(&st.rancher_url));
    let _ = writeln!(s, "Profile: {}", or_dash(&st.profile));
    let _ = writeln!(s, "Config Directory: {}", or_dash(&st.config_dir));
    let _ = writeln!(s, "Kubeconfig Directory: {}", or_dash(&st.kubeconfig_dir));
    if st.source == "nsk" {
        let _ = writeln!(s, "nsk: {}", st.nsk_path);
    }
    let token = match (st.token_set, st.token_check.as_str()) {
        (false, _) => {
            "not set (RANCHER_TOKEN, [nsk] rancher_token or rancher_token_file)".to_string()
        }
        (true, "ok") => format!(
            "set, valid (user {}, expires {})",
            or_dash(&st.token_user),
            if st.token_expiry_ms > 0 {
                format!(
                    "{} ({})",
                    timestamp(st.token_expiry_ms),
                    until(st.token_expiry_ms)
                )
            } else {
                "never".into()
            }
        ),
        (true, "failed") => format!("set, check FAILED: {}", st.token_error),
        (true, _) => "set, not checked yet".to_string(),
    };
    let _ = writeln!(s, "Token: {token}");
    let auto = if st.auto_refresh {
        format!("Enabled (every {})", st.refresh_interval)
    } else {
        "Disabled".into()
    };
    let _ = writeln!(s, "Auto-Refresh: {auto}");
    match &st.last_refresh {
        Some(r) => {
            let _ = writeln!(
                s,
                "Last Refresh: {}: {}",
                when(r.started_ms),
                record_summary(r)
            );
        }
        None => {
            let _ = writeln!(s, "Last Refresh: never");
        }
    }
    let _ = writeln!(s, "Next Refresh: {}", next(st.next_refresh_ms));
    let _ = writeln!(s, "Clusters: {}", st.clusters);
    s
}

/// `nsk_get`: what was fetched, never the credentials.
pub fn fetch_view(f: &FetchKubeconfigResponse) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Cluster: {}", f.cluster);
    if !f.rancher_id.is_empty() {
        let _ = writeln!(s, "Rancher ID: {}", f.rancher_id);
    }
    let _ = writeln!(s, "Server: {}", f.server);
    let _ = writeln!(s, "Context: {}", f.context);
    let _ = writeln!(
        s,
        "User: {} ({} auth; credentials not shown)",
        f.user, f.auth
    );
    let expiry = if f.token_expiry_ms > 0 {
        format!(
            "{} ({})",
            timestamp(f.token_expiry_ms),
            until(f.token_expiry_ms)
        )
    } else {
        "unknown".into()
    };
    let _ = writeln!(s, "Token Expiry: {expiry}");
    if f.outcome == "stored" {
        let _ = writeln!(
            s,
            "Stored: {} (nothing fetched; save=true / --save fetches a fresh kubeconfig, which makes Rancher mint a new credential)",
            f.saved_path
        );
    } else if f.saved_path.is_empty() {
        let _ = writeln!(s, "Saved: no (pass save=true / --save to store it)");
    } else {
        let _ = writeln!(s, "Saved: {} ({})", f.saved_path, f.outcome);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::RefreshFailure;

    #[test]
    fn summaries_read_like_the_design_document() {
        let ok = RefreshRecord {
            outcome: RefreshOutcome::Success as i32,
            listed: 5,
            updated: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(
            record_summary(&ok),
            "Success (5 clusters refreshed, 1 updated)"
        );
        let partial = RefreshRecord {
            outcome: RefreshOutcome::Partial as i32,
            listed: 5,
            failed: vec![RefreshFailure {
                cluster: "iad0-sandbox".into(),
                reason: "x".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            record_summary(&partial),
            "Partial (4/5 clusters, iad0-sandbox failed)"
        );
    }
}
