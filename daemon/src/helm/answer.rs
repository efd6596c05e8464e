//! What the helm tools answer on one cluster, shaped like `helm`'s own
//! output, masked, and within the byte cap.

use serde_json::{Value, json};

use super::{
    cache,
    mask::{mask_manifest, mask_values},
    read::{self, Reader},
    release::Release,
};
use crate::{
    error::OpError,
    metaindex::MetaIndexes,
    ops::{
        OpOptions, Output, Rendered,
        shape::{align, omitted_note, rows_that_fit},
    },
    pool::ClusterClient,
    request::{
        InvalidInput,
        names::{ChartName, Namespace, ReleaseName},
    },
};

/// Every status Helm gives a release.
pub const STATUSES: &[&str] = &[
    "unknown",
    "deployed",
    "uninstalled",
    "superseded",
    "failed",
    "uninstalling",
    "pending-install",
    "pending-upgrade",
    "pending-rollback",
];

/// Which statuses `helm_list` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusFilter(Vec<String>);

impl StatusFilter {
    /// From a comma-separated list of statuses, or `all`; empty is Helm's
    /// default (deployed and failed).
    pub fn parse(value: &str) -> Result<Self, InvalidInput> {
        if value.is_empty() {
            return Ok(Self(vec!["deployed".into(), "failed".into()]));
        }
        if value == "all" {
            return Ok(Self(STATUSES.iter().map(|s| s.to_string()).collect()));
        }
        let mut wanted = Vec::new();
        for s in value.split(',').map(str::trim) {
            if !STATUSES.contains(&s) {
                return Err(InvalidInput::new(
                    "status",
                    value,
                    format!(
                        "must be \"all\" or a comma-separated list of Helm statuses: {}",
                        STATUSES.join(", ")
                    ),
                ));
            }
            wanted.push(s.to_string());
        }
        Ok(Self(wanted))
    }

    fn admits(&self, status: &str) -> bool {
        self.0.iter().any(|s| s == status)
    }
}

/// What `helm_list` asks.
#[derive(Debug, Clone)]
pub struct ListArgs {
    /// One namespace, or all.
    pub namespace: Option<Namespace>,
    /// Only this release.
    pub name: Option<ReleaseName>,
    /// Only releases of this chart.
    pub chart: Option<ChartName>,
    /// Which statuses.
    pub status: StatusFilter,
    /// Table or JSON (YAML renders as JSON's fields in YAML).
    pub output: Output,
}

/// One row of `helm list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    /// Release.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Latest revision.
    pub revision: i64,
    /// When it was last deployed (RFC 3339).
    pub updated: String,
    /// Status of the latest revision.
    pub status: String,
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub chart_version: String,
    /// App version.
    pub app_version: String,
    /// Why the record could not be read (the row then comes from its
    /// labels alone).
    pub problem: Option<String>,
}

impl ListRow {
    fn of(r: &Release) -> Self {
        Self {
            problem: None,
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            revision: r.version,
            updated: r.info.last_deployed.clone(),
            status: r.info.status.clone(),
            chart: r.chart_name().to_string(),
            chart_version: r.chart_version().to_string(),
            app_version: r.app_version().to_string(),
        }
    }

    /// As `helm list -o json` shows it (`chart` is `name-version`).
    pub fn json(&self) -> Value {
        json!({"name": self.name, "namespace": self.namespace,
            "revision": self.revision.to_string(), "updated": self.updated,
            "status": self.status, "chart": format!("{}-{}", self.chart, self.chart_version),
            "app_version": self.app_version, "problem": self.problem})
    }
}

/// One cluster's `helm_list` rows, and whether the records were listed
/// from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Rows by name then namespace (Helm's order).
    pub rows: Vec<ListRow>,
    /// The records came from the in-sync metadata indexes, not a list.
    pub from_cache: bool,
}

/// The latest revision of every release `args` selects, by name then
/// namespace (Helm's order). The records come from the cluster's in-sync
/// metadata indexes when `indexes` is given and they can answer (else
/// they are listed); only record versions not in `decoded` are fetched.
pub async fn list_rows(
    cc: &ClusterClient,
    args: &ListArgs,
    opts: &OpOptions,
    decoded: &cache::RowCache,
    indexes: Option<&MetaIndexes>,
) -> Result<Listed, OpError> {
    let reader = Reader::new(cc, opts);
    let (namespace, name) = (args.namespace.as_ref(), args.name.as_ref());
    let remembered = match indexes {
        Some(indexes) => reader.index_from_memory(indexes, namespace, name).await?,
        None => None,
    };
    let from_cache = remembered.is_some();
    let records = match remembered {
        Some(records) => records,
        None => reader.index(namespace, name).await?,
    };
    // Helm filters to the latest revisions first, then by status.
    let wanted: Vec<_> = read::latest(records)
        .into_iter()
        .filter(|r| args.status.admits(&r.status))
        .collect();
    // A record version decoded before is not fetched again.
    let key = |s: &read::Stored| -> Option<cache::Key> {
        let (uid, rv) = &s.version;
        (!uid.is_empty() && !rv.is_empty()).then(|| (cc.name.clone(), uid.clone(), rv.clone()))
    };
    let mut known: Vec<Option<ListRow>> = wanted
        .iter()
        .map(|s| key(s).and_then(|k| decoded.get(&k)))
        .collect();
    let missing: Vec<read::Stored> = wanted
        .iter()
        .zip(&known)
        .filter(|(_, k)| k.is_none())
        .map(|(s, _)| s.clone())
        .collect();
    let mut fetched = reader.fetch_each(&missing).await.into_iter();
    let mut rows = Vec::new();
    for (record, known) in wanted.iter().zip(known.iter_mut()) {
        let decoded = match known.take() {
            Some(row) => Ok(row),
            None => fetched
                .next()
                .expect("one fetch per missing record")
                .map(|r| {
                    let row = ListRow::of(&r);
                    if let Some(k) = key(record) {
                        decoded.put(k, row.clone());
                    }
                    row
                }),
        };
        match decoded {
            Ok(row) => {
                let chart_ok = args.chart.as_ref().is_none_or(|c| row.chart == c.as_str());
                if chart_ok && args.status.admits(&row.status) {
                    rows.push(row);
                }
            }
            // One broken record must not hide the others: its labels say
            // what they can, and the row says why the rest is missing.
            Err(OpError::Other { message, .. }) => rows.push(ListRow {
                name: record.release.clone(),
                namespace: record.namespace.clone(),
                revision: record.revision,
                updated: String::new(),
                status: record.status.clone(),
                chart: "(unreadable)".into(),
                chart_version: String::new(),
                app_version: String::new(),
                problem: Some(message),
            }),
            Err(e) => return Err(e),
        }
    }
    rows.sort_by(|a, b| (&a.name, &a.namespace).cmp(&(&b.name, &b.namespace)));
    Ok(Listed { rows, from_cache })
}

/// An aligned table within `max_bytes`, with a note on what was left out.
fn table_answer(table: &[Vec<String>], max_bytes: usize, noun: &str) -> Rendered {
    let total = table.len() - 1;
    let fit = rows_that_fit(table, max_bytes.saturating_sub(200)).max(1);
    let mut text = align(&table[..=fit.min(total)]);
    let omitted = total.saturating_sub(fit) as u32;
    if omitted > 0 {
        text.push_str(&omitted_note(
            omitted,
            noun,
            &format!("answer capped at {} KiB", max_bytes / 1024),
        ));
    }
    Rendered {
        text,
        items: total as u32,
        omitted,
        from_cache: false,
        change: None,
    }
}

/// What the single-release tools ask.
#[derive(Debug, Clone)]
pub struct ReleaseArgs {
    /// Namespace (`default` when none was named, as helm does).
    pub namespace: Namespace,
    /// Release.
    pub name: ReleaseName,
    /// One revision (the latest when `None`).
    pub revision: Option<i64>,
    /// helm_get_values: computed values rather than the user's.
    pub all: bool,
    /// Output format.
    pub output: Output,
}

/// The revision `args` names (the latest by default).
async fn release(
    cc: &ClusterClient,
    args: &ReleaseArgs,
    opts: &OpOptions,
) -> Result<Release, OpError> {
    Reader::new(cc, opts)
        .release(&args.namespace, &args.name, args.revision)
        .await
}

/// `helm status`.
pub async fn status(
    cc: &ClusterClient,
    args: &ReleaseArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let r = release(cc, args, opts).await?;
    if args.output != Output::Table {
        let v = json!({"name": r.name, "namespace": r.namespace, "revision": r.version,
            "status": r.info.status, "first_deployed": r.info.first_deployed,
            "last_deployed": r.info.last_deployed, "description": r.info.description,
            "chart": r.chart_name(), "chart_version": r.chart_version(),
            "app_version": r.app_version(), "notes": r.info.notes});
        return Ok(one_value(&v, args.output, opts.max_bytes));
    }
    let mut text = format!(
        "NAME: {}\nLAST DEPLOYED: {}\nNAMESPACE: {}\nSTATUS: {}\nREVISION: {}\nCHART: {}\nAPP VERSION: {}\nDESCRIPTION: {}\n",
        r.name,
        r.info.last_deployed,
        r.namespace,
        r.info.status,
        r.version,
        r.chart_ref(),
        r.app_version(),
        r.info.description
    );
    if !r.info.notes.is_empty() {
        text.push_str("NOTES:\n");
        text.push_str(&r.info.notes);
    }
    Ok(capped(text, opts.max_bytes, "status"))
}

/// `helm history`: every revision, oldest first.
pub async fn history(
    cc: &ClusterClient,
    args: &ReleaseArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let reader = Reader::new(cc, opts);
    let mut records = reader.revisions(&args.namespace, &args.name).await?;
    let skipped = records.len().saturating_sub(read::MAX_HISTORY);
    records.drain(..skipped);
    let releases = reader.fetch_all(&records).await?;
    if args.output != Output::Table {
        let items: Vec<Value> = releases
            .iter()
            .map(|r| {
                json!({"revision": r.version, "updated": r.info.last_deployed,
                    "status": r.info.status, "chart": r.chart_ref(),
                    "app_version": r.app_version(), "description": r.info.description})
            })
            .collect();
        return Ok(crate::ops::shape::render_objects(
            items,
            args.output,
            opts.max_bytes,
            "revisions",
        ));
    }
    let mut table = vec![
        [
            "REVISION",
            "UPDATED",
            "STATUS",
            "CHART",
            "APP VERSION",
            "DESCRIPTION",
        ]
        .map(String::from)
        .to_vec(),
    ];
    // The newest revisions matter most: keep them when capping.
    table.extend(releases.iter().rev().map(|r| {
        vec![
            r.version.to_string(),
            r.info.last_deployed.clone(),
            r.info.status.clone(),
            r.chart_ref(),
            r.app_version().to_string(),
            r.info.description.clone(),
        ]
    }));
    let mut rendered = table_answer(&table, opts.max_bytes, "revisions");
    let mut lines: Vec<&str> = rendered.text.lines().collect();
    let note = lines
        .last()
        .filter(|l| l.starts_with("..."))
        .map(|l| l.to_string());
    if note.is_some() {
        lines.pop();
    }
    let header = lines.remove(0);
    lines.reverse();
    let mut text = std::iter::once(header)
        .chain(lines)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    if let Some(note) = note {
        text.push_str(&note.replace("more revisions", "older revisions"));
        text.push('\n');
    }
    if skipped > 0 {
        text.push_str(&format!(
            "... {skipped} revisions older than the last {} not read.\n",
            read::MAX_HISTORY
        ));
    }
    rendered.text = text;
    Ok(rendered)
}

/// `helm get values` (the user's, or with `all` the computed ones), masked.
pub async fn values(
    cc: &ClusterClient,
    args: &ReleaseArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let r = release(cc, args, opts).await?;
    let (title, mut values) = if args.all {
        ("COMPUTED VALUES:", r.computed_values())
    } else {
        (
            "USER-SUPPLIED VALUES:",
            r.config.clone().unwrap_or(Value::Null),
        )
    };
    mask_values(&mut values, &opts.policy.masking);
    if args.output == Output::Json {
        return Ok(one_value(&values, Output::Json, opts.max_bytes));
    }
    let body = match &values {
        Value::Null => "null\n".to_string(),
        Value::Object(m) if m.is_empty() => "{}\n".to_string(),
        v => yaml_serde::to_string(v).unwrap_or_default(),
    };
    Ok(capped(format!("{title}\n{body}"), opts.max_bytes, "values"))
}

/// `helm get manifest`, with Secret documents masked.
pub async fn manifest(
    cc: &ClusterClient,
    args: &ReleaseArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let r = release(cc, args, opts).await?;
    let text = mask_manifest(&r.manifest, &opts.policy.masking);
    Ok(capped(text, opts.max_bytes, "manifest"))
}

/// `helm get notes`.
pub async fn notes(
    cc: &ClusterClient,
    args: &ReleaseArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let r = release(cc, args, opts).await?;
    let text = if r.info.notes.is_empty() {
        format!("Release {} has no notes.\n", r.name)
    } else {
        format!("NOTES:\n{}", r.info.notes)
    };
    Ok(capped(text, opts.max_bytes, "notes"))
}

fn one_value(v: &Value, output: Output, max_bytes: usize) -> Rendered {
    let text = match output {
        Output::Json => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
        _ => yaml_serde::to_string(v).unwrap_or_default(),
    };
    capped(text, max_bytes, "answer")
}

/// `text`, cut at a line end before `max_bytes` with a note saying so.
fn capped(mut text: String, max_bytes: usize, what: &str) -> Rendered {
    let budget = max_bytes.saturating_sub(200);
    let mut omitted = 0;
    if text.len() > budget {
        let mut cut = budget;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = text[..cut].rfind('\n') {
            cut = nl + 1;
        }
        let left = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!(
            "... the {what} goes on for {left} more bytes (answer capped at {} KiB); ask for one revision, or read it with helm on the cluster.\n",
            max_bytes / 1024
        ));
        omitted = 1;
    }
    Rendered {
        text,
        items: 1,
        omitted,
        from_cache: false,
        change: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, chart_version: &str) -> ListRow {
        ListRow {
            name: name.into(),
            namespace: "default".into(),
            revision: 2,
            updated: "2026-01-01T00:00:00Z".into(),
            status: "deployed".into(),
            chart: "nginx".into(),
            chart_version: chart_version.into(),
            app_version: "1.25".into(),
            problem: None,
        }
    }

    #[test]
    fn status_filter_defaults_to_helms() {
        let f = StatusFilter::parse("").unwrap();
        assert!(f.admits("deployed") && f.admits("failed") && !f.admits("superseded"));
        assert!(StatusFilter::parse("all").unwrap().admits("uninstalled"));
        assert!(
            StatusFilter::parse("pending-install, failed")
                .unwrap()
                .admits("failed")
        );
        let err = StatusFilter::parse("deployed;rm -rf").unwrap_err();
        assert!(err.to_string().contains("Helm statuses"), "{err}");
    }

    #[test]
    fn list_json_has_helms_fields() {
        let v = row("web", "1.2.3").json();
        assert_eq!(v["chart"], "nginx-1.2.3");
        assert_eq!(
            v["revision"], "2",
            "helm list -o json gives the revision as a string"
        );
        for key in ["name", "namespace", "updated", "status", "app_version"] {
            assert!(v[key].is_string(), "{key}: {v}");
        }
    }

    #[test]
    fn long_text_is_cut_at_a_line_with_a_note() {
        let text = "line\n".repeat(10_000);
        let r = capped(text, 1024, "manifest");
        assert!(r.text.len() <= 1024, "{}", r.text.len());
        assert!(r.text.contains("more bytes"), "{}", r.text);
    }
}
