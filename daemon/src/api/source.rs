//! The source side of `nskd.v1.Clusters`: refresh view, source status,
//! fetching one kubeconfig. Credentials never leave: summaries only.

use std::{sync::Arc, time::SystemTime};

use nskd_proto::v1 as pb;

use super::convert::{refresh_record, unix_ms};
use crate::{
    app::App,
    error::{ErrorKind, OpError},
    health::Health,
    source::RemoteCluster,
    store,
};

/// Marks `info` stale when the cluster's last refresh failed.
pub fn add_refresh_facts(app: &App, info: &mut pb::ClusterInfo) {
    if let Some(f) = app.refresher.cluster(&info.name) {
        info.last_refreshed_ms = unix_ms(f.last_refreshed);
        if let Some((reason, since)) = &f.failure {
            info.stale = true;
            info.stale_reason = crate::redact::redact(reason);
            info.stale_since_ms = unix_ms(Some(*since));
        }
    }
}

/// Each cluster's refresh state: Active / Inactive / Removed.
pub fn refresh_states(app: &App) -> Vec<pb::ClusterRefreshState> {
    let facts = app.refresher.clusters();
    let mut out: Vec<pb::ClusterRefreshState> = app
        .registry
        .names()
        .into_iter()
        .map(|name| {
            let h = app.tracker.get(&name);
            let f = facts.get(&name).cloned().unwrap_or_default();
            let (state, note, since) = if let Some((reason, since)) = &f.failure {
                (
                    "Inactive",
                    format!(
                        "refresh failing, cached kubeconfig in use: {}",
                        crate::kubeconfig::one_line(reason)
                    ),
                    Some(*since),
                )
            } else if h.state == Health::NotReady {
                (
                    "Inactive",
                    "connection issues".to_string(),
                    h.last_success.or(h.last_checked),
                )
            } else {
                ("Active", String::new(), None)
            };
            pb::ClusterRefreshState {
                name,
                state: state.into(),
                note: crate::redact::redact(&note),
                since_ms: unix_ms(since),
                last_seen_ms: unix_ms(h.last_success),
                last_refreshed_ms: unix_ms(f.last_refreshed),
            }
        })
        .collect();
    if let Some(store) = &app.refresher.store {
        for (name, when) in store.removed() {
            out.push(pb::ClusterRefreshState {
                name,
                state: "Removed".into(),
                note: "not in Rancher anymore".into(),
                since_ms: unix_ms(Some(when)),
                last_seen_ms: 0,
                last_refreshed_ms: 0,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Source configuration, token check, last and next refresh.
pub async fn status(app: &Arc<App>, verify: bool) -> pb::SourceStatusResponse {
    let nsk = &app.config.nsk;
    let r = &app.refresher;
    let auth = if verify { r.verify().await } else { r.auth() };
    let (token_check, token_user, token_expiry_ms, token_error) = match auth {
        None => (String::new(), String::new(), 0, String::new()),
        Some(Ok(a)) => ("ok".into(), a.user, unix_ms(a.expires), String::new()),
        Some(Err(e)) => (
            "failed".into(),
            String::new(),
            0,
            crate::redact::redact(&e.message),
        ),
    };
    let token_set = nsk.rancher_token.is_some() || nsk.rancher_token_file.is_some();
    pb::SourceStatusResponse {
        source: nsk.source.as_str().into(),
        rancher_url: nsk.rancher_url.clone().unwrap_or_default(),
        profile: nsk.profile.clone().unwrap_or_default(),
        config_dir: nsk
            .config_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        kubeconfig_dir: app
            .config
            .kubeconfig_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        nsk_path: nsk.nsk_path.clone(),
        token_set,
        token_check,
        token_user,
        token_expiry_ms,
        token_error,
        auto_refresh: nsk.auto_refresh,
        refresh_interval: humantime::format_duration(nsk.refresh_interval).to_string(),
        next_refresh_ms: unix_ms(r.next_due()),
        last_refresh: r
            .history()
            .into_iter()
            .next()
            .map(|h| refresh_record(&h, false)),
        clusters: app.registry.names().len() as u32,
    }
}

/// With `save`, fetches one kubeconfig (Rancher mints a new credential for
/// it), validates and stores it. Without, summarizes the stored one and
/// fetches nothing. The answer is a summary: server, user, auth kind,
/// expiry, path.
pub async fn fetch(
    app: &Arc<App>,
    name: &str,
    save: bool,
) -> Result<pb::FetchKubeconfigResponse, OpError> {
    let r = &app.refresher;
    let (Some(source), Some(store_)) = (&r.source, &r.store) else {
        return Err(OpError::InvalidArgument(format!(
            "this daemon uses the directory source: it reads kubeconfigs from {} and fetches nothing from Rancher; configure [nsk] rancher_url / profile (nsk) or source = \"rancher\"",
            app.config
                .kubeconfig_dir
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "its kubeconfig files".into())
        )));
    };
    store::validate_name(name).map_err(|e| OpError::InvalidArgument(e.message))?;
    if !save {
        return stored(app, source, store_, name);
    }
    let source_err = |e: crate::source::SourceError| OpError::Kinded {
        kind: e.kind,
        message: format!("fetching the kubeconfig of {name} failed: {}", e.message),
    };
    // The Rancher source needs the cluster id: find it in the list.
    let remote = match source {
        crate::source::Source::Nsk(_) => RemoteCluster {
            id: String::new(),
            name: name.to_string(),
            state: String::new(),
            version: String::new(),
        },
        crate::source::Source::Rancher(_) => {
            let listed = source.list().await.map_err(source_err)?;
            let names: Vec<String> = listed.iter().map(|c| c.name.clone()).collect();
            listed
                .into_iter()
                .find(|c| c.name == name)
                .ok_or_else(|| OpError::Kinded {
                    kind: ErrorKind::NotFound,
                    message: format!(
                        "Rancher has no cluster named {name:?}; it has: {}",
                        names.join(", ")
                    ),
                })?
        }
    };
    let text = source.kubeconfig(&remote).await.map_err(source_err)?;
    let suffix = source.expected_server_suffix(&remote);
    store::validate_kubeconfig(name, &text, suffix.as_deref(), &source.trust()).map_err(|e| {
        let kind = match e {
            store::Rejected::Untrusted(_) => ErrorKind::Policy,
            store::Rejected::Invalid(_) => ErrorKind::Invalid,
        };
        OpError::Kinded {
            kind,
            message: e.to_string(),
        }
    })?;
    let config = kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
    let summary = summarize(&config);
    let outcome =
        crate::blocking::run(|| store_.write(name, &text)).map_err(|e| OpError::Kinded {
            kind: e.kind,
            message: e.message,
        })?;
    app.scanner.retain_refused(|n| n != name);
    crate::blocking::run(|| app.rescan(true));
    let word = match outcome {
        store::WriteOutcome::Added => "added",
        store::WriteOutcome::Updated => "updated",
        store::WriteOutcome::Unchanged => "unchanged",
    };
    Ok(response(
        name,
        summary,
        store_.path(name).display().to_string(),
        word,
        remote.id,
    ))
}

/// The summary of the stored kubeconfig of `name`: nothing is fetched, so
/// no Rancher credential is minted.
fn stored(
    app: &App,
    source: &crate::source::Source,
    store_: &store::Store,
    name: &str,
) -> Result<pb::FetchKubeconfigResponse, OpError> {
    let path = store_.path(name);
    if !path.exists() {
        return Err(OpError::Kinded {
            kind: ErrorKind::NotFound,
            message: format!(
                "no kubeconfig of {name} is stored (not found: {}); without save nothing is fetched, because every fetch makes Rancher mint a new credential: call again with save: true (nskctl: --save) to fetch and store it",
                path.display()
            ),
        });
    }
    let file = crate::kubeconfig::read(&path)
        .and_then(|f| {
            crate::kubeconfig::trust::check_file(&f, &source.trust())?;
            Ok(f)
        })
        .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
    let id = app
        .refresher
        .cluster(name)
        .map(|f| f.id)
        .unwrap_or_default();
    Ok(response(
        name,
        summarize(&file.config),
        path.display().to_string(),
        STORED,
        id,
    ))
}

/// `outcome` of an answer about the stored kubeconfig (nothing fetched).
pub const STORED: &str = "stored";

fn response(
    name: &str,
    summary: (String, String, String, &'static str, Option<SystemTime>),
    saved_path: String,
    outcome: &str,
    rancher_id: String,
) -> pb::FetchKubeconfigResponse {
    pb::FetchKubeconfigResponse {
        cluster: name.to_string(),
        server: summary.0,
        context: summary.1,
        user: summary.2,
        auth: summary.3.into(),
        token_expiry_ms: unix_ms(summary.4),
        saved_path,
        outcome: outcome.to_string(),
        rancher_id,
    }
}

/// (server, context, user, auth kind, token expiry) of the current context.
fn summarize(
    config: &kube::config::Kubeconfig,
) -> (String, String, String, &'static str, Option<SystemTime>) {
    let ctx_name = config
        .current_context
        .clone()
        .or_else(|| config.contexts.first().map(|c| c.name.clone()))
        .unwrap_or_default();
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.clone());
    let cluster = ctx.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let user = ctx
        .as_ref()
        .and_then(|c| c.user.clone())
        .unwrap_or_default();
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    let auth_info = config
        .auth_infos
        .iter()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.clone());
    let (auth, expiry) = match &auth_info {
        Some(a) if a.token.is_some() => ("token", crate::kubeconfig::token_expiry(a)),
        Some(a) if a.client_certificate_data.is_some() || a.client_certificate.is_some() => {
            ("client-certificate", None)
        }
        Some(a) if a.exec.is_some() => ("exec", None),
        _ => ("none", None),
    };
    (server, ctx_name, user, auth, expiry)
}
