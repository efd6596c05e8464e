//! The fleet question: which clusters run chart X, at which version, in
//! which state: `helm_list` rows of many clusters counted by chart x
//! version x status.

use std::collections::{BTreeMap, BTreeSet};

use super::answer::ListRow;
use crate::ops::shape::{align, omitted_note, rows_that_fit};

/// One table: CHART, VERSION, STATUS, how many clusters and releases, and
/// the first clusters by name; within `max_bytes`.
pub fn summarize(per_cluster: &[(String, Vec<ListRow>)], max_bytes: usize) -> String {
    let mut groups: BTreeMap<(&str, &str, &str), (BTreeSet<&str>, usize)> = BTreeMap::new();
    for (cluster, rows) in per_cluster {
        for r in rows {
            let g = groups
                .entry((&r.chart, &r.chart_version, &r.status))
                .or_default();
            g.0.insert(cluster);
            g.1 += 1;
        }
    }
    if groups.is_empty() {
        return format!(
            "No helm releases found on {} clusters.\n",
            per_cluster.len()
        );
    }
    let mut table = vec![
        ["CHART", "VERSION", "STATUS", "CLUSTERS", "RELEASES", "ON"]
            .map(String::from)
            .to_vec(),
    ];
    for ((chart, version, status), (clusters, releases)) in &groups {
        const NAMED: usize = 3;
        let on: Vec<&str> = clusters.iter().take(NAMED).copied().collect();
        let more = clusters.len().saturating_sub(NAMED);
        let mut on = on.join(",");
        if more > 0 {
            on.push_str(&format!(",+{more}"));
        }
        table.push(vec![
            chart.to_string(),
            version.to_string(),
            status.to_string(),
            clusters.len().to_string(),
            releases.to_string(),
            on,
        ]);
    }
    let total = table.len() - 1;
    let fit = rows_that_fit(&table, max_bytes.saturating_sub(300)).max(1);
    let mut text = align(&table[..=fit.min(total)]);
    if fit < total {
        text.push_str(&omitted_note(
            (total - fit) as u32,
            "chart/version/status groups",
            &format!("answer capped at {} KiB", max_bytes / 1024),
        ));
    }
    text.push_str(&format!(
        "{} releases on {} clusters. Filter with chart or status; summary: false lists the releases.\n",
        per_cluster.iter().map(|(_, r)| r.len()).sum::<usize>(),
        per_cluster.len()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(chart: &str, version: &str, status: &str) -> ListRow {
        ListRow {
            name: "r".into(),
            namespace: "default".into(),
            revision: 1,
            updated: String::new(),
            status: status.into(),
            chart: chart.into(),
            chart_version: version.into(),
            app_version: String::new(),
            problem: None,
        }
    }

    #[test]
    fn counts_clusters_and_releases_per_chart_version_status() {
        let fleet = vec![
            (
                "a".to_string(),
                vec![row("web", "1.0", "deployed"), row("web", "1.0", "deployed")],
            ),
            (
                "b".to_string(),
                vec![row("web", "1.0", "deployed"), row("web", "2.0", "failed")],
            ),
            ("c".to_string(), vec![]),
        ];
        let text = summarize(&fleet, 32 * 1024);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CHART"), "{text}");
        let v1: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(v1, ["web", "1.0", "deployed", "2", "3", "a,b"], "{text}");
        let v2: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(v2, ["web", "2.0", "failed", "1", "1", "b"], "{text}");
        assert!(text.contains("4 releases on 3 clusters"), "{text}");
    }

    #[test]
    fn a_thousand_groups_fit_the_cap() {
        let fleet: Vec<(String, Vec<ListRow>)> = (0..1000)
            .map(|i| {
                (
                    format!("cluster-{i:04}"),
                    vec![row(&format!("chart-{i}"), "1.0.0", "deployed")],
                )
            })
            .collect();
        let text = summarize(&fleet, 32 * 1024);
        assert!(text.len() <= 32 * 1024, "{}", text.len());
        assert!(text.contains("groups not shown"), "{text}");
    }
}
