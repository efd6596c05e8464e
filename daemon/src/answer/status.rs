//! The `clusters_status` table for agents, within the answer budget at any
//! number of clusters: a header with the counts by status (and, for the
//! clusters not Ready, by reason) and the Kubernetes versions, then one row
//! per cluster with the clusters not Ready first, paged like a list answer
//! ([`super::compose_sheet`]).

use std::collections::BTreeMap;

use nskd_proto::{
    present::{STATUS_HEADER, error_gist, state_word, status_row},
    v1::{ClusterHealth, HealthState},
};

use super::{Entries, ListCall, Row, Sheet, budget, compose_sheet, page::Pages};
use crate::ops::Output;

/// Widest ERRORS cell of a row.
pub const ERROR_WIDTH: usize = 60;
/// Most reasons and versions named in the header (then "+N more").
const HEADER_GROUPS: usize = 6;

/// Where a state sorts: the clusters that need a look first.
fn rank(state: i32) -> u8 {
    match HealthState::try_from(state).unwrap_or(HealthState::Unknown) {
        HealthState::NotReady => 0,
        HealthState::Unknown | HealthState::Unspecified => 1,
        HealthState::Degraded => 2,
        HealthState::Removed => 3,
        HealthState::Ready => 4,
    }
}

/// `a (3), b (2), +N more`: the largest groups first, then by name.
fn groups(counts: BTreeMap<String, usize>) -> String {
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut parts: Vec<String> = counts
        .iter()
        .take(HEADER_GROUPS)
        .map(|(what, n)| format!("{what} ({n})"))
        .collect();
    if counts.len() > HEADER_GROUPS {
        parts.push(format!("+{} more", counts.len() - HEADER_GROUPS));
    }
    parts.join(", ")
}

/// The header lines: clusters by status, the reasons of those not Ready,
/// the versions.
pub fn header(clusters: &[ClusterHealth]) -> String {
    let mut states: BTreeMap<u8, (&str, usize)> = BTreeMap::new();
    let mut reasons = BTreeMap::new();
    let mut versions = BTreeMap::new();
    for h in clusters {
        states
            .entry(rank(h.state))
            .or_insert((state_word(h.state), 0))
            .1 += 1;
        if !h.error.is_empty() {
            let gist = error_gist(
                nskd_proto::error_kind::from_i32(h.error_kind),
                &h.error,
                &h.name,
                40,
            );
            *reasons.entry(gist).or_insert(0) += 1;
        }
        if !h.version.is_empty() {
            *versions.entry(h.version.clone()).or_insert(0) += 1;
        }
    }
    let by_state = states
        .values()
        .map(|(word, n)| format!("{n} {word}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!("{} clusters: {by_state}\n", clusters.len());
    if !reasons.is_empty() {
        out.push_str(&format!("errors: {}\n", groups(reasons)));
    }
    if !versions.is_empty() {
        out.push_str(&format!("versions: {}\n", groups(versions)));
    }
    out
}

/// One row per cluster, the clusters not Ready first (NotReady, Unknown,
/// Degraded, Removed, then Ready; by name within each), `*` after the
/// session's active cluster.
pub fn sheet(clusters: &[ClusterHealth], active: Option<&str>) -> Sheet {
    let mut order: Vec<&ClusterHealth> = clusters.iter().collect();
    order.sort_by(|a, b| {
        rank(a.state)
            .cmp(&rank(b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    Sheet {
        noun: "clusters".into(),
        header: STATUS_HEADER.iter().map(|s| s.to_string()).collect(),
        entries: Entries::Rows(
            order
                .into_iter()
                .map(|h| Row::new(status_row(h, active, ERROR_WIDTH)))
                .collect(),
        ),
        output: Output::Table,
    }
}

/// The first page of the table of `clusters` within `call.budget`: the
/// [`header`], the rows that fit, and a footer with the `continue` token of
/// the rest (kept in `pages`).
pub fn compose(
    pages: &Pages,
    call: &ListCall<'_>,
    clusters: &[ClusterHealth],
    active: Option<&str>,
) -> String {
    if clusters.is_empty() {
        return NO_CLUSTERS.to_string();
    }
    let header = budget::cut(header(clusters), call.budget / 8);
    let footer = if active.is_some_and(|a| clusters.iter().any(|h| h.name == a)) {
        ACTIVE_NOTE.to_string()
    } else {
        String::new()
    };
    let call = ListCall {
        budget: call.budget.saturating_sub(header.len()),
        ..call.clone()
    };
    let page = compose_sheet(pages, &call, sheet(clusters, active), footer, false);
    header + &page.text
}

/// The answer when no cluster is known.
pub const NO_CLUSTERS: &str =
    "No clusters known to nskd. Check kubeconfig_dir in its config, or run nsk_refresh.\n";

/// The note under a page that shows the session's active cluster.
pub const ACTIVE_NOTE: &str = "* = this session's active cluster\n";

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn health(name: &str, state: HealthState, error: &str) -> ClusterHealth {
        ClusterHealth {
            name: name.into(),
            state: state as i32,
            version: if error.is_empty() {
                "v1.30.2".into()
            } else {
                String::new()
            },
            nodes_total: 3,
            nodes_ready: 3,
            namespaces: 5,
            latency_us: 2_500,
            error: error.into(),
            error_kind: if error.is_empty() {
                0
            } else {
                nskd_proto::v1::ErrorKind::Refused as i32
            },
            ..Default::default()
        }
    }

    #[test]
    fn not_ready_first_then_by_name_with_counts_in_the_header() {
        let clusters = vec![
            health("a", HealthState::Ready, ""),
            health("b", HealthState::NotReady, "cluster b: connection refused"),
            health("c", HealthState::Degraded, ""),
            health("d", HealthState::NotReady, "cluster d: connection refused"),
        ];
        let s = sheet(&clusters, Some("a"));
        let Entries::Rows(rows) = &s.entries else {
            panic!("rows")
        };
        let names: Vec<&str> = rows.iter().map(|r| r.cell(0).unwrap_or("")).collect();
        assert_eq!(names, ["b", "d", "c", "a *"]);
        let h = header(&clusters);
        assert!(
            h.starts_with("4 clusters: 2 NotReady, 1 Degraded, 1 Ready\n"),
            "{h}"
        );
        assert!(h.contains("errors: connection refused (2)"), "{h}");
        assert!(h.contains("versions: v1.30.2 (2)"), "{h}");
    }

    #[test]
    fn the_header_names_a_bounded_number_of_groups() {
        let clusters: Vec<_> = (0..50)
            .map(|i| {
                let mut h = health(&format!("c{i}"), HealthState::Ready, "");
                h.version = format!("v1.{i}.0");
                h
            })
            .collect();
        let h = header(&clusters);
        assert!(h.contains("+44 more"), "{h}");
        assert!(h.len() < 200, "{h}");
    }

    fn token(text: &str) -> Option<String> {
        let rest = text.split("\"continue\": \"").nth(1)?;
        Some(rest.split('"').next()?.to_string())
    }

    /// 1,000 clusters, a tenth down with long errors: every page within the
    /// budget, the down ones on the first page, the pages together name
    /// every cluster once.
    #[test]
    fn a_thousand_clusters_page_within_the_budget() {
        let budget = 32 * 1024;
        let clusters: Vec<_> = (0..1000)
            .map(|i| {
                let name = format!("prod-eu-west-{i:04}");
                if i % 10 == 3 {
                    let error = format!("cluster {name}: {}", "x".repeat(300));
                    let mut h = health(&name, HealthState::NotReady, &error);
                    h.error_kind = if i % 20 == 3 {
                        nskd_proto::v1::ErrorKind::Timeout as i32
                    } else {
                        nskd_proto::v1::ErrorKind::Refused as i32
                    };
                    h
                } else {
                    health(&name, HealthState::Ready, "")
                }
            })
            .collect();
        let pages = Pages::new();
        let shape = crate::answer::shape::Shape::default();
        let call = ListCall {
            shape: &shape,
            multi: false,
            all_namespaces: false,
            budget,
            digest: [7; 32],
            tool: Some("clusters_status"),
            narrow: "x",
        };
        let first = compose(&pages, &call, &clusters, Some("prod-eu-west-0000"));
        assert!(first.len() <= budget, "{}", first.len());
        assert!(
            first.starts_with("1000 clusters: 100 NotReady, 900 Ready\nerrors: connection refused (50), timed out (50)\nversions: v1.30.2 (900)\nCLUSTER "),
            "{first}"
        );
        assert!(first.contains("Next page: call clusters_status"), "{first}");
        let rows = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with("prod-"))
                .map(|l| l.split_whitespace().next().unwrap().to_string())
                .collect()
        };
        let mut names = rows(&first);
        assert!(names[..100].iter().all(|n| n.ends_with('3')), "{names:?}");
        let mut text = first;
        while let Some(t) = token(&text) {
            text = crate::answer::resume_list(&pages, &call, &t).unwrap().text;
            assert!(text.len() <= budget, "{}", text.len());
            names.extend(rows(&text));
        }
        assert!(text.contains("last page"), "{text}");
        assert!(text.contains(ACTIVE_NOTE), "{text}");
        let total = names.len();
        names.sort();
        names.dedup();
        assert_eq!((total, names.len()), (1000, 1000));
    }
}
