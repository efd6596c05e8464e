//! The MCP tools. Each one translates its arguments to one gRPC call; the
//! daemon does the work. Errors are tool results the agent can act on.

use nskd_proto::v1::{
    self as pb, ClusterStatusRequest, GetClusterRequest, clusters_client::ClustersClient,
    daemon_client::DaemonClient, kube_client::KubeClient,
};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};

use crate::{
    args::{
        ClusterSet, ClusterUseArgs, ClustersStatusArgs, NamespacesListArgs, OutputFormat,
        PodsListArgs,
    },
    render,
    session::Session,
};

/// The shim's MCP server: one per agent session.
#[derive(Debug, Clone)]
pub struct NskdTools {
    pub(crate) session: Session,
    tool_router: ToolRouter<Self>,
}

pub(crate) fn ok(text: impl Into<String>) -> Result<CallToolResult, McpError> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// A Kube answer (one section per cluster) as a tool result; an error
/// result when every cluster failed.
pub(crate) fn kube_answer(
    result: Result<(pb::KubeResult, pb::DaemonInfo), String>,
) -> Result<CallToolResult, McpError> {
    match result {
        Ok((r, _)) => {
            let answer = render::kube_result(&r);
            let mut content = vec![ContentBlock::text(answer.text)];
            content.extend(answer.note.map(ContentBlock::text));
            Ok(if answer.failed {
                CallToolResult::error(content)
            } else {
                CallToolResult::success(content)
            })
        }
        Err(e) => fail(e),
    }
}

pub(crate) fn fail(text: impl Into<String>) -> Result<CallToolResult, McpError> {
    Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
}

pub(crate) fn client_name(ctx: &RequestContext<RoleServer>) -> String {
    ctx.peer
        .peer_info()
        .map(|p| format!("{} {}", p.client_info.name, p.client_info.version))
        .unwrap_or_else(|| "unknown-mcp-client".into())
}

pub(crate) fn output(o: Option<OutputFormat>) -> i32 {
    match o.unwrap_or_default() {
        OutputFormat::Table => pb::OutputFormat::Table as i32,
        OutputFormat::Yaml => pb::OutputFormat::Yaml as i32,
        OutputFormat::Json => pb::OutputFormat::Json as i32,
    }
}

impl NskdTools {
    /// Tools for one session.
    pub fn new(session: Session) -> Self {
        Self {
            session,
            tool_router: Self::tool_router()
                + Self::nsk_tool_router()
                + Self::kube_tool_router()
                + Self::change_tool_router()
                + Self::workload_tool_router(),
        }
    }

    /// The target of a call: `clusters` if given, else `cluster`, else the
    /// session's active cluster (the daemon falls back to its default).
    pub(crate) async fn target(
        &self,
        cluster: Option<String>,
        clusters: Option<&ClusterSet>,
        live: bool,
    ) -> pb::Target {
        let cluster = match cluster.filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => self.session.active().await.unwrap_or_default(),
        };
        pb::Target {
            cluster,
            clusters: clusters.map(ClusterSet::names).unwrap_or_default(),
            live,
        }
    }

    pub(crate) async fn list(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: pb::ListRequest,
    ) -> Result<CallToolResult, McpError> {
        let name = client_name(ctx);
        let result = self
            .session
            .call(&name, |ch, id| {
                let mut client = KubeClient::new(ch);
                let req = id.request(request.clone());
                async move { client.list(req).await }
            })
            .await;
        kube_answer(result)
    }
}

#[tool_router]
impl NskdTools {
    #[tool(
        name = "clusters_list",
        description = "List the Kubernetes clusters of this environment with their status and API server; `*` marks this session's active cluster.",
        annotations(
            title = "Clusters: List",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    pub(crate) async fn clusters_list(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let name = client_name(&ctx);
        let result = self
            .session
            .call(&name, |ch, id| {
                let mut client = ClustersClient::new(ch);
                let req = id.request(ClusterStatusRequest::default());
                async move { client.cluster_status(req).await }
            })
            .await;
        let (resp, _) = match result {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        let active = self.session.active().await;
        let mut rows = vec![vec![
            "CLUSTER".to_string(),
            "STATUS".into(),
            "SERVER".into(),
            "KUBECONFIG".into(),
        ]];
        for h in &resp.clusters {
            let info = h.info.clone().unwrap_or_default();
            let mut cname = h.name.clone();
            if active.as_deref() == Some(h.name.as_str()) {
                cname.push_str(" *");
            }
            rows.push(vec![
                cname,
                nskd_proto::present::state_word(h.state).into(),
                if info.server.is_empty() {
                    "-".into()
                } else {
                    info.server
                },
                info.kubeconfig_path,
            ]);
        }
        if resp.clusters.is_empty() {
            return ok("No clusters known to nskd.");
        }
        ok(format!(
            "{}\n* = this session's active cluster\n",
            render::columns(&rows)
        ))
    }

    #[tool(
        name = "cluster_use",
        description = "Switch this session's active cluster (other sessions are not affected). Tools called without `cluster` then run there.",
        annotations(
            title = "Clusters: Use",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn cluster_use(
        &self,
        Parameters(args): Parameters<ClusterUseArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let name = client_name(&ctx);
        let wanted = args.cluster.clone();
        let result = self
            .session
            .call(&name, |ch, id| {
                let mut client = ClustersClient::new(ch);
                let req = id.request(GetClusterRequest {
                    name: wanted.clone(),
                });
                async move { client.get_cluster(req).await }
            })
            .await;
        match result {
            Ok((info, _)) => {
                self.session.set_active(info.name.clone()).await;
                let mut text = format!(
                    "Active cluster for this session: {} (API server {})",
                    info.name, info.server
                );
                if !info.error.is_empty() {
                    text.push_str(&format!(
                        "\nWarning: its kubeconfig is unusable: {}",
                        info.error
                    ));
                }
                ok(text)
            }
            Err(e) => fail(e),
        }
    }

    #[tool(
        name = "clusters_status",
        description = "Check the status and connectivity of the clusters: a table of all clusters (STATUS, VERSION, NODES, NAMESPACES, KUBECONFIG-AGE, LATENCY, ERRORS), or with `cluster` a detailed view of one. `refresh: true` probes now instead of answering from the daemon's health tracker.",
        annotations(
            title = "Clusters: Status",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn clusters_status(
        &self,
        Parameters(args): Parameters<ClustersStatusArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let name = client_name(&ctx);
        let request = ClusterStatusRequest {
            clusters: args.cluster.iter().cloned().collect(),
            // The detailed view counts live; a table answers from the tracker.
            refresh: args.refresh,
            detail: args.cluster.is_some(),
        };
        let result = self
            .session
            .call(&name, |ch, id| {
                let mut client = ClustersClient::new(ch);
                let req = id.request(request.clone());
                async move { client.cluster_status(req).await }
            })
            .await;
        let (resp, _) = match result {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        let active = self.session.active().await;
        if args.cluster.is_some() {
            let text = resp
                .clusters
                .iter()
                .map(|h| {
                    let mut view = nskd_proto::present::detail_view(h, resp.next_refresh_ms);
                    if active.as_deref() == Some(h.name.as_str()) {
                        view.push_str("Active: yes (this session's active cluster)\n");
                    }
                    view
                })
                .collect::<String>();
            return ok(text);
        }
        ok(render::status_table(&resp, active.as_deref()))
    }

    #[tool(
        name = "namespaces_list",
        description = "List the namespaces of a cluster (default: this session's active cluster), or of several clusters with `clusters` (a list, or \"*\" for all healthy ones).",
        annotations(
            title = "Namespaces: List",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn namespaces_list(
        &self,
        Parameters(args): Parameters<NamespacesListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let request = pb::ListRequest {
            target: Some(target),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            label_selector: args.label_selector.unwrap_or_default(),
            output: output(args.output),
            ..Default::default()
        };
        self.list(&ctx, request).await
    }

    #[tool(
        name = "pods_list",
        description = "List pods in all namespaces, or in `namespace`, filtered by `labelSelector` / `fieldSelector`; on the active cluster, `cluster`, or several `clusters` (\"*\" = all healthy). Large answers are capped with a note saying how many pods were left out.",
        annotations(title = "Pods: List", read_only_hint = true, open_world_hint = true)
    )]
    async fn pods_list(
        &self,
        Parameters(args): Parameters<PodsListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let request = pb::ListRequest {
            target: Some(target),
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: args.namespace.unwrap_or_default(),
            label_selector: args.label_selector.unwrap_or_default(),
            field_selector: args.field_selector.unwrap_or_default(),
            limit: args.limit.unwrap_or(0),
            output: output(args.output),
            name: String::new(),
        };
        self.list(&ctx, request).await
    }

    #[tool(
        name = "cluster_current",
        description = "Show this session's active cluster.",
        annotations(
            title = "Clusters: Current",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn cluster_current(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        if self.session.active().await.is_none() {
            // Learn the daemon's default (the session adopts it).
            let name = client_name(&ctx);
            let asked = self
                .session
                .call(&name, |ch, id| {
                    let mut client = DaemonClient::new(ch);
                    let req = id.request(pb::GetInfoRequest {
                        client_api_version: nskd_proto::API_VERSION,
                        client_name: format!("mcp-shim {}", env!("CARGO_PKG_VERSION")),
                    });
                    async move { client.get_info(req).await }
                })
                .await;
            if let Err(e) = asked {
                return fail(e);
            }
        }
        match self.session.active().await {
            Some(c) => ok(format!("Active cluster for this session: {c}")),
            None => ok(
                "No active cluster yet (the daemon has no default_cluster and knows several clusters): call cluster_use, or pass `cluster` to each tool.",
            ),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for NskdTools {
    /// Every tool, minus those the daemon says its safety switches forbid
    /// (when it can be asked; it refuses them anyway).
    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, McpError> {
        let mut tools = self.tool_router.list_all();
        let caller = crate::oidc::caller_of(&ctx);
        let asked = crate::session::CURRENT_CALLER
            .scope(
                caller,
                self.session.call(&client_name(&ctx), |ch, id| {
                    let mut client = DaemonClient::new(ch);
                    let req = id.request(pb::GetInfoRequest {
                        client_api_version: nskd_proto::API_VERSION,
                        client_name: format!("mcp-shim {}", env!("CARGO_PKG_VERSION")),
                    });
                    async move { client.get_info(req).await }
                }),
            )
            .await;
        if let Ok((info, _)) = asked {
            tools.retain(|t| !info.hidden_tools.iter().any(|h| h == t.name.as_ref()));
        }
        Ok(rmcp::model::ListToolsResult {
            tools,
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, McpError> {
        let tool = request.name.to_string();
        let caller = crate::oidc::caller_of(&context);
        let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        crate::session::CURRENT_CALLER
            .scope(
                caller,
                crate::session::CURRENT_TOOL.scope(tool, self.tool_router.call(tcc)),
            )
            .await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("nskd-mcp-shim", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Kubernetes clusters of one Rancher environment, served by nskd. Start with clusters_status; \
                 pick a cluster with cluster_use (per session) or pass `cluster` to any tool; read tools accept \
                 `clusters` (a list or \"*\") to ask many clusters at once.",
            )
    }
}

#[cfg(test)]
mod tests {
    use nskd_proto::tools::{ToolClass, class};

    use super::*;

    /// The annotations agents see say what the daemon's table says.
    #[test]
    fn annotations_follow_the_daemons_tool_classes() {
        let router = NskdTools::tool_router()
            + NskdTools::nsk_tool_router()
            + NskdTools::kube_tool_router()
            + NskdTools::change_tool_router()
            + NskdTools::workload_tool_router();
        let tools = router.list_all();
        for (name, _) in nskd_proto::tools::CHANGING_TOOLS {
            assert!(
                tools.iter().any(|t| t.name == *name),
                "{name} is not a tool"
            );
        }
        for tool in tools {
            let a = tool.annotations.clone().unwrap_or_default();
            let class = class(&tool.name);
            // A read may still change the session or the daemon (cluster_use,
            // nsk_refresh): only tools that change clusters are in the table.
            if class != ToolClass::Read || a.read_only_hint == Some(true) {
                assert_eq!(
                    a.read_only_hint,
                    Some(class == ToolClass::Read),
                    "{}",
                    tool.name
                );
            }
            assert_eq!(
                a.destructive_hint == Some(true),
                matches!(class, ToolClass::Destructive | ToolClass::CreateOrOverwrite),
                "{}",
                tool.name
            );
        }
    }
}
