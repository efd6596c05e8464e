//! Fitting text into the answer's byte budget: a page of rows or
//! documents, and the footer of clusters that failed or were skipped,
//! grouped by reason.

use std::collections::BTreeMap;

use super::{Entries, Row, Sheet};
use crate::{error::OpError, ops::Output, ops::shape::align};

/// Bytes kept back from the budget for the paging line and the notes.
pub const FOOTER_RESERVE: usize = 400;

/// One page: its text and the first entry it did not show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows (with the header) or documents.
    pub text: String,
    /// Entry after the last one shown.
    pub end: usize,
}

/// Entries from `offset` on, at most `limit` (0 = no limit), within
/// `budget` bytes; at least one entry when any is left (cut to the budget
/// when it alone is larger).
pub fn page(sheet: &Sheet, offset: usize, limit: usize, budget: usize) -> Page {
    let total = sheet.len();
    let stop = if limit == 0 {
        total
    } else {
        total.min(offset.saturating_add(limit))
    };
    match &sheet.entries {
        Entries::Rows(rows) => {
            let cols = sheet.header.len();
            let mut widths: Vec<usize> = sheet.header.iter().map(|h| h.chars().count()).collect();
            let mut end = offset;
            for (n, row) in rows.iter().enumerate().take(stop).skip(offset) {
                let mut next = widths.clone();
                for (i, cell) in row.cells().enumerate().take(cols) {
                    next[i] = next[i].max(cell.chars().count());
                }
                let line = next.iter().sum::<usize>() + 3 * cols.saturating_sub(1) + 1;
                if line * (n - offset + 2) > budget && n > offset {
                    break;
                }
                widths = next;
                end = n + 1;
            }
            let mut lines = Vec::with_capacity(end - offset + 1);
            lines.push(sheet.header.clone());
            lines.extend(rows[offset.min(end)..end].iter().map(Row::to_vec));
            Page {
                text: cut(align(&lines), budget),
                end,
            }
        }
        Entries::Docs(docs) => {
            let mut used = 4;
            let mut end = offset;
            for (n, doc) in docs.iter().enumerate().take(stop).skip(offset) {
                if used + doc.len() + 6 > budget && n > offset {
                    break;
                }
                used += doc.len() + 6;
                end = n + 1;
            }
            let shown: Vec<String> = docs[offset.min(end)..end]
                .iter()
                .map(|d| cut(d.trim_end().to_string(), budget.saturating_sub(8)))
                .collect();
            let text = match sheet.output {
                Output::Json => format!("[\n{}\n]\n", shown.join(",\n")),
                _ => shown.join("\n---\n") + "\n",
            };
            Page { text, end }
        }
    }
}

/// `text` cut to `max` bytes at a line (or character) boundary, marked.
pub fn cut(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mark = "\n... (cut at the answer's byte budget)\n";
    let mut at = max.saturating_sub(mark.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    let keep = text[..at].rfind('\n').map(|i| i + 1).unwrap_or(at);
    format!("{}{}", &text[..keep], &mark[1..])
}

/// Names joined with ", ", as many as fit in `max` bytes, then "+N more".
pub fn names(names: &[String], max: usize) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        let more = format!(" (+{} more)", names.len() - i);
        if !out.is_empty() && out.len() + n.len() + 2 + more.len() > max {
            return out + &more;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(n);
    }
    out
}

/// One line per reason: clusters that failed (grouped by the kind of
/// failure, with the first error in full) and those `"*"` skipped.
pub fn failures(failed: &[(String, OpError)], skipped: &[String], budget: usize) -> String {
    let mut groups: BTreeMap<&'static str, Vec<&(String, OpError)>> = BTreeMap::new();
    for f in failed {
        let kind = f.1.kind();
        let what = nskd_proto::error_kind::gist(kind)
            .unwrap_or_else(|| nskd_proto::error_kind::label(kind));
        groups.entry(what).or_default().push(f);
    }
    let mut skips: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in skipped {
        let (name, reason) = s
            .split_once(": ")
            .unwrap_or((s.as_str(), "known to be down"));
        skips.entry(reason).or_default().push(name.to_string());
    }
    let lines = groups.len() + skips.len();
    if lines == 0 {
        return String::new();
    }
    let per_line = (budget / lines).clamp(120, 2000);
    let mut out = String::new();
    for (what, list) in &groups {
        let clusters: Vec<String> = list.iter().map(|(c, _)| c.clone()).collect();
        let first = crate::redact::redact(&list[0].1.to_string());
        let plural = if list.len() == 1 { "" } else { "s" };
        let head = format!("{} cluster{plural} failed ({what}): ", list.len());
        let example = format!(". First error: {first}");
        let room = per_line.saturating_sub(head.len() + 40);
        let line = format!("{head}{}", names(&clusters, room.min(per_line / 2)));
        out.push_str(&cut_line(&(line + &example), per_line));
    }
    for (reason, list) in &skips {
        let plural = if list.len() == 1 { "" } else { "s" };
        let head = format!(
            "{} cluster{plural} skipped by \"*\" ({reason}): ",
            list.len()
        );
        let tail = "; name one in `clusters` to try it anyway";
        let room = per_line.saturating_sub(head.len() + tail.len());
        out.push_str(&cut_line(
            &format!("{head}{}{tail}", names(list, room)),
            per_line,
        ));
    }
    cut(out, budget)
}

/// One line of at most `max` bytes, newline-terminated.
fn cut_line(line: &str, max: usize) -> String {
    let one = line.replace('\n', " ");
    if one.len() <= max {
        return one + "\n";
    }
    let mut at = max.saturating_sub(1);
    while !one.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…\n", &one[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(n: usize) -> Sheet {
        Sheet {
            noun: "pods".into(),
            header: vec!["CLUSTER".into(), "NAME".into()],
            entries: Entries::Rows(
                (0..n)
                    .map(|i| Row::new([format!("c{}", i / 10), format!("pod-{i:04}")]))
                    .collect(),
            ),
            output: Output::Table,
        }
    }

    #[test]
    fn pages_fit_and_concatenate() {
        let s = sheet(1000);
        let mut offset = 0;
        let mut seen = Vec::new();
        while offset < s.len() {
            let p = page(&s, offset, 0, 2048);
            assert!(p.text.len() <= 2048, "{}", p.text.len());
            assert!(p.end > offset);
            seen.extend(p.text.lines().skip(1).map(str::to_string));
            offset = p.end;
        }
        assert_eq!(seen.len(), 1000);
        assert_eq!(seen[999], "c99       pod-0999");
        let p = page(&s, 10, 5, 1 << 20);
        assert_eq!((p.end, p.text.lines().count()), (15, 6));
    }

    #[test]
    fn failures_are_grouped_by_reason_within_the_budget() {
        let failed: Vec<(String, OpError)> = (0..300)
            .map(|i| {
                (
                    format!("b{i:04}"),
                    OpError::InvalidArgument(format!("cluster b{i:04}: bad")),
                )
            })
            .collect();
        let skipped: Vec<String> = (0..200)
            .map(|i| format!("s{i}: NotReady: connection refused"))
            .collect();
        let text = failures(&failed, &skipped, 4096);
        assert!(text.len() <= 4096, "{}", text.len());
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("300 clusters failed ("), "{text}");
        assert!(text.contains("more)"), "{text}");
        assert!(
            text.contains("200 clusters skipped by \"*\" (NotReady: connection refused): s0, s1"),
            "{text}"
        );
    }

    #[test]
    fn cut_keeps_whole_lines_and_char_boundaries() {
        let t = "é".repeat(100) + "\n" + &"x".repeat(100);
        let c = cut(t, 120);
        assert!(c.len() <= 120 && c.ends_with("budget)\n"), "{c}");
        assert_eq!(names(&["a".into(), "b".into(), "c".into()], 100), "a, b, c");
    }
}
