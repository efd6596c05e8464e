//! Text for agents: compact, one answer per cluster, errors inline.

use nskd_proto::v1::KubeResult;

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

/// A Kube answer: the daemon composes it (merged rows, one budget, a
/// footer for what was left out); the shim prints it, with the cache line
/// as a separate note when every answering cluster used its watch cache
/// (so a JSON answer stays JSON).
pub fn kube_result(result: &KubeResult) -> KubeText {
    KubeText {
        text: result.text.clone(),
        note: result.from_cache.then_some(FROM_CACHE),
        failed: result.failed,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_composed_answer_is_printed_as_is_with_the_cache_note_apart() {
        let r = KubeResult {
            text: "CLUSTER   NAME\na         x\n".into(),
            from_cache: true,
            ..Default::default()
        };
        let KubeText { text, note, failed } = kube_result(&r);
        assert_eq!(
            (text.as_str(), note, failed),
            ("CLUSTER   NAME\na         x\n", Some(FROM_CACHE), false)
        );
        let r = KubeResult {
            text: "cluster b: timed out".into(),
            failed: true,
            ..Default::default()
        };
        let answer = kube_result(&r);
        assert!(answer.failed && answer.note.is_none());
    }
}
