//! The API server's "Age" cell, recomputed when a cached row is served so a
//! cached table reads exactly like a fresh one.

use std::time::{Duration, SystemTime};

use serde_json::Value;

/// The API server's human duration (apimachinery's `HumanDuration`), as
/// its table printers write ages: `45s`, `3m12s`, `25m`, `5h3m`, `12h`,
/// `3d4h`, `40d`, `2y10d`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Index of the server's Age column (creation timestamp, printed as a
/// duration), if the table has one.
pub fn age_column(columns: &Value) -> Option<usize> {
    columns.as_array()?.iter().position(|c| {
        c["name"].as_str() == Some("Age")
            && c["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("CreationTimestamp"))
    })
}

/// The Age cell of `object` at `now`, or `None` without a creation time.
pub fn age_cell(object: &Value, now: SystemTime) -> Option<String> {
    let created = object.pointer("/metadata/creationTimestamp")?.as_str()?;
    let created = humantime::parse_rfc3339_weak(created).ok()?;
    Some(human_duration(
        now.duration_since(created).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_api_server_printer() {
        let cases = [
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 180, "5h3m"),
            (12 * 3600, "12h"),
            (47 * 3600, "47h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (40 * 86400, "40d"),
            (2 * 365 * 86400 + 10 * 86400, "2y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
    }
}
