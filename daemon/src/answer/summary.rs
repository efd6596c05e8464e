//! Counts instead of rows (`summary`, `count_by`): objects grouped by
//! cluster, namespace or any column, the last key spread into columns, a
//! fleet-wide `(all)` row first. `READY` ("2/3") counts as `ready` or
//! `not ready`, so "deployments not fully available" is one column.

use std::collections::{BTreeMap, BTreeSet};

use super::{Entries, Part, Row, Sheet, project::natural};
use crate::{error::OpError, ops::Output};

/// The keys `summary: true` counts by: cluster (several clusters), then
/// STATUS when the kind has one, else READY.
fn default_keys(parts: &[Part], multi: bool) -> Vec<String> {
    let has = |c: &str| {
        parts
            .iter()
            .any(|p| p.listing.header.iter().any(|h| h == c))
    };
    let mut keys = Vec::new();
    if multi {
        keys.push("CLUSTER".to_string());
    }
    if has("STATUS") {
        keys.push("STATUS".into());
    } else if has("READY") {
        keys.push("READY".into());
    }
    if keys.is_empty() {
        keys.push("NAMESPACE".into());
    }
    keys
}

/// `2/2` is ready, `1/2` not; anything else stays as it is.
fn readiness(cell: &str) -> String {
    match cell.split_once('/') {
        Some((a, b)) if a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok() => {
            if a == b { "ready" } else { "not ready" }.into()
        }
        _ => cell.to_string(),
    }
}

/// The counts as a sheet of rows.
pub fn sheet(parts: &[Part], keys: &[String], multi: bool) -> Result<Sheet, OpError> {
    let keys = if keys.is_empty() {
        default_keys(parts, multi)
    } else {
        keys.to_vec()
    };
    for k in &keys {
        let known = matches!(k.as_str(), "CLUSTER" | "NAMESPACE")
            || parts.iter().any(|p| p.listing.header.contains(k))
            || parts.iter().all(|p| p.listing.rows.is_empty());
        if !known {
            let mut columns = vec!["CLUSTER".to_string(), "NAMESPACE".to_string()];
            for p in parts {
                for h in &p.listing.header {
                    if !columns.contains(h) {
                        columns.push(h.clone());
                    }
                }
            }
            return Err(OpError::InvalidArgument(format!(
                "count_by: no column {k:?} to count by; use one of {}",
                columns.join(", ")
            )));
        }
    }
    let noun = parts
        .first()
        .map(|p| p.listing.noun.clone())
        .unwrap_or_else(|| "objects".into());
    let (groups, last) = keys.split_at(keys.len() - 1);
    let mut counts: BTreeMap<Vec<String>, BTreeMap<String, u64>> = BTreeMap::new();
    let mut spread: BTreeSet<String> = BTreeSet::new();
    for p in parts {
        let value = |key: &str, row: &crate::ops::list::ListedRow| -> String {
            match key {
                "CLUSTER" => p.cluster.clone(),
                "NAMESPACE" => row.namespace.clone(),
                k => {
                    let cell = p
                        .listing
                        .header
                        .iter()
                        .position(|h| h == k)
                        .and_then(|i| row.cells.get(i))
                        .cloned()
                        .unwrap_or_else(|| "<none>".into());
                    if k == "READY" { readiness(&cell) } else { cell }
                }
            }
        };
        for row in &p.listing.rows {
            let group: Vec<String> = groups.iter().map(|k| value(k, row)).collect();
            let column = value(&last[0], row);
            spread.insert(column.clone());
            *counts.entry(group).or_default().entry(column).or_default() += 1;
        }
    }
    let spread: Vec<String> = spread.into_iter().collect();
    let mut header: Vec<String> = groups.to_vec();
    if groups.is_empty() {
        header.push(last[0].clone());
        header.push("COUNT".into());
    } else {
        header.extend(spread.iter().cloned());
        header.push("TOTAL".into());
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    if groups.is_empty() {
        let all = counts.remove(&Vec::new()).unwrap_or_default();
        let total: u64 = all.values().sum();
        rows.push(vec!["(all)".into(), total.to_string()]);
        let mut values: Vec<(String, u64)> = all.into_iter().collect();
        values.sort_by(|a, b| natural(&a.0, &b.0));
        rows.extend(values.into_iter().map(|(v, n)| vec![v, n.to_string()]));
    } else {
        let mut all_row = vec![String::new(); groups.len()];
        all_row[0] = "(all)".into();
        let mut totals = vec![0u64; spread.len()];
        for by in counts.values() {
            for (i, s) in spread.iter().enumerate() {
                totals[i] += by.get(s).copied().unwrap_or(0);
            }
        }
        all_row.extend(totals.iter().map(u64::to_string));
        all_row.push(totals.iter().sum::<u64>().to_string());
        rows.push(all_row);
        for (group, by) in counts {
            let mut row = group;
            row.extend(
                spread
                    .iter()
                    .map(|s| by.get(s).copied().unwrap_or(0).to_string()),
            );
            row.push(by.values().sum::<u64>().to_string());
            rows.push(row);
        }
    }
    Ok(Sheet {
        noun: format!("count rows of {noun}"),
        header,
        entries: Entries::Rows(rows.into_iter().map(Row::new).collect()),
        output: Output::Table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::list::{ListedRow, Listing};

    fn part(cluster: &str, statuses: &[&str]) -> Part {
        Part {
            cluster: cluster.into(),
            listing: Listing {
                noun: "pods".into(),
                namespaced: true,
                header: vec!["NAME".into(), "READY".into(), "STATUS".into()],
                rows: statuses
                    .iter()
                    .enumerate()
                    .map(|(i, s)| ListedRow {
                        namespace: "shop".into(),
                        name: format!("p{i}"),
                        cells: vec![
                            format!("p{i}"),
                            if i % 2 == 0 { "1/1" } else { "0/1" }.into(),
                            s.to_string(),
                        ],
                        object: None,
                    })
                    .collect(),
                ..Listing::default()
            },
        }
    }

    fn rows(s: &Sheet) -> Vec<Vec<String>> {
        match &s.entries {
            Entries::Rows(r) => r.iter().map(Row::to_vec).collect(),
            Entries::Docs(_) => panic!("rows expected"),
        }
    }

    #[test]
    fn counts_by_cluster_and_status_with_a_fleet_row_first() {
        let parts = [part("b", &["Running", "Pending"]), part("a", &["Running"])];
        let s = sheet(&parts, &[], true).unwrap();
        assert_eq!(s.header, ["CLUSTER", "Pending", "Running", "TOTAL"]);
        assert_eq!(
            rows(&s),
            [
                vec!["(all)", "1", "2", "3"],
                vec!["a", "0", "1", "1"],
                vec!["b", "1", "1", "2"],
            ]
        );
        let s = sheet(&parts, &["READY".into()], true).unwrap();
        assert_eq!(
            rows(&s),
            [
                vec!["(all)", "3"],
                vec!["not ready", "1"],
                vec!["ready", "2"]
            ]
        );
        let e = sheet(&parts, &["NOPE".into()], true).unwrap_err();
        assert!(e.to_string().contains("STATUS"), "{e}");
    }
}
