//! nskctl logs: a pod's log, or those of the pods a label selector
//! matches, searched with `--grep`, through the daemon (same answer as the
//! `pods_log` tool).

use std::{process::ExitCode, time::Duration};

use nskd_proto::{client::NskdClient, escape::escape, v1::LogsRequest};
use serde_json::json;

/// What `nskctl logs` was asked.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Pod name (or use --selector).
    pub pod: Option<String>,
    /// Namespace (default: "default").
    #[arg(long, short)]
    pub namespace: Option<String>,
    /// Every pod matching this label selector (at most 50), lines prefixed [pod/container].
    #[arg(long, short = 'l')]
    pub selector: Option<String>,
    /// Container (default: the pod's only one; with --selector, all).
    #[arg(long, short)]
    pub container: Option<String>,
    /// Only lines matching this regular expression; "(?i)" ignores case.
    #[arg(long)]
    pub grep: Option<String>,
    /// Only the last N lines of each container.
    #[arg(long)]
    pub tail: Option<i64>,
    /// Only lines newer than this (e.g. 10m, 1h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
    /// Only lines since this RFC 3339 time (e.g. 2026-01-02T15:04:05Z).
    #[arg(long)]
    pub since_time: Option<String>,
    /// Prefix lines with their timestamps.
    #[arg(long)]
    pub timestamps: bool,
    /// The previous (crashed) container instance.
    #[arg(long, short)]
    pub previous: bool,
    /// Cluster (default: the daemon's default cluster).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Several clusters, comma-separated, or "*" for all healthy ones.
    #[arg(long, value_delimiter = ',')]
    pub clusters: Vec<String>,
}

/// `nskctl logs`: prints the daemon's answer (a section per cluster when
/// there are several); exits 1 when a cluster failed.
pub async fn logs(client: &NskdClient, a: LogsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let request = LogsRequest {
        cluster: a.cluster.unwrap_or_default(),
        namespace: a.namespace.unwrap_or_default(),
        name: a.pod.unwrap_or_default(),
        container: a.container.unwrap_or_default(),
        previous: a.previous,
        tail: a.tail.unwrap_or(0),
        since_seconds: a
            .since
            .map(|d| i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX))
            .unwrap_or(0),
        clusters: a.clusters,
        grep: a.grep.unwrap_or_default(),
        since_time: a.since_time.unwrap_or_default(),
        timestamps: a.timestamps,
        label_selector: a.selector.unwrap_or_default(),
    };
    let result = client
        .kube()
        .logs(client.request(request))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    let failed = result.results.iter().any(|r| !r.ok);
    if json {
        let v = json!({
            "text": result.text,
            "results": result.results.iter().map(|r| json!({
                "cluster": r.cluster, "ok": r.ok, "error": (!r.ok).then_some(&r.text),
                "lines": r.items, "left_out": r.omitted,
            })).collect::<Vec<_>>(),
            "skipped": result.skipped,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        // The daemon's answer: one section per cluster when there are
        // several, failures and skipped clusters in its footer.
        for line in result.text.lines() {
            println!("{}", escape(line));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
