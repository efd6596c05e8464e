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
    /// The page a previous answer's footer pointed at.
    pub continue_token: String,
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
        continue_token: o.continue_token,
    };
    let resp = client
        .helm()
        .list(client.request(request))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    let result = resp.result.unwrap_or_default();
    let all_failed = result.failed;
    if json {
        let clusters: Vec<Value> = result
            .results
            .iter()
            .map(|r| match r.ok {
                true => json!({"cluster": r.cluster, "ok": true}),
                false => json!({"cluster": r.cluster, "ok": false, "error": r.text}),
            })
            .collect();
        let mut out = json!({"clusters": clusters, "skipped": result.skipped});
        match serde_json::from_str::<Value>(&result.text) {
            Ok(releases) if !o.summary => out["releases"] = releases,
            _ => out["text"] = Value::String(result.text.clone()),
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", result.text);
    }
    Ok(if all_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
