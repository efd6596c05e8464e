//! Words and numbers shown to people and agents, shared by nskctl and the
//! shim so both say the same thing (each lays it out its own way).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::v1::{ClusterHealth, ErrorKind, HealthState};

/// Column titles of the `nskctl status` table.
pub const STATUS_HEADER: [&str; 8] = [
    "CLUSTER",
    "STATUS",
    "VERSION",
    "NODES",
    "NAMESPACES",
    "KUBECONFIG-AGE",
    "LATENCY",
    "ERRORS",
];

/// The STATUS word of a health state.
pub fn state_word(state: i32) -> &'static str {
    match HealthState::try_from(state).unwrap_or(HealthState::Unknown) {
        HealthState::Ready => "Ready",
        HealthState::Degraded => "Degraded",
        HealthState::NotReady => "NotReady",
        HealthState::Removed => "Removed",
        HealthState::Unknown | HealthState::Unspecified => "Unknown",
    }
}

/// Time since `ms` (unix milliseconds), kubectl style: `45s`, `12m`, `5h`,
/// `3d`; `-` for 0.
pub fn age_since(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let then = UNIX_EPOCH + Duration::from_millis(ms as u64);
    short_duration(SystemTime::now().duration_since(then).unwrap_or_default())
}

/// Time until `ms`: `in 58m`, or `overdue` when past; `-` for 0.
pub fn until(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let then = UNIX_EPOCH + Duration::from_millis(ms as u64);
    match then.duration_since(SystemTime::now()) {
        Ok(d) => format!("in {}", short_duration(d)),
        Err(_) => "overdue".into(),
    }
}

/// `45s`, `12m`, `5h`, `3d`, `2y`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        172_800..=63_071_999 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// RFC 3339 UTC time of unix milliseconds, to the second; `-` for 0.
pub fn timestamp(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Latency in ms (one decimal under 10 ms); `-` when not measured.
pub fn latency(us: u64) -> String {
    match us {
        0 => "-".into(),
        1..=9_999 => format!("{:.1}ms", us as f64 / 1000.0),
        _ => format!("{}ms", us / 1000),
    }
}

/// First line of `text`, at most `max` characters (with `...`).
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max.saturating_sub(3)).collect();
    format!("{cut}...")
}

/// The gist of a cluster error for a table cell: the words of its kind
/// ("connection refused", "timed out", "unauthorized: token expired or
/// invalid", "kubeconfig malformed", ...), else the message's first words.
/// The full text stays in the detail view and `--json`.
pub fn error_gist(kind: ErrorKind, error: &str, cluster: &str, width: usize) -> String {
    let words = match kind {
        // A cluster's health is Invalid only when its kubeconfig is unusable.
        ErrorKind::Invalid => Some("kubeconfig malformed"),
        other => crate::error_kind::gist(other),
    };
    match words {
        Some(g) => one_line(g, width),
        None => one_line(
            error
                .strip_prefix(&format!("cluster {cluster}: "))
                .unwrap_or(error),
            width,
        ),
    }
}

/// One status-table row per cluster, with `*` after the active cluster.
pub fn status_row(h: &ClusterHealth, active: Option<&str>, error_width: usize) -> Vec<String> {
    let known = h.nodes_total > 0 || !h.version.is_empty();
    let mut name = h.name.clone();
    if active == Some(h.name.as_str()) {
        name.push_str(" *");
    }
    let info = h.info.clone().unwrap_or_default();
    let error = if !h.error.is_empty() {
        error_gist(
            crate::error_kind::from_i32(h.error_kind),
            &h.error,
            &h.name,
            error_width,
        )
    } else if !h.degraded_reason.is_empty() {
        one_line(&h.degraded_reason, error_width)
    } else {
        "-".into()
    };
    vec![
        name,
        state_word(h.state).into(),
        if h.version.is_empty() {
            "-".into()
        } else {
            h.version.clone()
        },
        if known && h.nodes_total > 0 {
            format!("{}/{}", h.nodes_ready, h.nodes_total)
        } else {
            "-".into()
        },
        if h.namespaces > 0 {
            h.namespaces.to_string()
        } else {
            "-".into()
        },
        if info.stale {
            format!("{} (stale)", age_since(info.kubeconfig_modified_ms))
        } else {
            age_since(info.kubeconfig_modified_ms)
        },
        if known {
            latency(h.latency_us)
        } else {
            "-".into()
        },
        error,
    ]
}

/// The detailed single-cluster view (`nskctl status <cluster>`).
pub fn detail_view(h: &ClusterHealth, next_refresh_ms: i64) -> String {
    use std::fmt::Write;
    let info = h.info.clone().unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(s, "Cluster: {}", h.name);
    let _ = writeln!(s, "Status: {}", state_word(h.state));
    if !h.degraded_reason.is_empty() {
        let _ = writeln!(s, "Degraded: {}", h.degraded_reason);
    }
    let _ = writeln!(
        s,
        "API Server: {}",
        if info.server.is_empty() {
            "-"
        } else {
            &info.server
        }
    );
    let _ = writeln!(
        s,
        "Version: {}",
        if h.version.is_empty() {
            "-"
        } else {
            &h.version
        }
    );
    let not_ready = h.nodes_total.saturating_sub(h.nodes_ready);
    let _ = writeln!(
        s,
        "Nodes: {} ({} Ready, {} NotReady)",
        h.nodes_total, h.nodes_ready, not_ready
    );
    if let Some(d) = &h.detail {
        let _ = writeln!(
            s,
            "  - Control Plane: {} ({} Ready)",
            d.control_plane_nodes, d.control_plane_ready
        );
        let _ = writeln!(
            s,
            "  - Workers: {} ({} Ready)",
            d.worker_nodes, d.worker_ready
        );
    }
    let _ = writeln!(s, "Namespaces: {}", h.namespaces);
    if let Some(d) = &h.detail {
        let total: u32 = d.pods_by_phase.values().sum();
        let mut phases: Vec<_> = d.pods_by_phase.iter().collect();
        phases.sort();
        let phases = phases
            .iter()
            .map(|(p, n)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(s, "Resources:");
        let _ = writeln!(
            s,
            "  - Pods: {total}{}",
            if phases.is_empty() {
                String::new()
            } else {
                format!(" ({phases})")
            }
        );
        let _ = writeln!(s, "  - Services: {}", d.services);
        let _ = writeln!(s, "  - Deployments: {}", d.deployments);
        let _ = writeln!(s, "  - StatefulSets: {}", d.statefulsets);
        if !d.platform.is_empty() {
            let _ = writeln!(s, "Platform: {}", d.platform);
        }
        for e in &d.partial_errors {
            let _ = writeln!(s, "  (not counted: {e})");
        }
    }
    let _ = writeln!(s, "Kubeconfig: {}", info.kubeconfig_path);
    if info.stale {
        let _ = writeln!(
            s,
            "Kubeconfig Refresh: FAILING for {} ({}); the cached kubeconfig stays in use",
            age_since(info.stale_since_ms),
            one_line(&info.stale_reason, 200)
        );
    }
    let _ = writeln!(
        s,
        "Last Updated: {} ({} ago)",
        timestamp(info.kubeconfig_modified_ms),
        age_since(info.kubeconfig_modified_ms)
    );
    let _ = writeln!(
        s,
        "Next Refresh: {}",
        if next_refresh_ms > 0 {
            format!(
                "{} ({})",
                timestamp(next_refresh_ms),
                until(next_refresh_ms)
            )
        } else {
            "not scheduled".into()
        }
    );
    let connectivity = match state_word(h.state) {
        "Ready" | "Degraded" if h.error.is_empty() => {
            format!("OK (latency: {})", latency(h.latency_us))
        }
        _ if !h.error.is_empty() => format!("FAILED ({})", one_line(&h.error, 200)),
        _ => "not checked yet".into(),
    };
    let _ = writeln!(s, "Connectivity: {connectivity}");
    if h.last_success_ms > 0 {
        let _ = writeln!(
            s,
            "Last Success: {} ({} ago)",
            timestamp(h.last_success_ms),
            age_since(h.last_success_ms)
        );
    }
    if h.consecutive_failures > 0 {
        let _ = writeln!(s, "Consecutive Failures: {}", h.consecutive_failures);
    }
    let _ = writeln!(
        s,
        "Credentials: {}",
        if info.auth.is_empty() {
            "none"
        } else {
            &info.auth
        }
    );
    let _ = writeln!(s, "Certificate Expiry: {}", expiry(info.cert_expiry_ms));
    let _ = writeln!(s, "Token Expiry: {}", expiry(info.token_expiry_ms));
    s
}

fn expiry(ms: i64) -> String {
    if ms <= 0 {
        return "unknown (not in the kubeconfig)".into();
    }
    let then = UNIX_EPOCH + Duration::from_millis(ms as u64);
    match then.duration_since(SystemTime::now()) {
        Ok(d) => format!("{} ({} days)", timestamp(ms), d.as_secs() / 86_400),
        Err(_) => format!("{} (EXPIRED)", timestamp(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_numbers() {
        assert_eq!(state_word(HealthState::NotReady as i32), "NotReady");
        assert_eq!(latency(3_700), "3.7ms");
        assert_eq!(latency(45_000), "45ms");
        assert_eq!(one_line("a\nb   c", 40), "a b c");
        assert_eq!(one_line(&"x".repeat(50), 10), "xxxxxxx...");
        assert_eq!(short_duration(Duration::from_secs(7300)), "2h");
    }

    #[test]
    fn row_marks_active_and_shortens_errors() {
        let h = ClusterHealth {
            name: "c1".into(),
            state: HealthState::NotReady as i32,
            error: "cluster c1: cannot reach API server https://127.0.0.1:1: connection refused"
                .into(),
            error_kind: ErrorKind::Refused as i32,
            ..Default::default()
        };
        let row = status_row(&h, Some("c1"), 30);
        assert_eq!(row[0], "c1 *");
        assert_eq!(row[1], "NotReady");
        assert_eq!(row[7], "connection refused");
    }

    #[test]
    fn error_gist_names_the_cause() {
        let refused = "cluster a: cannot reach API server https://127.0.0.1:1: it said timeout";
        assert_eq!(
            error_gist(ErrorKind::Refused, refused, "a", 60),
            "connection refused"
        );
        assert_eq!(
            error_gist(ErrorKind::Timeout, "cluster a: refused", "a", 60),
            "timed out"
        );
        assert_eq!(
            error_gist(ErrorKind::Invalid, "cluster a: bad", "a", 60),
            "kubeconfig malformed"
        );
        assert_eq!(
            error_gist(
                ErrorKind::Unspecified,
                "cluster a: something odd happened here",
                "a",
                60
            ),
            "something odd happened here"
        );
        assert_eq!(
            error_gist(
                ErrorKind::Unspecified,
                "cluster a: something odd happened here",
                "a",
                12
            ),
            "something..."
        );
    }
}
