//! Shaping answers for agents: cleaned objects, aligned columns, byte caps
//! with a note that says how to narrow.

use serde_json::Value;

use super::{Output, Rendered};

/// Aligns rows into columns separated by three spaces (kubectl's layout).
pub fn align(rows: &[Vec<String>]) -> String {
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
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 3,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How many of `rows` (after the header `rows[0]`) fit in `max_bytes` once
/// aligned.
pub fn rows_that_fit(rows: &[Vec<String>], max_bytes: usize) -> usize {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for (n, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
        let line = widths.iter().sum::<usize>() + 3 * cols.saturating_sub(1) + 1;
        if line * (n + 1) > max_bytes && n > 0 {
            return n - 1;
        }
    }
    rows.len().saturating_sub(1)
}

/// The newest lines of `text` that fit in `max_bytes` (after keeping at
/// most the last `tail` lines, 0 = all), with how many were left out;
/// `earlier` lines were already dropped before `text`. A first line cut
/// mid-way by an earlier byte cap counts as left out.
pub fn newest_lines(
    text: &str,
    earlier: u64,
    cut_first: bool,
    tail: usize,
    max_bytes: usize,
) -> NewestLines {
    let mut lines: Vec<&str> = text.lines().collect();
    let mut omitted = earlier;
    if cut_first && !lines.is_empty() {
        lines.remove(0);
        omitted += 1;
    }
    if tail > 0 && lines.len() > tail {
        omitted += (lines.len() - tail) as u64;
        lines.drain(..lines.len() - tail);
    }
    let mut used = 0;
    let mut start = lines.len();
    while start > 0 && used + lines[start - 1].len() < max_bytes {
        used += lines[start - 1].len() + 1;
        start -= 1;
    }
    omitted += start as u64;
    let kept = lines[start..].join("\n");
    NewestLines {
        kept_lines: (lines.len() - start) as u32,
        text: kept,
        omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
    }
}

/// What [`newest_lines`] kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestLines {
    /// The kept lines, joined (no final newline).
    pub text: String,
    /// How many.
    pub kept_lines: u32,
    /// Lines left out before them.
    pub omitted: u32,
}

/// The note appended when items were left out.
pub fn omitted_note(omitted: u32, noun: &str, reason: &str) -> String {
    format!(
        "... {omitted} more {noun} not shown ({reason}). Narrow with namespace, labelSelector, fieldSelector or limit.\n"
    )
}

/// Serialises cleaned objects as YAML documents or a JSON array, stopping
/// before `max_bytes`.
pub fn render_objects(items: Vec<Value>, output: Output, max_bytes: usize, noun: &str) -> Rendered {
    let total = items.len() as u32;
    let mut docs: Vec<String> = Vec::new();
    let mut used = 0usize;
    for item in &items {
        let doc = match output {
            Output::Json => serde_json::to_string_pretty(item).unwrap_or_default(),
            _ => yaml_serde::to_string(item).unwrap_or_default(),
        };
        if used + doc.len() > max_bytes && !docs.is_empty() {
            break;
        }
        used += doc.len() + 5;
        docs.push(doc);
    }
    let shown = docs.len() as u32;
    let mut text = match output {
        Output::Json => format!("[\n{}\n]\n", docs.join(",\n")),
        _ => {
            docs.iter()
                .map(|d| d.trim_end())
                .collect::<Vec<_>>()
                .join("\n---\n")
                + "\n"
        }
    };
    if items.is_empty() {
        text = match output {
            Output::Json => "[]\n".into(),
            _ => format!("No {noun} found.\n"),
        };
    }
    let omitted = total - shown;
    if omitted > 0 {
        text.push_str(&omitted_note(
            omitted,
            noun,
            &format!("answer capped at {} KiB", max_bytes / 1024),
        ));
    }
    Rendered {
        text,
        items: total,
        omitted,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn align_pads_like_kubectl() {
        let rows = vec![
            vec!["NAME".into(), "STATUS".into()],
            vec!["frontend-00".into(), "Running".into()],
        ];
        assert_eq!(
            align(&rows),
            "NAME          STATUS\nfrontend-00   Running\n"
        );
    }

    #[test]
    fn cap_keeps_header_and_counts_omitted() {
        let mut rows = vec![vec!["NAME".to_string()]];
        rows.extend((0..100).map(|i| vec![format!("pod-{i:03}")]));
        let n = rows_that_fit(&rows, 200);
        assert!(n > 5 && n < 30, "{n}");
        assert!(align(&rows[..=n]).len() <= 200);
    }

    #[test]
    fn newest_lines_keep_the_end_and_count_the_rest() {
        let text = (0..100)
            .map(|i| format!("line {i:03}"))
            .collect::<Vec<_>>()
            .join("\n");
        let n = newest_lines(&text, 5, true, 0, 45);
        assert_eq!(n.text, "line 095\nline 096\nline 097\nline 098\nline 099");
        assert_eq!((n.kept_lines, n.omitted), (5, 5 + 1 + 94));
        let n = newest_lines(&text, 0, false, 2, 1000);
        assert_eq!((n.text.as_str(), n.omitted), ("line 098\nline 099", 98));
        let n = newest_lines("", 0, false, 0, 10);
        assert_eq!((n.kept_lines, n.omitted), (0, 0));
    }

    #[test]
    fn objects_are_cleaned_and_capped() {
        let mut o = json!({"kind": "Pod", "metadata": {"name": "a", "managedFields": [{"x": 1}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}});
        crate::safety::clean_object(&mut o, &crate::safety::Masking::default(), "pods");
        assert_eq!(o, json!({"kind": "Pod", "metadata": {"name": "a"}}));
        let items: Vec<Value> = (0..50)
            .map(|i| json!({"metadata": {"name": format!("pod-{i}")}, "pad": "x".repeat(100)}))
            .collect();
        let r = render_objects(items, Output::Yaml, 1024, "pods");
        assert!(
            r.omitted > 0 && r.text.contains("more pods not shown"),
            "{}",
            r.text
        );
        assert!(r.text.len() < 1400);
        let r = render_objects(vec![json!({"a": 1})], Output::Json, 1024, "pods");
        assert!(serde_json::from_str::<Value>(&r.text).unwrap().is_array());
    }
}
