//! nskctl refresh / history / get / source: the kubeconfig source.

use std::{process::ExitCode, time::Duration};

use nskd_proto::{
    client::NskdClient,
    error_kind, refresh_view,
    v1::{
        FetchKubeconfigRequest, RefreshHistoryRequest, RefreshRecord, RefreshRequest,
        SourceStatusRequest,
    },
};
use serde_json::{Value, json};

fn record_json(r: &RefreshRecord) -> Value {
    json!({
        "outcome": refresh_view::outcome_word(r.outcome), "started_ms": r.started_ms, "duration_ms": r.duration_ms,
        "trigger": r.trigger, "listed": r.listed, "added": r.added, "updated": r.updated, "removed": r.removed,
        "failed": r.failed.iter().map(|f| json!({"cluster": f.cluster, "reason": f.reason, "kind": kind_label(f.kind)})).collect::<Vec<_>>(),
        "error": r.error, "error_kind": kind_label(r.error_kind), "joined": r.joined, "note": r.note,
    })
}

/// The short name of a proto `ErrorKind` field (`""` when unset).
fn kind_label(kind: i32) -> &'static str {
    match error_kind::from_i32(kind) {
        error_kind::ErrorKind::Unspecified => "",
        k => error_kind::label(k),
    }
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `nskctl refresh`: shows a spinner while it waits (on a terminal).
pub async fn refresh(
    client: &NskdClient,
    force: bool,
    pattern: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!(
        "refreshing kubeconfigs of environment {}",
        client.info().environment
    ));
    spinner.enable_steady_tick(Duration::from_millis(100));
    let request = RefreshRequest {
        force,
        pattern: pattern.unwrap_or_default(),
        trigger: "nskctl".into(),
    };
    let result = client.clusters().refresh(client.request(request)).await;
    spinner.finish_and_clear();
    let record = result
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    if json {
        print_json(&record_json(&record))?;
    } else {
        print!("{}", refresh_view::record_view(&record));
    }
    let failed = refresh_view::outcome_word(record.outcome) == "Failed" && record.note.is_empty();
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `nskctl history`.
pub async fn history(client: &NskdClient, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let h = client
        .clusters()
        .refresh_history(client.request(RefreshHistoryRequest { limit }))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    if json {
        print_json(&json!({
            "source": h.source, "profile": h.profile, "rancher_url": h.rancher_url, "config_dir": h.config_dir,
            "auto_refresh": h.auto_refresh, "refresh_interval": h.refresh_interval, "next_refresh_ms": h.next_refresh_ms,
            "records": h.records.iter().map(record_json).collect::<Vec<_>>(),
            "clusters": h.clusters.iter().map(|c| json!({
                "name": c.name, "state": c.state, "note": c.note, "since_ms": c.since_ms,
                "last_seen_ms": c.last_seen_ms, "last_refreshed_ms": c.last_refreshed_ms,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        print!("{}", refresh_view::integration_view(&h));
    }
    Ok(ExitCode::SUCCESS)
}

/// `nskctl get CLUSTER [--save]`.
pub async fn get(
    client: &NskdClient,
    cluster: String,
    save: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let f = client
        .clusters()
        .fetch_kubeconfig(client.request(FetchKubeconfigRequest {
            cluster_name: cluster,
            save,
        }))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    if json {
        print_json(&json!({
            "cluster": f.cluster, "rancher_id": f.rancher_id, "server": f.server, "context": f.context, "user": f.user,
            "auth": f.auth, "token_expiry_ms": f.token_expiry_ms, "saved_path": f.saved_path, "outcome": f.outcome,
        }))?;
    } else {
        print!("{}", refresh_view::fetch_view(&f));
    }
    Ok(ExitCode::SUCCESS)
}

/// `nskctl source`.
pub async fn source(client: &NskdClient, json: bool) -> anyhow::Result<ExitCode> {
    let st = client
        .clusters()
        .source_status(client.request(SourceStatusRequest { verify: true }))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner();
    if json {
        print_json(&json!({
            "source": st.source, "rancher_url": st.rancher_url, "profile": st.profile, "config_dir": st.config_dir,
            "kubeconfig_dir": st.kubeconfig_dir, "nsk_path": st.nsk_path, "token_set": st.token_set,
            "token_check": st.token_check, "token_user": st.token_user, "token_expiry_ms": st.token_expiry_ms,
            "token_error": st.token_error, "auto_refresh": st.auto_refresh, "refresh_interval": st.refresh_interval,
            "next_refresh_ms": st.next_refresh_ms, "clusters": st.clusters,
            "last_refresh": st.last_refresh.as_ref().map(record_json),
        }))?;
    } else {
        print!("{}", refresh_view::source_view(&st));
    }
    Ok(if st.token_check == "failed" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
