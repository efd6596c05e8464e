//! Answers from a cache, shaped like the API server's own answers (a
//! Table, or a list of items) so the same rendering code prints both.

use std::time::SystemTime;

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

impl Watch {
    /// The matching rows as the server's Table (cells with fresh ages, and
    /// the namespace each row's object lives in), plus list metadata that
    /// says whether the limit left some out.
    pub fn table(&self, query: &Query) -> Value {
        let now = SystemTime::now();
        self.read(|snapshot| {
            let age_column = age::age_column(&snapshot.columns);
            let (picked, more) = pick(snapshot, query);
            let rows: Vec<Value> = picked
                .into_iter()
                .map(|row| {
                    let mut cells = row.cells.clone();
                    if let Some(i) = age_column
                        && let Some(age) = age::age_cell(&row.fields, now)
                        && i < cells.len()
                    {
                        cells[i] = Value::String(age);
                    }
                    json!({
                        "cells": cells,
                        "object": {"metadata": {
                            "namespace": row.fields.pointer("/metadata/namespace").cloned().unwrap_or(Value::Null)
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
    let prefix = query.namespace.as_ref().map(|ns| format!("{ns}/"));
    let matching = snapshot
        .rows
        .iter()
        .filter(|(key, _)| prefix.as_ref().is_none_or(|p| key.starts_with(p.as_str())))
        .map(|(_, row)| row)
        .filter(|row| {
            query.labels.matches(&labels_of(&row.fields)) && query.fields.matches(&row.fields)
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
