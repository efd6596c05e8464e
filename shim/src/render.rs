//! Text for agents: compact, one answer per cluster, errors inline.

use nskd_proto::{
    present::{STATUS_HEADER, status_row},
    v1::{ClusterStatusResponse, KubeResult},
};

/// Aligns rows into columns separated by two spaces.
pub fn columns(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The status table, `*` on this session's active cluster.
pub fn status_table(resp: &ClusterStatusResponse, active: Option<&str>) -> String {
    if resp.clusters.is_empty() {
        return "No clusters known to nskd. Check kubeconfig_dir in its config, or run nsk_refresh.\n".into();
    }
    let mut rows = vec![
        STATUS_HEADER
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    rows.extend(resp.clusters.iter().map(|h| status_row(h, active, 60)));
    let mut out = columns(&rows);
    out.push_str("\n* = this session's active cluster\n");
    out
}

/// A Kube answer: the text alone for one cluster; a section per cluster
/// for several, then the clusters `"*"` skipped. One answer from the watch
/// cache gets the cache line as a separate note (a JSON answer stays JSON);
/// sections carry it inline.
pub fn kube_result(result: &KubeResult) -> KubeText {
    let all_failed = result.results.iter().all(|r| !r.ok);
    if let ([only], []) = (result.results.as_slice(), result.skipped.as_slice()) {
        // The note is an item of its own, so a JSON answer stays JSON.
        return KubeText {
            text: only.text.clone(),
            note: only.from_cache.then_some(FROM_CACHE),
            failed: !only.ok,
        };
    }
    let mut out = String::new();
    if result.results.is_empty() {
        out.push_str(
            "No cluster to run on: \"*\" skips clusters known to be down (see clusters_status).\n",
        );
    }
    for r in &result.results {
        let verdict = if r.ok { "" } else { " (error)" };
        out.push_str(&format!("=== cluster {}{verdict} ===\n", r.cluster));
        out.push_str(&cluster_text(r));
    }
    if !result.skipped.is_empty() {
        out.push_str("=== skipped (known to be down; name the cluster to try anyway) ===\n");
        for s in &result.skipped {
            out.push_str(&format!("{s}\n"));
        }
    }
    KubeText {
        text: out,
        note: None,
        failed: all_failed,
    }
}

/// A Kube answer as text for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeText {
    /// The answer (a section per cluster for several).
    pub text: String,
    /// A note to give as an item of its own (the watch-cache line).
    pub note: Option<&'static str>,
    /// Every cluster failed.
    pub failed: bool,
}

/// The line under an answer that came from the watch cache.
pub const FROM_CACHE: &str =
    "(from nskd's watch cache, in sync with the API server; live: true reads the API server)";

/// One cluster's text, newline-terminated, with the cache line when it
/// was answered from the watch cache.
fn cluster_text(r: &nskd_proto::v1::ClusterResult) -> String {
    let mut text = r.text.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if r.from_cache {
        text.push_str(FROM_CACHE);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use nskd_proto::v1::ClusterResult;

    #[test]
    fn several_clusters_get_sections_and_errors_stay_inline() {
        let r = KubeResult {
            results: vec![
                ClusterResult {
                    cluster: "a".into(),
                    ok: true,
                    text: "NAME\nx\n".into(),
                    ..Default::default()
                },
                ClusterResult {
                    cluster: "b".into(),
                    ok: false,
                    text: "cluster b: timed out".into(),
                    ..Default::default()
                },
            ],
            skipped: vec![],
        };
        let KubeText { text, failed, .. } = kube_result(&r);
        assert!(!failed);
        assert_eq!(
            text,
            "=== cluster a ===\nNAME\nx\n=== cluster b (error) ===\ncluster b: timed out\n"
        );
    }

    #[test]
    fn the_cache_line_is_a_note_of_its_own_for_one_answer_and_inline_for_sections() {
        let cached = |cluster: &str| ClusterResult {
            cluster: cluster.into(),
            ok: true,
            text: "[]\n".into(),
            from_cache: true,
            ..Default::default()
        };
        let one = kube_result(&KubeResult {
            results: vec![cached("a")],
            skipped: vec![],
        });
        assert_eq!((one.text.as_str(), one.note), ("[]\n", Some(FROM_CACHE)));
        let two = kube_result(&KubeResult {
            results: vec![cached("a"), cached("b")],
            skipped: vec![],
        });
        assert_eq!(two.note, None);
        assert_eq!(two.text.matches(FROM_CACHE).count(), 2, "{}", two.text);
    }

    #[test]
    fn skipped_clusters_are_listed_even_with_one_result() {
        let r = KubeResult {
            results: vec![ClusterResult {
                cluster: "a".into(),
                ok: true,
                text: "NAME\nx\n".into(),
                ..Default::default()
            }],
            skipped: vec!["b: NotReady: connection refused".into()],
        };
        let KubeText { text, failed, .. } = kube_result(&r);
        assert!(!failed);
        assert!(text.starts_with("=== cluster a ===\n"), "{text}");
        assert!(
            text.ends_with("b: NotReady: connection refused\n"),
            "{text}"
        );
    }

    #[test]
    fn nothing_to_run_on_is_a_failure_that_explains() {
        let r = KubeResult {
            results: vec![],
            skipped: vec!["b: NotReady: x".into()],
        };
        let KubeText { text, failed, .. } = kube_result(&r);
        assert!(
            failed
                && text.contains("skips clusters known to be down")
                && text.contains("b: NotReady"),
            "{text}"
        );
    }
}
