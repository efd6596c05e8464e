//! Answers from a cache, shaped like the API server's own answers (a
//! Table, or a list of items) so the same rendering code prints both.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{
    Watch, age,
    select::{FieldSelector, LabelSelector, labels_of},
};

/// What a cached list is asked for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this namespace (a cache of every namespace can answer it).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// At most this many (0 = all).
    pub limit: u32,
}

impl Query {
    /// A query for these selectors, or `None` when a selector is one the
    /// cache cannot evaluate exactly (the call then goes to the server).
    pub fn new(
        namespace: Option<&str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
        limit: u32,
        group: &str,
        plural: &str,
    ) -> Option<Self> {
        Some(Self {
            namespace: namespace.map(str::to_string),
            labels: LabelSelector::parse(label_selector.unwrap_or(""))?,
            fields: FieldSelector::parse(field_selector.unwrap_or(""), group, plural)?,
            limit,
        })
    }

    fn filtered(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }
}

/// One matching cached row, as [`Watch::read_table`] lends it.
#[derive(Debug, Clone, Copy)]
pub struct RowCells<'a> {
    /// The namespace of its object (`None` for cluster-scoped kinds).
    pub namespace: Option<&'a str>,
    /// The server's cells.
    pub cells: &'a [Value],
    /// The index of the age column and the object's age now, which
    /// replaces that cell.
    pub age: Option<(usize, Duration)>,
}

impl Watch {
    /// Lends the column definitions and the matching rows, in the
    /// server's order and up to the limit, to `f` (under the cache's read
    /// lock: no JSON is built); returns what `f` made and how many more
    /// rows matched beyond the limit.
    pub fn read_table<T>(
        &self,
        query: &Query,
        f: impl FnOnce(&Value, &mut dyn Iterator<Item = RowCells<'_>>) -> T,
    ) -> (T, usize) {
        let now = SystemTime::now();
        self.read(|snapshot| {
            let age_column = age::age_column(&snapshot.columns);
            let (picked, more) = pick_keyed(snapshot, query);
            let mut rows = picked.into_iter().map(|(key, row)| RowCells {
                namespace: key.split_once('/').map(|(ns, _)| ns),
                cells: &row.cells,
                age: age_column.zip(
                    row.created
                        .map(|c| now.duration_since(c).unwrap_or_default()),
                ),
            });
            (f(&snapshot.columns, &mut rows), more)
        })
    }

    /// The matching rows as the server's Table (cells with fresh ages, and
    /// the namespace each row's object lives in), plus list metadata that
    /// says whether the limit left some out.
    pub fn table(&self, query: &Query) -> Value {
        let now = SystemTime::now();
        self.read(|snapshot| {
            let age_column = age::age_column(&snapshot.columns);
            let (picked, more) = pick_keyed(snapshot, query);
            let rows: Vec<Value> = picked
                .into_iter()
                .map(|(key, row)| {
                    let mut cells = row.cells.clone();
                    if let Some(i) = age_column
                        && let Some(age) = row
                            .created
                            .map(|c| age::human_duration(now.duration_since(c).unwrap_or_default()))
                        && i < cells.len()
                    {
                        cells[i] = Value::String(age);
                    }
                    json!({
                        "cells": cells,
                        "object": {"metadata": {
                            "namespace": key.split_once('/').map(|(ns, _)| ns)
                        }},
                    })
                })
                .collect();
            json!({
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_metadata(snapshot, query, more),
                "columnDefinitions": snapshot.columns,
                "rows": rows,
            })
        })
    }

    /// The matching objects as the server's list (`items`, `metadata`).
    pub fn list(&self, query: &Query) -> Value {
        self.read(|snapshot| {
            let (picked, more) = pick(snapshot, query);
            let items: Vec<Value> = picked.into_iter().map(|r| r.object()).collect();
            json!({
                "kind": format!("{}List", self.scope.resource.kind),
                "apiVersion": self.scope.resource.api_version,
                "metadata": list_metadata(snapshot, query, more),
                "items": items,
            })
        })
    }

    /// One object by namespace and name, if cached.
    pub fn object(&self, namespace: Option<&str>, name: &str) -> Option<Value> {
        let key = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        self.read(|snapshot| snapshot.rows.get(&key).map(|r| r.object()))
    }
}

/// Rows that match, in the server's order, up to the limit; and how many
/// more matched beyond it.
fn pick<'a>(
    snapshot: &'a super::watch::Snapshot,
    query: &Query,
) -> (Vec<&'a super::watch::CachedRow>, usize) {
    let (picked, more) = pick_keyed(snapshot, query);
    (picked.into_iter().map(|(_, row)| row).collect(), more)
}

/// [`pick`], with each row's storage key (`namespace/name` or `name`).
fn pick_keyed<'a>(
    snapshot: &'a super::watch::Snapshot,
    query: &Query,
) -> (Vec<(&'a str, &'a super::watch::CachedRow)>, usize) {
    let prefix = query.namespace.as_ref().map(|ns| format!("{ns}/"));
    let matching = snapshot
        .rows
        .iter()
        .filter(|(key, _)| prefix.as_ref().is_none_or(|p| key.starts_with(p.as_str())))
        .map(|(key, row)| (key.as_str(), row))
        .filter(|(_, row)| {
            !query.filtered() || {
                let fields = row.fields();
                query.labels.matches(&labels_of(&fields)) && query.fields.matches(&fields)
            }
        });
    if query.limit == 0 {
        return (matching.collect(), 0);
    }
    let mut picked = Vec::new();
    let mut more = 0;
    for row in matching {
        if picked.len() < query.limit as usize {
            picked.push(row);
        } else {
            more += 1;
        }
    }
    (picked, more)
}

/// The list metadata the server would send: a continue token when the
/// limit left items out, with their count only for unfiltered lists (as
/// the server does).
fn list_metadata(snapshot: &super::watch::Snapshot, query: &Query, more: usize) -> Value {
    let mut meta = json!({"resourceVersion": snapshot.resource_version});
    if more > 0 {
        meta["continue"] = Value::String("cached".into());
        if !query.filtered() {
            meta["remainingItemCount"] = json!(more);
        }
    }
    meta
}
