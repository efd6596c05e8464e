//! MCP resources: the cluster status table (`nskd://clusters`), one
//! cluster's detailed view (`nskd://clusters/{name}`) and the kubeconfig
//! refresh status (`nskd://refresh`). A subscribed client is sent
//! `notifications/resources/updated` when a cluster's health changes.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use nskd_proto::{
    refresh_view,
    v1::{
        ClusterStatusRequest, ClusterStatusResponse, RefreshHistoryRequest, StatusTableRequest,
        clusters_client::ClustersClient,
    },
};
use rmcp::{
    ErrorData as McpError, Peer, RoleServer,
    model::{
        ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
        ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam,
    },
};
use tokio::sync::Mutex;

use crate::session::Session;

/// The status table of every cluster.
pub const CLUSTERS: &str = "nskd://clusters";
/// One cluster's detailed view: this prefix, then its name.
pub const CLUSTER_PREFIX: &str = "nskd://clusters/";
/// The kubeconfig refresh status and history.
pub const REFRESH: &str = "nskd://refresh";
/// How often a session with subscriptions asks the daemon for health.
const POLL: Duration = Duration::from_secs(2);
/// The client name the subscription poller calls the daemon with.
const POLLER: &str = "mcp-shim resource subscription";

/// The fixed resources.
pub fn list() -> ListResourcesResult {
    ListResourcesResult::with_all_items(vec![
        Resource::new(CLUSTERS, "clusters")
            .with_description(
                "Status table of every cluster (subscribe: updated on health changes)",
            )
            .with_mime_type("text/plain"),
        Resource::new(REFRESH, "refresh")
            .with_description("Kubeconfig refresh status and history")
            .with_mime_type("text/plain"),
    ])
}

/// The per-cluster template.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new("nskd://clusters/{name}", "cluster")
            .with_description("Detailed status of one cluster")
            .with_mime_type("text/plain"),
    ])
}

/// What a URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `nskd://clusters`.
    Clusters,
    /// `nskd://clusters/{name}`.
    Cluster(String),
    /// `nskd://refresh`.
    Refresh,
}

/// Parses a resource URI; a cluster name is refused unless it is a plain
/// name (letters, digits, `.`, `_`, `-`, at most 253 bytes).
pub fn parse(uri: &str) -> Result<Target, McpError> {
    if uri == CLUSTERS {
        return Ok(Target::Clusters);
    }
    if uri == REFRESH {
        return Ok(Target::Refresh);
    }
    if let Some(name) = uri.strip_prefix(CLUSTER_PREFIX) {
        let plain = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain {
            return Err(McpError::invalid_params(
                format!(
                    "resource {}: not a cluster name (letters, digits, '.', '_', '-'; at most 253); list the clusters with resources/read {CLUSTERS}",
                    shown(uri)
                ),
                None,
            ));
        }
        return Ok(Target::Cluster(name.to_string()));
    }
    Err(McpError::resource_not_found(
        format!(
            "no resource {}: nskd serves {CLUSTERS}, {CLUSTER_PREFIX}{{name}} and {REFRESH}",
            shown(uri)
        ),
        None,
    ))
}

/// A hostile URI as it may appear in an error: escaped and cut short.
fn shown(uri: &str) -> String {
    let cut: String = uri.chars().take(80).collect();
    format!("{cut:?}")
}

/// Reads one resource through the session.
pub async fn read(
    session: &Session,
    uri: &str,
    client: &str,
) -> Result<ReadResourceResult, McpError> {
    let target = parse(uri)?;
    let text = match &target {
        Target::Refresh => {
            let (resp, _) = session
                .call(client, |ch, id| {
                    let mut c = ClustersClient::new(ch);
                    let req = id.request(RefreshHistoryRequest { limit: 10 });
                    async move { c.refresh_history(req).await }
                })
                .await
                .map_err(|e| unavailable(uri, &e))?;
            refresh_view::integration_view(&resp)
        }
        Target::Clusters => {
            // The table the daemon composes within the answer budget.
            let request = StatusTableRequest {
                active: session.active().await.unwrap_or_default(),
                ..Default::default()
            };
            session
                .call(client, |ch, id| {
                    let mut c = nskd_proto::client::fleet_client(ch);
                    let req = id.request(request.clone());
                    async move { c.status_table(req).await }
                })
                .await
                .map_err(|e| unavailable(uri, &e))?
                .0
                .text
        }
        Target::Cluster(name) => {
            let resp = status(session, client, Some(name.clone()))
                .await
                .map_err(|e| unavailable(uri, &e))?;
            if !resp.clusters.iter().any(|h| &h.name == name) {
                return Err(McpError::resource_not_found(
                    format!(
                        "no cluster {name:?} in this environment; list them with resources/read {CLUSTERS}"
                    ),
                    None,
                ));
            }
            resp.clusters
                .iter()
                .map(|h| nskd_proto::present::detail_view(h, resp.next_refresh_ms))
                .collect()
        }
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("text/plain"),
    ]))
}

fn unavailable(uri: &str, e: &str) -> McpError {
    McpError::internal_error(format!("resource {uri}: {e}"), None)
}

async fn status(
    session: &Session,
    client: &str,
    one: Option<String>,
) -> Result<ClusterStatusResponse, String> {
    let request = ClusterStatusRequest {
        detail: one.is_some(),
        clusters: one.into_iter().collect(),
        refresh: false,
    };
    session
        .call(client, |ch, id| {
            let mut c = ClustersClient::new(ch);
            let req = id.request(request.clone());
            async move { c.cluster_status(req).await }
        })
        .await
        .map(|(r, _)| r)
}

/// The URIs a session subscribed to, and the task watching for changes.
#[derive(Debug, Default)]
pub struct Subscriptions {
    uris: Mutex<BTreeSet<String>>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Subscriptions {
    /// Subscribes to `uri`, starting the watcher on the first subscription.
    pub async fn add(
        self: &Arc<Self>,
        uri: &str,
        session: Session,
        peer: Peer<RoleServer>,
    ) -> Result<(), McpError> {
        parse(uri)?;
        self.uris.lock().await.insert(uri.to_string());
        let mut watcher = self.watcher.lock().await;
        if watcher.as_ref().is_none_or(|w| w.is_finished()) {
            let subs = Arc::clone(self);
            *watcher = Some(tokio::spawn(async move { subs.watch(session, peer).await }));
        }
        Ok(())
    }

    /// Unsubscribes from `uri`; the watcher stops with the last one.
    pub async fn remove(&self, uri: &str) {
        self.uris.lock().await.remove(uri);
    }

    /// Polls the daemon's health tracker; a change of any cluster's state
    /// updates `nskd://clusters` and that cluster's URI, when subscribed.
    async fn watch(&self, session: Session, peer: Peer<RoleServer>) {
        let mut last: Option<BTreeMap<String, i32>> = None;
        loop {
            if self.uris.lock().await.is_empty() {
                return;
            }
            if let Ok(resp) = status(&session, POLLER, None).await {
                let now: BTreeMap<String, i32> = resp
                    .clusters
                    .iter()
                    .map(|h| (h.name.clone(), h.state))
                    .collect();
                if let Some(before) = &last {
                    let changed: Vec<&String> = now
                        .keys()
                        .chain(before.keys())
                        .filter(|n| now.get(*n) != before.get(*n))
                        .collect();
                    let uris = self.uris.lock().await.clone();
                    let mut updated: Vec<String> = Vec::new();
                    if !changed.is_empty() && uris.contains(CLUSTERS) {
                        updated.push(CLUSTERS.into());
                    }
                    for name in changed {
                        let uri = format!("{CLUSTER_PREFIX}{name}");
                        if uris.contains(&uri) && !updated.contains(&uri) {
                            updated.push(uri);
                        }
                    }
                    for uri in updated {
                        let param = ResourceUpdatedNotificationParam::new(uri);
                        if peer.notify_resource_updated(param).await.is_err() {
                            return;
                        }
                    }
                }
                last = Some(now);
            }
            if session.offer_changed(POLLER).await && peer.notify_tool_list_changed().await.is_err()
            {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_hostile_ones_are_refused() {
        assert_eq!(parse("nskd://clusters").unwrap(), Target::Clusters);
        assert_eq!(parse("nskd://refresh").unwrap(), Target::Refresh);
        assert_eq!(
            parse("nskd://clusters/c1-dfw1").unwrap(),
            Target::Cluster("c1-dfw1".into())
        );
        for bad in [
            "nskd://clusters/../x",
            "nskd://clusters/a/b",
            "nskd://clusters/%2e%2e",
            "nskd://clusters/a\nb",
            "nskd://clusters/",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.message.contains("not a cluster name"),
                "{bad}: {}",
                e.message
            );
        }
        let huge = format!("nskd://clusters/{}", "a".repeat(300));
        assert!(parse(&huge).is_err());
        let e = parse("file:///etc/passwd").unwrap_err();
        assert!(e.message.contains("nskd://clusters"), "{}", e.message);
        assert!(parse(&"x".repeat(100_000)).unwrap_err().message.len() < 300);
    }
}
