//! `nskd.v1.Daemon`: who is answering.

use std::sync::Arc;

use nskd_proto::v1::{DaemonInfo, GetInfoRequest, daemon_server::Daemon};
use tonic::{Request, Response, Status};

use super::Caller;
use crate::app::App;

/// The Daemon service.
#[derive(Debug)]
pub struct DaemonService {
    app: Arc<App>,
}

impl DaemonService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

/// The tools sessions are not offered: those the safety switches forbid,
/// and those `[server] toolsets` / `enabled_tools` / `disabled_tools`
/// leave out.
pub fn hidden_tools(app: &App) -> Vec<String> {
    let mut hidden =
        nskd_proto::tools::hidden(app.config.read_only, app.config.disable_destructive);
    if helm_unavailable(app).is_some() {
        for tool in nskd_proto::tools::HELM_WRITE_TOOLS {
            if !hidden.iter().any(|h| h == tool) {
                hidden.push(tool.to_string());
            }
        }
    }
    let for_caller = crate::impersonate::current()
        .map(|c| app.access.hidden_tools(&c))
        .unwrap_or_default();
    for tool in app
        .config
        .server
        .tools
        .left_out()
        .into_iter()
        .chain(for_caller)
    {
        if !hidden.contains(&tool) {
            hidden.push(tool);
        }
    }
    hidden
}

/// Why the Helm write tools are hidden: no helm binary at `[helm]
/// helm_path` (the message says how to fix it).
pub fn helm_unavailable(app: &App) -> Option<String> {
    let runner = crate::helm::write::run::HelmRunner::new(&app.config.helm);
    runner.find_binary().is_none().then(|| runner.unavailable())
}

#[tonic::async_trait]
impl Daemon for DaemonService {
    async fn get_info(
        &self,
        request: Request<GetInfoRequest>,
    ) -> Result<Response<DaemonInfo>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        if req.client_api_version != nskd_proto::API_VERSION {
            tracing::warn!(client = %caller.client, client_api = req.client_api_version, daemon_api = nskd_proto::API_VERSION, "client speaks another API version");
        }
        let app = &self.app;
        Ok(Response::new(DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            api_version: nskd_proto::API_VERSION,
            environment: app.config.environment().to_string(),
            uptime_seconds: app.started.elapsed().as_secs(),
            source: app.config.nsk.source.as_str().to_string(),
            cluster_count: app.registry.snapshot().clusters.len() as u32,
            default_cluster: app.default_cluster().unwrap_or_default(),
            pid: std::process::id(),
            socket_path: app.location.path.display().to_string(),
            read_only: app.config.read_only,
            disable_destructive: app.config.disable_destructive,
            audit_log: app.audit.path().display().to_string(),
            hidden_tools: hidden_tools(app),
            replica_role: app
                .replication
                .as_ref()
                .map(|r| r.role_word().to_string())
                .unwrap_or_default(),
            replication: app.replication.as_ref().map(|r| replication(r)),
            helm_unavailable: helm_unavailable(app).unwrap_or_default(),
        }))
    }
}

/// What a replica reports of the Lease and the Secrets.
fn replication(r: &crate::replication::Replication) -> nskd_proto::v1::Replication {
    let sync = r.sync_state();
    nskd_proto::v1::Replication {
        role: r.role_word().to_string(),
        holder: r.role().holder.unwrap_or_default(),
        identity: r.identity.clone(),
        namespace: r.namespace.clone(),
        lease: r.lease.clone(),
        last_sync_ms: crate::api::convert_unix_ms(sync.last_sync),
        synced: r.synced(),
        secrets_accepted: sync.accepted as u32,
        secrets_refused: sync.refused as u32,
        error: sync.error.unwrap_or_default(),
    }
}
