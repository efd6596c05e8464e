//! Projection and order: the merged rows of every cluster as one sheet,
//! with `columns` picked, `fields` evaluated (a JSONPath subset, through
//! the `jsonpath-rust` crate) and rows sorted (`sortBy`, else cluster,
//! namespace, name).

use std::{cmp::Ordering, collections::HashMap, sync::LazyLock};

use jsonpath_rust::{
    parser::{model::JpQuery, parse_json_path},
    query::js_path_process,
};
use regex::Regex;
use serde_json::{Map, Value};

use super::{
    Entries, Part, Row, Sheet,
    shape::{Shape, SortKey},
};
use crate::{error::OpError, ops::Output, request::InvalidInput};

const PATH_RULE: &str = "must be a path like \".status.phase\", \".spec.containers[*].image\" or \".metadata.labels['app.kubernetes.io/name']\": dot-separated names, [*], [N] or ['key'], at most 256 characters";

/// One segment of the subset: `.name`, `[*]`, `[N]` or `['key']`.
static SEGMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:\.([A-Za-z_][A-Za-z0-9_-]{0,252})|\[\*\]|\[([0-9]{1,6})\]|\['([A-Za-z0-9_./-]{1,253})'\])")
        .expect("a valid regex")
});

/// A checked path of the JSONPath subset, compiled once.
#[derive(Debug, Clone)]
pub struct FieldPath {
    /// As the agent wrote it.
    pub text: String,
    /// Column header: its last name, upper case.
    pub header: String,
    /// Whether it can match several values (`[*]`).
    pub many: bool,
    query: JpQuery,
}

impl FieldPath {
    /// Checks `value` (kubectl style, `$` and `{}` optional) against the
    /// subset and compiles it.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let bad = || InvalidInput::new(field, value, PATH_RULE);
        if value.len() > 256 {
            return Err(bad());
        }
        let mut rest = value.trim();
        if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            rest = inner;
        }
        rest = rest.strip_prefix('$').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad());
        }
        let mut normalized = String::from("$");
        let (mut header, mut many) = (String::new(), false);
        while !rest.is_empty() {
            let caps = SEGMENT.captures(rest).ok_or_else(bad)?;
            let whole = caps.get(0).map(|m| m.as_str()).unwrap_or("");
            if let Some(name) = caps.get(1).or(caps.get(3)) {
                normalized.push_str(&format!("['{}']", name.as_str()));
                header = name.as_str().rsplit(['/', '.']).next().unwrap_or("").into();
            } else if let Some(index) = caps.get(2) {
                normalized.push_str(&format!("[{}]", index.as_str()));
            } else {
                normalized.push_str("[*]");
                many = true;
            }
            rest = &rest[whole.len()..];
        }
        let query = parse_json_path(&normalized).map_err(|_| bad())?;
        Ok(Self {
            text: value.to_string(),
            header: header.to_ascii_uppercase(),
            many,
            query,
        })
    }

    /// The values at this path in `object`.
    pub fn values<'a>(&self, object: &'a Value) -> Vec<&'a Value> {
        js_path_process(&self.query, object)
            .map(|refs| refs.into_iter().map(|r| r.val()).collect())
            .unwrap_or_default()
    }

    /// The values as one cell: strings as they are, others as JSON,
    /// joined by ",".
    pub fn cell(&self, object: &Value) -> String {
        let values = self.values(object);
        if values.is_empty() {
            return "<none>".into();
        }
        values
            .iter()
            .map(|v| match v {
                Value::String(s) => s.replace('\n', " "),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The values as one JSON value: an array for `[*]`, else the value.
    fn json(&self, object: &Value) -> Value {
        let values = self.values(object);
        if self.many {
            Value::Array(values.into_iter().cloned().collect())
        } else {
            values.first().map(|v| (*v).clone()).unwrap_or(Value::Null)
        }
    }
}

/// One object of the merged answer.
struct Record<'a> {
    cluster: &'a str,
    namespace: &'a str,
    name: &'a str,
    /// Cells in the order of the merged header.
    cells: Vec<String>,
    object: Option<&'a Value>,
    sort: String,
}

/// Builds the merged sheet of rows (table) or documents (yaml/json).
pub fn sheet(
    parts: &mut [Part],
    multi: bool,
    all_namespaces: bool,
    shape: &Shape,
) -> Result<Sheet, OpError> {
    let noun = parts
        .first()
        .map(|p| p.listing.noun.clone())
        .unwrap_or_else(|| "objects".into());
    let namespaced = parts.iter().any(|p| p.listing.namespaced);
    // The merged header: every cluster's columns, first seen first (kinds
    // can differ in columns between versions).
    let mut columns: Vec<String> = Vec::new();
    if shape.fields.is_empty() {
        for p in parts.iter() {
            for h in &p.listing.header {
                if !columns.contains(h) {
                    columns.push(h.clone());
                }
            }
        }
    } else {
        columns.push("NAME".into());
        for f in &shape.fields {
            let h = if f.header.is_empty() || columns.contains(&f.header) {
                f.text.to_ascii_uppercase()
            } else {
                f.header.clone()
            };
            columns.push(h);
        }
    }
    let mut full: Vec<String> = Vec::new();
    if multi {
        full.push("CLUSTER".into());
    }
    let ns_column = namespaced && all_namespaces;
    if ns_column {
        full.push("NAMESPACE".into());
    }
    let fixed = full.len();
    full.extend(columns.iter().cloned());
    let mut records: Vec<Record<'_>> =
        Vec::with_capacity(parts.iter().map(|p| p.listing.rows.len()).sum());
    // Cells are moved out of the listings, not copied.
    for Part { cluster, listing } in parts.iter_mut() {
        let cluster: &str = cluster;
        let index: Vec<Option<usize>> = columns
            .iter()
            .map(|c| listing.header.iter().position(|h| h == c))
            .collect();
        let in_order = index.iter().enumerate().all(|(n, i)| *i == Some(n))
            && index.len() == listing.header.len();
        for row in listing.rows.iter_mut() {
            let crate::ops::list::ListedRow {
                namespace,
                name,
                cells: own,
                object,
            } = row;
            let mut cells = Vec::with_capacity(full.len());
            if multi {
                cells.push(cluster.to_string());
            }
            if ns_column {
                cells.push(namespace.clone());
            }
            if !shape.fields.is_empty() {
                cells.push(name.clone());
                let object = object.as_ref().unwrap_or(&Value::Null);
                cells.extend(shape.fields.iter().map(|f| f.cell(object)));
            } else if in_order {
                cells.append(own);
            } else {
                cells.extend(index.iter().map(|i| {
                    i.and_then(|i| own.get_mut(i).map(std::mem::take))
                        .unwrap_or_default()
                }));
            }
            records.push(Record {
                cluster,
                namespace,
                name,
                cells,
                object: object.as_ref(),
                sort: String::new(),
            });
        }
    }
    sort(&mut records, &full, shape)?;
    if shape.output != Output::Table {
        let docs = records
            .iter()
            .map(|r| document(r, multi, shape))
            .map(|v| match shape.output {
                Output::Json => serde_json::to_string_pretty(&v).unwrap_or_default(),
                _ => yaml_serde::to_string(&v).unwrap_or_default(),
            })
            .collect();
        return Ok(Sheet {
            noun,
            header: Vec::new(),
            entries: Entries::Docs(docs),
            output: shape.output,
        });
    }
    let picked = pick_columns(&full, fixed, multi, &shape.columns)?;
    Ok(Sheet {
        noun,
        header: picked.iter().map(|&i| full[i].clone()).collect(),
        entries: Entries::Rows(if picked.iter().copied().eq(0..full.len()) {
            records.into_iter().map(|r| Row::new(r.cells)).collect()
        } else {
            records
                .into_iter()
                .map(|r| Row::new(picked.iter().map(|&i| &r.cells[i])))
                .collect()
        }),
        output: Output::Table,
    })
}

/// Indices of the `wanted` columns in `full` (CLUSTER kept first for
/// several clusters); an unknown name lists the known ones.
fn pick_columns(
    full: &[String],
    fixed: usize,
    multi: bool,
    wanted: &[String],
) -> Result<Vec<usize>, OpError> {
    if wanted.is_empty() {
        return Ok((0..full.len()).collect());
    }
    let _ = fixed;
    let mut picked = Vec::new();
    if multi && !wanted.iter().any(|w| w == "CLUSTER") {
        picked.push(0);
    }
    for w in wanted {
        match full.iter().position(|c| c == w) {
            Some(i) if !picked.contains(&i) => picked.push(i),
            Some(_) => {}
            None => {
                return Err(OpError::InvalidArgument(format!(
                    "columns: no column {w:?} in this answer; its columns are {}",
                    full.join(", ")
                )));
            }
        }
    }
    Ok(picked)
}

/// Sorts by `sortBy`, then cluster, namespace and name (stable, so pages
/// of the same data never repeat or skip a row).
fn sort(records: &mut [Record<'_>], full: &[String], shape: &Shape) -> Result<(), OpError> {
    match &shape.sort_by {
        None => {}
        Some(SortKey::Column(c)) if matches!(c.as_str(), "CLUSTER" | "NAMESPACE" | "NAME") => {
            for r in records.iter_mut() {
                r.sort = match c.as_str() {
                    "CLUSTER" => r.cluster,
                    "NAMESPACE" => r.namespace,
                    _ => r.name,
                }
                .to_string();
            }
        }
        Some(SortKey::Column(c)) => {
            let i = full.iter().position(|h| h == c).ok_or_else(|| {
                OpError::InvalidArgument(format!(
                    "sortBy: no column {c:?} in this answer; its columns are {}",
                    full.join(", ")
                ))
            })?;
            for r in records.iter_mut() {
                r.sort = r.cells[i].clone();
            }
        }
        Some(SortKey::Path(p)) => {
            for r in records.iter_mut() {
                r.sort = r.object.map(|o| p.cell(o)).unwrap_or_default();
            }
        }
    }
    records.sort_by(|a, b| {
        natural(&a.sort, &b.sort)
            .then_with(|| a.cluster.cmp(b.cluster))
            .then_with(|| a.namespace.cmp(b.namespace))
            .then_with(|| a.name.cmp(b.name))
    });
    Ok(())
}

/// Compares numbers as numbers, kubectl ages ("5d", "3h") as durations,
/// anything else as text.
pub fn natural(a: &str, b: &str) -> Ordering {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    a.cmp(b)
}

fn number(s: &str) -> Option<f64> {
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    let unit = match s.chars().last()? {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        'y' => 365.0 * 86400.0,
        _ => return None,
    };
    s[..s.len() - 1].parse::<f64>().ok().map(|n| n * unit)
}

/// One item of a yaml/json answer: the object (wrapped with its cluster
/// when several clusters answer), or its fields only.
fn document(r: &Record<'_>, multi: bool, shape: &Shape) -> Value {
    let object = r.object.cloned().unwrap_or(Value::Null);
    if shape.fields.is_empty() {
        if !multi {
            return object;
        }
        let mut m = Map::new();
        m.insert("cluster".into(), Value::String(r.cluster.into()));
        m.insert("object".into(), object);
        return Value::Object(m);
    }
    let mut m = Map::new();
    if multi {
        m.insert("cluster".into(), Value::String(r.cluster.into()));
    }
    if !r.namespace.is_empty() {
        m.insert("namespace".into(), Value::String(r.namespace.into()));
    }
    m.insert("name".into(), Value::String(r.name.into()));
    for f in &shape.fields {
        m.insert(f.text.clone(), f.json(&object));
    }
    Value::Object(m)
}

/// Column positions by name, for the summary.
pub fn position(header: &[String]) -> HashMap<&str, usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_subset_compiles_and_finds_values() {
        let pod = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web", "app": "shop"}},
            "spec": {"containers": [{"image": "a:1"}, {"image": "b:2"}]}, "status": {"phase": "Running"}});
        let p = FieldPath::parse("fields", ".spec.containers[*].image").unwrap();
        assert_eq!(
            (p.cell(&pod).as_str(), p.header.as_str(), p.many),
            ("a:1,b:2", "IMAGE", true)
        );
        let p = FieldPath::parse("fields", "{.status.phase}").unwrap();
        assert_eq!(p.json(&pod), json!("Running"));
        let p = FieldPath::parse("fields", ".metadata.labels['app.kubernetes.io/name']").unwrap();
        assert_eq!((p.cell(&pod).as_str(), p.header.as_str()), ("web", "NAME"));
        let p = FieldPath::parse("fields", "$.spec.containers[1].image").unwrap();
        assert_eq!(p.cell(&pod), "b:2");
        let p = FieldPath::parse("fields", ".status.missing").unwrap();
        assert_eq!(
            (p.cell(&pod).as_str(), p.json(&pod)),
            ("<none>", Value::Null)
        );
    }

    #[test]
    fn natural_order_knows_numbers_and_ages() {
        assert_eq!(natural("9", "10"), Ordering::Less);
        assert_eq!(natural("5m", "2h"), Ordering::Less);
        assert_eq!(natural("a", "b"), Ordering::Less);
    }
}
