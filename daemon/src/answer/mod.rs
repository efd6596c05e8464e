//! The answer composer: every Kube answer, fan-out included, is composed
//! here as ONE text within ONE byte budget (`[output] max_bytes`).
//!
//! Entry points (other RPCs, e.g. helm_list, reuse them):
//! - [`shape::Shape::parse`] checks `limit`, `continue`, `summary`,
//!   `count_by`, `columns`, `fields` and `sortBy` before anything is sent.
//! - [`compose_list`] merges the per-cluster [`Listing`]s of a list call:
//!   one table (a `CLUSTER` column first for several clusters, one header,
//!   ordered by cluster, namespace, name unless `sortBy`), or YAML/JSON
//!   items (`{cluster, object}` for several clusters), or counts; a page of
//!   it within the budget, and a footer that says what was left out and
//!   gives the `continue` token of the next page.
//! - [`resume_list`] answers a `continue` token from its snapshot, without
//!   calling any cluster.
//! - [`compose_sections`] composes per-cluster texts (get, describe,
//!   rollout status, node reads, logs) within the budget, each cluster
//!   having run with [`share`] of it.
//! - [`page::Pages`] holds the snapshots and the token key (one per daemon).
//!
//! Failures and clusters `"*"` skipped always go to one compact footer,
//! grouped by reason ([`budget::failures`]).

pub mod budget;
pub mod page;
pub mod project;
pub mod shape;
pub mod status;
pub mod summary;

use std::sync::Arc;

use crate::{
    error::OpError,
    ops::{Output, Rendered, list::Listing},
};

use page::{Cursor, Pages, Snapshot};
use shape::Shape;

/// Bytes of the budget left for the client's own one-line note (the
/// watch-cache line).
pub const NOTE_RESERVE: usize = 128;

/// Smallest per-cluster share of the budget an operation runs with.
pub const MIN_SHARE: usize = 1024;

/// The merged entries of an answer, in order.
#[derive(Debug, Clone, Hash)]
pub struct Sheet {
    /// Plural noun for notes ("pods").
    pub noun: String,
    /// Column names (tables).
    pub header: Vec<String>,
    /// Rows or documents.
    pub entries: Entries,
    /// How documents are joined.
    pub output: Output,
}

/// Rows of cells, or rendered documents.
#[derive(Debug, Clone, Hash)]
pub enum Entries {
    /// Table rows.
    Rows(Vec<Row>),
    /// YAML or JSON documents, one per item.
    Docs(Vec<String>),
}

/// One table row's cells kept as one string: a paged answer holds tens of
/// thousands of rows, and one allocation a row costs a fifth of one a cell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Row(Box<str>);

/// Between the cells of a [`Row`] (a cell's own are shown as spaces).
const CELL_SEPARATOR: char = '\u{1f}';

impl Row {
    /// A row of these cells.
    pub fn new<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> Self {
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                text.push(CELL_SEPARATOR);
            }
            let cell = cell.as_ref();
            if cell.contains(CELL_SEPARATOR) {
                text.push_str(&cell.replace(CELL_SEPARATOR, " "));
            } else {
                text.push_str(cell);
            }
        }
        Self(text.into_boxed_str())
    }

    /// Its cells, in order.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.0.split(CELL_SEPARATOR)
    }

    /// Cell `i`, if the row has it.
    pub fn cell(&self, i: usize) -> Option<&str> {
        self.cells().nth(i)
    }

    /// Its cells as strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.cells().map(str::to_string).collect()
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.0.len()
    }
}

impl Sheet {
    /// Entries in all.
    pub fn len(&self) -> usize {
        match &self.entries {
            Entries::Rows(r) => r.len(),
            Entries::Docs(d) => d.len(),
        }
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Roughly the bytes it holds.
    pub fn bytes(&self) -> usize {
        match &self.entries {
            Entries::Rows(r) => r.iter().map(|row| row.bytes() + 40).sum(),
            Entries::Docs(d) => d.iter().map(|s| s.len() + 24).sum(),
        }
    }
}

/// One cluster's listing.
#[derive(Debug, Clone)]
pub struct Part {
    /// Cluster.
    pub cluster: String,
    /// Its rows.
    pub listing: Listing,
}

/// A composed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The text, at most the budget.
    pub text: String,
    /// Every targeted cluster failed, or none was left to run on.
    pub failed: bool,
    /// Every answering cluster answered from its watch cache.
    pub from_cache: bool,
}

/// What a list call asked, beside its rows.
#[derive(Debug, Clone)]
pub struct ListCall<'a> {
    /// Shaping arguments.
    pub shape: &'a Shape,
    /// Several clusters targeted (a `CLUSTER` column, wrapped items).
    pub multi: bool,
    /// Listing across all namespaces (a `NAMESPACE` column).
    pub all_namespaces: bool,
    /// The answer's byte budget.
    pub budget: usize,
    /// Digest of the normalized request, for `continue` tokens.
    pub digest: [u8; 32],
    /// The tool the agent called, named in the next-page hint.
    pub tool: Option<&'a str>,
    /// How to ask for less, in the footer ([`NARROW_LIST`] for lists).
    pub narrow: &'a str,
}

/// How a list call asks for less.
pub const NARROW_LIST: &str =
    "narrow with namespace, labelSelector, fieldSelector, columns or fields";

/// A cluster's share of the budget when `clusters` answer together.
pub fn share(budget: usize, clusters: usize) -> usize {
    (budget.saturating_sub(NOTE_RESERVE + budget::FOOTER_RESERVE) / clusters.max(1)).max(MIN_SHARE)
}

/// Merges the listings of a list call and answers its first page.
pub fn compose_list(
    pages: &Pages,
    call: &ListCall<'_>,
    outcomes: Vec<(String, Result<Listing, OpError>)>,
    skipped: &[String],
) -> Result<Answer, OpError> {
    let targeted = outcomes.len();
    let mut parts = Vec::new();
    let mut failed = Vec::new();
    for (cluster, result) in outcomes {
        match result {
            Ok(listing) => parts.push(Part { cluster, listing }),
            Err(e) => failed.push((cluster, e)),
        }
    }
    let budget = call.budget.saturating_sub(NOTE_RESERVE);
    let failures = budget::failures(&failed, skipped, budget / 4);
    if parts.is_empty() {
        let text = match (targeted, failed.as_slice()) {
            (1, [(_, e)]) if skipped.is_empty() => crate::redact::redact(&e.to_string()),
            (0, _) => format!(
                "No cluster to run on: \"*\" skips clusters known to be down (see clusters_status).\n{failures}"
            ),
            _ => failures,
        };
        return Ok(Answer {
            text: budget::cut(text, budget),
            failed: true,
            from_cache: false,
        });
    }
    let from_cache = parts.iter().all(|p| p.listing.from_cache);
    let server_cut = parts
        .iter()
        .filter(|p| p.listing.more_on_server)
        .map(|p| p.cluster.clone())
        .collect::<Vec<_>>();
    let sheet = match &call.shape.count_by {
        Some(keys) => summary::sheet(&parts, keys, call.multi)?,
        None => project::sheet(&mut parts, call.multi, call.all_namespaces, call.shape)?,
    };
    let mut failures = failures;
    if !server_cut.is_empty() {
        failures.push_str(&format!(
            "... the API server of {} sent only part of the list (its own limit).\n",
            budget::names(&server_cut, 200)
        ));
    }
    Ok(compose_sheet(pages, call, sheet, failures, from_cache))
}

/// Answers the first page of `sheet` (rows composed by the caller, e.g.
/// the clusters_status table) and keeps it for `continue`; `footer` ends
/// every page.
pub fn compose_sheet(
    pages: &Pages,
    call: &ListCall<'_>,
    sheet: Sheet,
    footer: String,
    from_cache: bool,
) -> Answer {
    let snapshot = Arc::new(Snapshot {
        sheet,
        failures: footer,
        from_cache,
    });
    render_page(pages, call, snapshot, None, 0)
}

/// The page a `continue` token points at, from its snapshot.
pub fn resume_list(pages: &Pages, call: &ListCall<'_>, token: &str) -> Result<Answer, OpError> {
    let (snapshot, cursor) = pages.resume(token, &call.digest)?;
    let offset = cursor.offset;
    Ok(render_page(pages, call, snapshot, Some(cursor), offset))
}

fn render_page(
    pages: &Pages,
    call: &ListCall<'_>,
    snapshot: Arc<Snapshot>,
    cursor: Option<Cursor>,
    offset: usize,
) -> Answer {
    let budget = call.budget.saturating_sub(NOTE_RESERVE);
    let sheet = &snapshot.sheet;
    let total = sheet.len();
    let body_budget = budget.saturating_sub(budget::FOOTER_RESERVE + snapshot.failures.len());
    let mut text = if total == 0 {
        match sheet.output {
            Output::Json if !call.multi => "[]\n".to_string(),
            Output::Json => "[]\n".to_string(),
            _ => format!("No {} found.\n", sheet.noun),
        }
    } else {
        String::new()
    };
    let mut end = offset;
    if total > 0 {
        let limit = call.shape.limit as usize;
        let page = budget::page(sheet, offset.min(total), limit, body_budget);
        text = page.text;
        end = page.end;
    }
    if end < total {
        let left = total - end;
        let reason = if call.shape.limit > 0 && end - offset == call.shape.limit as usize {
            format!("limit {}", call.shape.limit)
        } else {
            format!("answer capped at {} KiB", call.budget / 1024)
        };
        let cursor = cursor.or_else(|| pages.keep(snapshot.clone(), &call.digest));
        match cursor {
            Some(cursor) => {
                let token = pages.token(cursor, end, &call.digest);
                let tool = call.tool.unwrap_or("this tool");
                text.push_str(&format!(
                    "... {left} more {} not shown ({} {}-{} of {total}; {reason}). Next page: call {tool} again with the same arguments and \"continue\": \"{token}\" (or {})\n",
                    sheet.noun,
                    if matches!(sheet.entries, Entries::Rows(_)) { "rows" } else { "items" },
                    offset + 1,
                    end,
                    call.narrow,
                ));
            }
            None => text.push_str(&format!(
                "... {left} more {} not shown ({reason}; too large to keep for paging). To see less: {}.\n",
                sheet.noun,
                call.narrow,
            )),
        }
    } else if offset > 0 {
        text.push_str(&format!(
            "(last page: {} {}-{} of {total})\n",
            if matches!(sheet.entries, Entries::Rows(_)) {
                "rows"
            } else {
                "items"
            },
            offset + 1,
            end
        ));
    }
    text.push_str(&snapshot.failures);
    Answer {
        text: budget::cut(text, budget),
        failed: false,
        from_cache: snapshot.from_cache,
    }
}

/// Composes per-cluster texts: one cluster's text as it is; several as
/// sections in order while they fit, then a line naming the clusters left
/// out, then the failures footer.
pub fn compose_sections(
    budget: usize,
    answers: Vec<(String, Result<Rendered, OpError>)>,
    skipped: &[String],
) -> Answer {
    let budget = budget.saturating_sub(NOTE_RESERVE);
    let ok = answers.iter().filter(|a| a.1.is_ok()).count();
    let from_cache = ok > 0
        && answers
            .iter()
            .all(|a| a.1.as_ref().map_or(true, |r| r.from_cache));
    if let ([(_, result)], []) = (answers.as_slice(), skipped) {
        return match result {
            Ok(r) => Answer {
                text: budget::cut(r.text.clone(), budget),
                failed: false,
                from_cache: r.from_cache,
            },
            Err(e) => Answer {
                text: budget::cut(crate::redact::redact(&e.to_string()), budget),
                failed: true,
                from_cache: false,
            },
        };
    }
    let mut failed = Vec::new();
    let mut sections = Vec::new();
    for (cluster, result) in answers {
        match result {
            Ok(r) => sections.push((cluster, r.text)),
            Err(e) => failed.push((cluster, e)),
        }
    }
    let failures = budget::failures(&failed, skipped, budget / 4);
    let room = budget.saturating_sub(failures.len() + budget::FOOTER_RESERVE);
    let mut text = String::new();
    if sections.is_empty() && failed.is_empty() {
        text.push_str(
            "No cluster to run on: \"*\" skips clusters known to be down (see clusters_status).\n",
        );
    }
    let mut left_out = Vec::new();
    for (cluster, body) in sections {
        let mut section = format!("=== cluster {cluster} ===\n{body}");
        if !section.ends_with('\n') {
            section.push('\n');
        }
        if text.len() + section.len() <= room && left_out.is_empty() {
            text.push_str(&section);
        } else {
            left_out.push(cluster);
        }
    }
    if !left_out.is_empty() {
        text.push_str(&format!(
            "... {} clusters' answers not shown (answer capped at {} KiB): {}; ask for them with `clusters`\n",
            left_out.len(),
            (budget + NOTE_RESERVE) / 1024,
            budget::names(&left_out, budget::FOOTER_RESERVE - 120),
        ));
    }
    text.push_str(&failures);
    Answer {
        text: budget::cut(text, budget),
        failed: ok == 0,
        from_cache,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::list::ListedRow;

    fn outcome(cluster: &str, n: usize) -> (String, Result<Listing, OpError>) {
        (
            cluster.into(),
            Ok(Listing {
                noun: "pods".into(),
                namespaced: true,
                header: vec!["NAME".into(), "STATUS".into()],
                rows: (0..n)
                    .map(|i| ListedRow {
                        namespace: "shop".into(),
                        name: format!("pod-{i:03}"),
                        cells: vec![format!("pod-{i:03}"), "Running".into()],
                        object: None,
                    })
                    .rev()
                    .collect(),
                from_cache: true,
                more_on_server: false,
            }),
        )
    }

    fn call(shape: &Shape, budget: usize) -> ListCall<'_> {
        ListCall {
            shape,
            multi: true,
            all_namespaces: true,
            budget,
            digest: [3; 32],
            tool: Some("pods_list"),
            narrow: NARROW_LIST,
        }
    }

    #[test]
    fn one_merged_table_paged_within_the_budget() {
        let pages = Pages::new();
        let shape = Shape::default();
        let outcomes: Vec<_> = (0..200).map(|c| outcome(&format!("c{c:03}"), 25)).collect();
        let call = call(&shape, 8192);
        let first =
            compose_list(&pages, &call, outcomes, &["z: NotReady: refused".into()]).unwrap();
        assert!(
            first.text.len() <= 8192 - NOTE_RESERVE,
            "{}",
            first.text.len()
        );
        assert!(
            first.text.starts_with(
                "CLUSTER   NAMESPACE   NAME      STATUS\nc000      shop        pod-000   Running\n"
            ),
            "{}",
            first.text
        );
        assert_eq!(first.text.matches("CLUSTER").count(), 1);
        assert!(first.text.contains("1 cluster skipped"), "{}", first.text);
        let mut rows: Vec<String> = crate::answer::tests::data(&first.text);
        let mut text = first.text;
        while let Some(token) = text
            .split("\"continue\": \"")
            .nth(1)
            .map(|t| t.split('"').next().unwrap().to_string())
        {
            let next = resume_list(&pages, &call, &token).unwrap();
            assert!(next.text.len() <= 8192 - NOTE_RESERVE);
            rows.extend(crate::answer::tests::data(&next.text));
            text = next.text;
        }
        assert_eq!(rows.len(), 5000);
        let mut sorted = rows.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 5000, "no row repeated");
        assert!(text.contains("last page"), "{text}");
    }

    pub(crate) fn data(text: &str) -> Vec<String> {
        text.lines()
            .skip(1)
            .filter(|l| l.starts_with('c') && !l.starts_with("c "))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn sections_share_the_budget_and_group_failures() {
        let answers: Vec<(String, Result<Rendered, OpError>)> = (0..100)
            .map(|i| {
                let r = if i % 10 == 9 {
                    Err(OpError::InvalidArgument(format!("cluster c{i}: nope")))
                } else {
                    Ok(Rendered {
                        text: "x".repeat(share(4096, 100)),
                        ..Rendered::default()
                    })
                };
                (format!("c{i:02}"), r)
            })
            .collect();
        let a = compose_sections(4096, answers, &[]);
        assert!(a.text.len() <= 4096 - NOTE_RESERVE, "{}", a.text.len());
        assert!(a.text.contains("clusters' answers not shown"), "{}", a.text);
        assert!(a.text.contains("10 clusters failed"), "{}", a.text);
        assert!(!a.failed);
    }
}
