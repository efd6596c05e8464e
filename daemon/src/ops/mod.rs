//! Kubernetes operations behind the tools: kind resolution through API
//! discovery, calls with deadlines and byte caps, policy on the request,
//! and output shaped for agents.

pub mod call;
pub mod change;
pub mod cleanup;
pub mod describe;
pub mod drain;
pub mod exec;
pub mod get;
pub mod list;
pub mod logs;
pub mod logscan;
pub mod mutate;
pub mod nodeproxy;
pub mod patch;
pub mod rollout;
pub mod shape;
pub mod table;

use std::{sync::Arc, time::Duration};

pub use crate::kinds::ResolvedKind;

use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
    request::names::{ApiVersion, KindName},
    safety::{self, Action, ApiRequest},
};

/// Output format of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Output {
    /// A kubectl-style table.
    #[default]
    Table,
    /// YAML documents.
    Yaml,
    /// A JSON array.
    Json,
}

/// Rendered answer of one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Items found.
    pub items: u32,
    /// Items left out (byte cap or limit).
    pub omitted: u32,
    /// Answered from a watch cache rather than the API server.
    pub from_cache: bool,
    /// What the audit log records of a change (plan, diff digest,
    /// confirmation); `None` for reads.
    pub change: Option<change::ChangeFacts>,
}

/// Limits every operation respects.
#[derive(Debug, Clone)]
pub struct OpOptions {
    /// Deadline of the whole operation.
    pub timeout: Duration,
    /// Byte cap of the answer.
    pub max_bytes: usize,
    /// Most bytes read from one API server answer.
    pub max_read_bytes: usize,
    /// read_only, disable_destructive, denied_resources, masking.
    pub policy: Arc<crate::safety::Policy>,
    /// Watch caches that may answer reads.
    pub caches: Arc<crate::cache::WatchCaches>,
    /// Whether a cache may answer for this cluster now (not while its last
    /// probe or call failed: a watch can look open on a server that hangs).
    pub use_cache: bool,
    /// Plans and the rules on changes (require_plan, confirm).
    pub changes: Arc<change::Engine>,
}

impl OpOptions {
    /// Checks `action` on `kind` (with `subresource`) against the policy,
    /// before anything is sent.
    pub fn allow(
        &self,
        cc: &ClusterClient,
        kind: &ResolvedKind,
        action: Action,
        subresource: Option<&'static str>,
        what: &str,
    ) -> Result<(), OpError> {
        let request = ApiRequest {
            kind,
            action,
            subresource,
        };
        safety::check(&self.policy, &cc.name, &request, what)
    }
}

/// Resolves `api_version`/`kind` on this cluster, within `timeout`.
pub async fn resolve_kind(
    cc: &ClusterClient,
    api_version: Option<&ApiVersion>,
    kind: &KindName,
    timeout: Duration,
) -> Result<ResolvedKind, OpError> {
    let api_version = api_version.map(ApiVersion::as_str).unwrap_or("");
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "discover",
        resource: kind.as_str(),
    };
    match tokio::time::timeout(
        timeout,
        cc.discovery.resolve(&cc.client, api_version, kind.as_str()),
    )
    .await
    {
        Err(_) => Err(ctx.timeout(timeout)),
        Ok(Err(e)) => Err(ctx.error(e)),
        Ok(Ok(None)) if api_version.starts_with("metrics.k8s.io") => {
            Err(OpError::InvalidArgument(format!(
                "cluster {}: the metrics API (metrics.k8s.io) is not served, so there is no CPU/memory usage to show; install metrics-server on the cluster",
                cc.name
            )))
        }
        Ok(Ok(None)) => Err(OpError::UnknownKind {
            cluster: cc.name.clone(),
            kind: kind.to_string(),
            api_version: api_version.to_string(),
        }),
        Ok(Ok(Some(k))) => Ok(k),
    }
}

/// The core kind `kind` ("Pod", "Node") on this cluster.
pub async fn core_kind(
    cc: &ClusterClient,
    kind: &'static str,
    timeout: Duration,
) -> Result<ResolvedKind, OpError> {
    let v1 = ApiVersion::parse("apiVersion", "v1").expect("v1 is an API version");
    let kind = KindName::parse("kind", kind).expect("a core kind name");
    resolve_kind(cc, Some(&v1), &kind, timeout).await
}
