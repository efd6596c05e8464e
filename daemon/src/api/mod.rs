//! The gRPC services: thin adapters from `nskd.v1` messages to [`App`].

pub mod caller;
mod changes;
mod clusters;
mod contract;
mod convert;
pub use convert::unix_ms as convert_unix_ms;
mod daemon;
mod identity;
pub use identity::IdentityService;
mod fleet;
mod helm;
mod kube;
pub mod layer;
mod source;
mod workload;

use std::sync::Arc;

use nskd_proto::v1::{
    changes_server::ChangesServer, clusters_server::ClustersServer,
    contract_server::ContractServer, daemon_server::DaemonServer, kube_server::KubeServer,
};
use tonic::{Request, Response, Status, transport::server::UdsConnectInfo};

use crate::app::App;

pub use crate::audit::Caller;

impl Caller {
    /// Reads the caller of `req`.
    pub fn of<T>(req: &Request<T>) -> Self {
        let text = |key: &str| {
            req.metadata()
                .get(key)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        Self {
            session: text(nskd_proto::SESSION_HEADER),
            client: text(nskd_proto::CLIENT_HEADER),
            uid: peer_uid(req),
            tool: text(nskd_proto::TOOL_HEADER),
        }
    }
}

fn peer_uid<T>(req: &Request<T>) -> Option<u32> {
    req.extensions()
        .get::<UdsConnectInfo>()
        .and_then(|i| i.peer_cred)
        .map(|c| c.uid())
}

/// Marks a response as failed (or partly failed) for the agent, for the
/// tool-call metrics.
pub fn mark_outcome<T>(resp: &mut Response<T>, outcome: &'static str) {
    resp.metadata_mut().insert(
        nskd_proto::OUTCOME_HEADER,
        tonic::metadata::MetadataValue::from_static(outcome),
    );
}

/// Refuses every request whose peer is not the daemon's own uid, with a
/// message that says why (the kernel's 0700 directory is the first wall;
/// this is the second).
pub fn peer_check(
    own_uid: u32,
    environment: String,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| match peer_uid(&req) {
        Some(uid) if uid == own_uid => Ok(req),
        other => {
            let who = other
                .map(|u| format!("uid {u}"))
                .unwrap_or_else(|| "an unidentified peer".into());
            tracing::warn!(peer = %who, daemon_uid = own_uid, "refused request from another user");
            Err(Status::permission_denied(format!(
                "nskd for environment '{environment}' serves only uid {own_uid}; {who} is not allowed. Run the client as uid {own_uid}, or start a daemon of your own (`nskd --env {environment}`)"
            )))
        }
    }
}

/// The Helm service over `app`.
pub fn helm_service(app: Arc<App>) -> nskd_proto::v1::helm_server::HelmServer<helm::HelmService> {
    nskd_proto::v1::helm_server::HelmServer::new(helm::HelmService::new(app))
        .max_encoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
        .max_decoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
}

/// The Fleet service (the clusters_status table for agents) over `app`.
pub fn fleet_service(
    app: Arc<App>,
) -> nskd_proto::v1::fleet_server::FleetServer<fleet::FleetService> {
    nskd_proto::v1::fleet_server::FleetServer::new(fleet::FleetService::new(app))
        .max_encoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
        .max_decoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
}

/// Refuses calls made for an MCP tool the configuration leaves out
/// (`[server] toolsets`, `enabled_tools`, `disabled_tools`): a shim only
/// lists the tools it may call, and this holds even for one that does not.
pub fn tool_check(
    selection: nskd_proto::tools::ToolSelection,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let tool = req
            .metadata()
            .get(nskd_proto::TOOL_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if tool.is_empty() || selection.allows(tool) {
            return Ok(req);
        }
        Err(Status::permission_denied(format!(
            "tool {tool} is not offered by this nskd: its configuration leaves it out ([server] toolsets = {:?}, disabled_tools = {:?}); add it to [server] enabled_tools or its toolset to [server] toolsets and restart nskd (`nskctl doctor` shows what a session sees)",
            selection.toolsets, selection.disabled
        )))
    }
}

/// The services over one shared [`App`].
pub fn services(
    app: Arc<App>,
) -> (
    DaemonServer<daemon::DaemonService>,
    ClustersServer<clusters::ClustersService>,
    KubeServer<kube::KubeService>,
    ChangesServer<kube::KubeService>,
) {
    (
        DaemonServer::new(daemon::DaemonService::new(app.clone())),
        // Limits set deliberately (proto/src/client.rs): Kube answers are
        // composed within the output budget before they are sent.
        ClustersServer::new(clusters::ClustersService::new(app.clone()))
            .max_encoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
            .max_decoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES),
        KubeServer::new(kube::KubeService::new(app.clone()))
            .max_encoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
            .max_decoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES),
        ChangesServer::new(kube::KubeService::new(app))
            .max_encoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
            .max_decoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES),
    )
}

/// The Workload service (rollouts, node maintenance, pod cleanup) over `app`.
pub fn workload_service(
    app: Arc<App>,
) -> nskd_proto::v1::workload_server::WorkloadServer<workload::WorkloadService> {
    nskd_proto::v1::workload_server::WorkloadServer::new(workload::WorkloadService::new(app))
        .max_encoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
        .max_decoding_message_size(nskd_proto::client::MAX_MESSAGE_BYTES)
}

/// The Contract service (user prompts) over `app`.
pub fn contract_service(app: Arc<App>) -> ContractServer<contract::ContractService> {
    ContractServer::new(contract::ContractService::new(app))
}
