//! Rendering the API server's own `meta.k8s.io/v1` Table answers: the same
//! columns kubectl shows for every kind, CRDs included, with no per-kind code.

use std::time::SystemTime;

use serde_json::Value;

pub use crate::cache::RowCells;

use super::{
    Rendered,
    shape::{align, omitted_note, rows_that_fit},
};

/// How to render a table answer.
#[derive(Debug, Clone)]
pub struct TableStyle<'a> {
    /// A sensitive kind: only name, date and (for Secrets) type and count
    /// columns are shown, whatever columns the server defines.
    pub sensitive: bool,
    /// The core Secret kind (whose TYPE and DATA columns the API server
    /// itself defines).
    pub core_secret: bool,
    /// Prepend a NAMESPACE column (listing namespaced kinds everywhere).
    pub namespace_column: bool,
    /// Plural noun for notes ("pods").
    pub noun: &'a str,
    /// Byte cap.
    pub max_bytes: usize,
    /// Whether the server said more items exist beyond `limit`.
    pub remaining: Option<u64>,
}

/// A Table answer's shown columns and cells.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    /// Column names, upper case (no NAMESPACE).
    pub header: Vec<String>,
    /// Index in `header` of the object's name (the `name`-format column).
    pub name_column: usize,
    /// The rows.
    pub rows: Vec<CellRow>,
}

/// One row of [`Cells`].
#[derive(Debug, Clone, Default)]
pub struct CellRow {
    /// The namespace of the row's object, when the answer embeds it.
    pub namespace: Option<String>,
    /// Cell texts, one line each, dates as ages.
    pub cells: Vec<String>,
}

/// The shown columns (priority 0, harmless ones for a sensitive kind) and
/// their cells.
pub fn cells(table: &Value, style: &TableStyle<'_>) -> Cells {
    let rows_json = table["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut rows = rows_json.iter().map(|row| RowCells {
        namespace: row
            .pointer("/object/metadata/namespace")
            .and_then(Value::as_str),
        cells: row["cells"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        age: None,
    });
    cells_of(&table["columnDefinitions"], &mut rows, style)
}

/// [`cells`] of rows lent by a watch cache ([`crate::cache::Watch::read_table`]),
/// or of a Table answer's rows: `columns` are the Table's column
/// definitions; a row's `age` replaces its age cell.
pub fn cells_of(
    columns: &Value,
    rows: &mut dyn Iterator<Item = RowCells<'_>>,
    style: &TableStyle<'_>,
) -> Cells {
    let columns: Vec<&Value> = columns
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    // kubectl shows priority-0 columns by default.
    let shown: Vec<(usize, &Value)> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c["priority"].as_i64().unwrap_or(0) == 0)
        .filter(|(_, c)| !style.sensitive || harmless_column(c, style.core_secret))
        .map(|(i, c)| (i, *c))
        .collect();
    let header = shown
        .iter()
        .map(|(_, c)| c["name"].as_str().unwrap_or("").to_ascii_uppercase())
        .collect();
    let name_column = shown
        .iter()
        .position(|(_, c)| c["format"].as_str() == Some("name"))
        .unwrap_or(0);
    let now = SystemTime::now();
    let dates: Vec<bool> = shown
        .iter()
        .map(|(_, c)| c["format"].as_str() == Some("date") || c["type"].as_str() == Some("date"))
        .collect();
    let rows = rows
        .map(|row| CellRow {
            namespace: row.namespace.map(str::to_string),
            cells: shown
                .iter()
                .zip(&dates)
                .map(|((i, _), &date)| match row.age {
                    Some((at, age)) if at == *i => crate::cache::age::human_duration(age),
                    _ => cell_text(row.cells.get(*i).unwrap_or(&Value::Null), date, now),
                })
                .collect(),
        })
        .collect();
    Cells {
        header,
        name_column,
        rows,
    }
}

/// Renders a Table JSON answer.
pub fn render(table: &Value, style: &TableStyle<'_>) -> Rendered {
    let cells = cells(table, style);
    let mut header: Vec<String> = Vec::new();
    if style.namespace_column {
        header.push("NAMESPACE".into());
    }
    header.extend(cells.header);
    let mut rows = Vec::with_capacity(cells.rows.len() + 1);
    rows.push(header);
    for row in &cells.rows {
        let mut out = Vec::with_capacity(row.cells.len() + 1);
        if style.namespace_column {
            out.push(row.namespace.clone().unwrap_or_default());
        }
        out.extend(row.cells.iter().cloned());
        rows.push(out);
    }
    let items = cells.rows.len() as u32;
    if items == 0 {
        return Rendered {
            text: format!("No {} found.\n", style.noun),
            items: 0,
            omitted: 0,
            ..Default::default()
        };
    }
    let fit = rows_that_fit(&rows, style.max_bytes.saturating_sub(200));
    let mut text = align(&rows[..=fit]);
    let omitted = items - fit as u32;
    if omitted > 0 {
        text.push_str(&omitted_note(
            omitted,
            style.noun,
            &format!("answer capped at {} KiB", style.max_bytes / 1024),
        ));
    }
    if let Some(more) = style.remaining {
        text.push_str(&format!(
            "... the server has {} more {} beyond the limit.\n",
            if more > 0 {
                more.to_string()
            } else {
                "some".into()
            },
            style.noun
        ));
    }
    Rendered {
        text,
        items,
        omitted,
        ..Default::default()
    }
}

/// Columns of a sensitive kind's table that cannot carry its values: the
/// name, dates, and a Secret's TYPE and DATA (a count).
fn harmless_column(column: &Value, core_secret: bool) -> bool {
    let is = |key: &str, want: &str| column[key].as_str() == Some(want);
    is("format", "name")
        || is("format", "date")
        || is("type", "date")
        || (core_secret && is("name", "Type"))
        || (core_secret && is("name", "Data") && is("type", "integer"))
}

fn cell_text(cell: &Value, is_date: bool, now: SystemTime) -> String {
    let text = match cell {
        Value::Null => "<none>".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    if is_date && let Ok(t) = humantime::parse_rfc3339_weak(&text) {
        return short_age(now.duration_since(t).unwrap_or_default());
    }
    // Keep each row on one line.
    if text.contains('\n') {
        text.replace('\n', " ")
    } else {
        text
    }
}

/// kubectl-style age (shared with the clients).
pub use nskd_proto::present::short_duration as short_age;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(rows: usize) -> Value {
        json!({
            "kind": "Table",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Status", "type": "string", "priority": 0},
                {"name": "IP", "type": "string", "priority": 1},
                {"name": "Created", "type": "string", "format": "date", "priority": 0},
            ],
            "rows": (0..rows).map(|i| json!({
                "cells": [format!("pod-{i:03}"), "Running", "10.0.0.1", "2000-01-01T00:00:00Z"],
                "object": {"metadata": {"namespace": "shop"}}
            })).collect::<Vec<_>>()
        })
    }

    #[test]
    fn renders_priority_zero_columns_with_namespace_and_ages() {
        let style = TableStyle {
            sensitive: false,
            core_secret: false,
            namespace_column: true,
            noun: "pods",
            max_bytes: 32 * 1024,
            remaining: None,
        };
        let r = render(&table(2), &style);
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines[0], "NAMESPACE   NAME      STATUS    CREATED");
        assert!(
            lines[1].starts_with("shop        pod-000   Running   "),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with('y'), "{}", lines[1]);
        assert!(!r.text.contains("10.0.0.1"));
        assert_eq!((r.items, r.omitted), (2, 0));
    }

    #[test]
    fn big_tables_are_capped_with_a_note() {
        let style = TableStyle {
            sensitive: false,
            core_secret: false,
            namespace_column: false,
            noun: "pods",
            max_bytes: 4096,
            remaining: None,
        };
        let r = render(&table(500), &style);
        assert!(r.text.len() <= 4096, "{}", r.text.len());
        assert!(r.omitted > 0);
        assert!(
            r.text
                .contains(&format!("{} more pods not shown", r.omitted))
        );
    }

    #[test]
    fn ages_are_short() {
        use std::time::Duration;
        assert_eq!(short_age(Duration::from_secs(5)), "5s");
        assert_eq!(short_age(Duration::from_secs(600)), "10m");
        assert_eq!(short_age(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(short_age(Duration::from_secs(5 * 86400)), "5d");
    }
}
