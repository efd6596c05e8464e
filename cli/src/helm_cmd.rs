//! `nskctl helm list`: Helm releases of one cluster or the fleet, read by
//! the daemon from Helm's own storage.

use std::process::ExitCode;

use nskd_proto::{
    client::NskdClient,
    v1::{HelmListRequest, OutputFormat, Target},
};
use serde_json::{Value, json};

/// What `nskctl helm list` asks.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// One cluster ("" = the daemon's default).
    pub cluster: String,
    /// Several clusters, or "*".
    pub clusters: Vec<String>,
    /// One namespace ("" = all).
    pub namespace: String,
    /// Only this chart.
    pub chart: String,
    /// Status filter ("" = deployed,failed).
    pub status: String,
    /// Count by chart x version x status.
    pub summary: bool,
}

/// Runs it; exit 1 when every cluster failed.
pub async fn list(client: &NskdClient, o: ListOptions, json: bool) -> anyhow::Result<ExitCode> {
    let request = HelmListRequest {
        target: Some(Target {
            cluster: o.cluster,
            clusters: o.clusters,
            live: false,
        }),
        namespace: o.namespace,
        name: String::new(),
        chart: o.chart,
        status: o.status,
        output: if json {
            OutputFormat::Json as i32
        } else {
            OutputFormat::Table as i32
        },
        summary: o.summary,
    };
    let resp = client
        .helm()
        .list(client.request(request))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    let result = resp.result.unwrap_or_default();
    let all_failed = !result.results.is_empty() && result.results.iter().all(|r| !r.ok);
    if json {
        let clusters: Vec<Value> = result
            .results
            .iter()
            .map(|r| {
                if !r.ok {
                    return json!({"cluster": r.cluster, "error": r.text});
                }
                let releases: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
                json!({"cluster": r.cluster, "releases": releases, "count": r.items, "omitted": r.omitted})
            })
            .collect();
        let mut out = json!({"clusters": clusters, "skipped": result.skipped});
        if o.summary {
            out["summary"] = Value::String(resp.summary);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = String::new();
        if o.summary {
            text.push_str(&resp.summary);
        }
        let sections = result.results.len() > 1 || !result.skipped.is_empty();
        for r in &result.results {
            if o.summary && r.ok {
                continue;
            }
            if sections || !r.ok {
                let verdict = if r.ok { "" } else { " (error)" };
                text.push_str(&format!("=== cluster {}{verdict} ===\n", r.cluster));
            }
            text.push_str(&r.text);
            if !r.text.ends_with('\n') {
                text.push('\n');
            }
        }
        for s in &result.skipped {
            text.push_str(&format!("skipped {s}\n"));
        }
        print!("{text}");
    }
    Ok(if all_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
