//! `nskd.v1.Clusters`: known clusters, their health, refreshes.

use std::{sync::Arc, time::Instant};

use futures::future::join_all;
use nskd_proto::v1::{self as pb, clusters_server::Clusters};
use tonic::{Request, Response, Status};

use super::{Caller, convert};
use crate::{app::App, refresh::RefreshOptions};

/// The Clusters service.
#[derive(Debug)]
pub struct ClustersService {
    app: Arc<App>,
}

impl ClustersService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    fn info(&self, name: &str) -> Result<pb::ClusterInfo, Status> {
        info(&self.app, name)
    }
}

/// What the registry knows of `name`, with its refresh facts.
fn info(app: &Arc<App>, name: &str) -> Result<pb::ClusterInfo, Status> {
    let entry = app.cluster(name)?;
    let mut info = convert::cluster_info(&entry, app.default_cluster().as_deref());
    super::source::add_refresh_facts(app, &mut info);
    Ok(info)
}

/// The health of `names` (sorted by name): from the tracker, or probed now
/// with `refresh` (waiting at most one probe timeout), with the detailed
/// counts when `detail` is set.
pub(super) async fn health(
    app: &Arc<App>,
    names: &[String],
    refresh: bool,
    detail: bool,
) -> Result<Vec<pb::ClusterHealth>, Status> {
    let asked_at = std::time::SystemTime::now();
    let mut probe_deadline = None;
    if refresh {
        // Probe in a task of its own and wait at most one probe timeout
        // (plus a margin): a status answer never waits for more, however
        // many clusters are dead; late probes still update the tracker.
        let prober = app.prober.clone();
        let probing = names.to_vec();
        let task = tokio::spawn(async move { prober.probe_many(probing).await });
        let limit = app.config.health.probe_timeout + std::time::Duration::from_millis(500);
        if tokio::time::timeout(limit, task).await.is_err() {
            tracing::debug!(
                clusters = names.len(),
                "status answered before every probe finished"
            );
            probe_deadline = Some(limit);
        }
    }
    let details = join_all(names.iter().map(|name| async {
        if detail {
            app.prober.detail(name).await.ok()
        } else {
            None
        }
    }))
    .await;
    let mut clusters = Vec::with_capacity(names.len());
    for (name, detail) in names.iter().zip(details) {
        let info = info(app, name)?;
        let mut health = app.tracker.get(name);
        // Probed during this call but not answered yet: say so.
        if let Some(limit) = probe_deadline
            && health.last_checked.is_none_or(|t| t < asked_at)
        {
            health.error = Some(format!(
                "cluster {name}: no answer within {} (probe still running; the cluster may be down or overloaded)",
                humantime::format_duration(limit)
            ));
            health.error_kind = crate::error::ErrorKind::Timeout;
        }
        clusters.push(convert::cluster_health(info, &health, detail));
    }
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(clusters)
}

#[tonic::async_trait]
impl Clusters for ClustersService {
    async fn list_clusters(
        &self,
        _request: Request<pb::ListClustersRequest>,
    ) -> Result<Response<pb::ListClustersResponse>, Status> {
        let snapshot = self.app.registry.snapshot();
        let default = self.app.default_cluster();
        let default = default.as_deref();
        Ok(Response::new(pb::ListClustersResponse {
            clusters: snapshot
                .clusters
                .values()
                .map(|e| {
                    let mut info = convert::cluster_info(e, default);
                    super::source::add_refresh_facts(&self.app, &mut info);
                    info
                })
                .collect(),
            problems: snapshot
                .problems
                .iter()
                .map(|p| crate::redact::redact(p))
                .collect(),
        }))
    }

    async fn get_cluster(
        &self,
        request: Request<pb::GetClusterRequest>,
    ) -> Result<Response<pb::ClusterInfo>, Status> {
        Ok(Response::new(self.info(&request.into_inner().name)?))
    }

    async fn cluster_status(
        &self,
        request: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        let started = Instant::now();
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let names = if req.clusters.is_empty() {
            self.app.registry.names()
        } else {
            for name in &req.clusters {
                self.app.cluster(name)?;
            }
            req.clusters.clone()
        };
        tracing::debug!(session = %caller.session, clusters = names.len(), refresh = req.refresh, detail = req.detail, "cluster status");
        let clusters = health(&self.app, &names, req.refresh, req.detail).await?;
        Ok(Response::new(pb::ClusterStatusResponse {
            clusters,
            elapsed_ms: started.elapsed().as_millis() as u32,
            next_refresh_ms: convert::unix_ms(self.app.refresher.next_due()),
        }))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::RefreshRecord>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let trigger = if req.trigger.is_empty() {
            "manual".to_string()
        } else {
            req.trigger
        };
        tracing::info!(session = %caller.session, client = %caller.client, tool = %caller.tool, force = req.force, pattern = %req.pattern, %trigger, "refresh requested");
        let opts = RefreshOptions {
            force: req.force,
            pattern: Some(req.pattern).filter(|p| !p.is_empty()),
            trigger,
            from_client: true,
        };
        let started = Instant::now();
        let result = crate::refresh::refresh(&self.app, opts).await;
        let outcome = match &result {
            Ok((r, _)) => match (&r.note, &r.error) {
                (Some(note), _) => note.clone(),
                (None, Some(e)) => format!("{}: {e}", r.outcome.word()),
                (None, None) => r.outcome.word().to_lowercase(),
            },
            Err(e) => e.to_string(),
        };
        let mut entry = crate::audit::entry(&caller, "refresh", "*", &outcome, started.elapsed());
        entry.resource = "kubeconfigs".into();
        self.app.audit.record(entry, true);
        let (record, joined) = result?;
        let failed =
            record.outcome == crate::refresh::RefreshOutcome::Failed && record.note.is_none();
        let mut resp = Response::new(convert::refresh_record(&record, joined));
        if failed {
            super::mark_outcome(&mut resp, "error");
        } else if record.outcome == crate::refresh::RefreshOutcome::Partial {
            super::mark_outcome(&mut resp, "partial");
        }
        Ok(resp)
    }

    async fn refresh_history(
        &self,
        request: Request<pb::RefreshHistoryRequest>,
    ) -> Result<Response<pb::RefreshHistoryResponse>, Status> {
        let limit = request.into_inner().limit as usize;
        let mut records: Vec<pb::RefreshRecord> = self
            .app
            .refresher
            .history()
            .iter()
            .map(|r| convert::refresh_record(r, false))
            .collect();
        if limit > 0 {
            records.truncate(limit);
        }
        let nsk = &self.app.config.nsk;
        Ok(Response::new(pb::RefreshHistoryResponse {
            records,
            next_refresh_ms: convert::unix_ms(self.app.refresher.next_due()),
            source: nsk.source.as_str().to_string(),
            auto_refresh: nsk.auto_refresh,
            refresh_interval: humantime::format_duration(nsk.refresh_interval).to_string(),
            profile: nsk.profile.clone().unwrap_or_default(),
            rancher_url: nsk.rancher_url.clone().unwrap_or_default(),
            config_dir: nsk
                .config_dir
                .as_ref()
                .or(self.app.config.kubeconfig_dir.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            clusters: super::source::refresh_states(&self.app),
        }))
    }

    async fn source_status(
        &self,
        request: Request<pb::SourceStatusRequest>,
    ) -> Result<Response<pb::SourceStatusResponse>, Status> {
        let verify = request.into_inner().verify;
        Ok(Response::new(
            super::source::status(&self.app, verify).await,
        ))
    }

    async fn fetch_kubeconfig(
        &self,
        request: Request<pb::FetchKubeconfigRequest>,
    ) -> Result<Response<pb::FetchKubeconfigResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        tracing::info!(session = %caller.session, client = %caller.client, tool = %caller.tool, cluster = %req.cluster_name, save = req.save, "fetch kubeconfig");
        let started = Instant::now();
        let result = super::source::fetch(&self.app, &req.cluster_name, req.save).await;
        let outcome = match &result {
            Ok(f) => format!("ok ({})", f.outcome),
            Err(e) => e.to_string(),
        };
        let verb = if req.save {
            "save-kubeconfig"
        } else {
            "get-kubeconfig"
        };
        let mut entry = crate::audit::entry(
            &caller,
            verb,
            &req.cluster_name,
            &outcome,
            started.elapsed(),
        );
        entry.resource = "kubeconfig".into();
        entry.name = req.cluster_name.clone();
        // Fetching credentials is always audited, saved or not.
        self.app.audit.record(entry, true);
        Ok(Response::new(result?))
    }
}
