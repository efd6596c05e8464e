//! The MCP tools. Each one translates its arguments to one gRPC call; the
//! daemon does the work. Errors are tool results the agent can act on.

use nskd_proto::v1::{
    self as pb, ClusterStatusRequest, GetClusterRequest, daemon_client::DaemonClient,
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
    subscriptions: std::sync::Arc<crate::resources::Subscriptions>,
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

/// The router every session (HTTP ones included) calls tools through,
/// built at the first call. Its entries carry empty schemas: `tools/list`
/// is answered from crate::catalog's pre-generated JSON, so a session
/// generates no schema (docs/benchmarks.md).
fn router() -> &'static ToolRouter<NskdTools> {
    static ROUTER: std::sync::OnceLock<ToolRouter<NskdTools>> = std::sync::OnceLock::new();
    ROUTER.get_or_init(NskdTools::full_router)
}

impl NskdTools {
    /// Tools for one session.
    pub fn new(session: Session) -> Self {
        Self {
            session,
            subscriptions: Default::default(),
        }
    }

    /// Every tool as `tools/list` offers it, schemas compacted
    /// (crate::contract); parsed from crate::catalog's JSON at each call.
    pub(crate) fn tool_list() -> Vec<rmcp::model::Tool> {
        crate::catalog::lines()
            .filter_map(crate::catalog::parse)
            .collect()
    }

    /// Every tool's route (with the schemas of crate::catalog::input_schema).
    pub(crate) fn full_router() -> ToolRouter<Self> {
        Self::tool_router()
            + Self::nsk_tool_router()
            + Self::kube_tool_router()
            + Self::change_tool_router()
            + Self::workload_tool_router()
            + Self::helm_tool_router()
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

    /// The daemon's `[[prompts]]`.
    async fn user_prompts(&self, client: &str) -> Result<Vec<pb::UserPrompt>, String> {
        self.session
            .call(client, |ch, id| {
                let mut c = pb::contract_client::ContractClient::new(ch);
                let req = id.request(pb::ListPromptsRequest {});
                async move { c.list_prompts(req).await }
            })
            .await
            .map(|(r, _)| r.prompts)
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
                let mut client = nskd_proto::client::kube_client(ch);
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
        description = "List clusters; `*` marks the active one.",
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
                let mut client = nskd_proto::client::clusters_client(ch);
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
        input_schema = crate::catalog::input_schema::<ClusterUseArgs>(),
        name = "cluster_use",
        description = "Set this session's active cluster.",
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
                let mut client = nskd_proto::client::clusters_client(ch);
                let req = id.request(GetClusterRequest {
                    name: wanted.clone(),
                });
                async move { client.get_cluster(req).await }
            })
            .await;
        match result {
            Ok((info, _)) if self.session.is_stateless() => fail(format!(
                "cluster {} exists, but this nskd endpoint is stateless (mcp-shim --stateless: several replicas behind one Service) and keeps no active cluster between calls; pass \"cluster\": \"{}\" to every tool call instead (calls without it go to the daemon's default cluster)",
                info.name, info.name
            )),
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
        input_schema = crate::catalog::input_schema::<ClustersStatusArgs>(),
        name = "clusters_status",
        description = "Health of all clusters, or of one in detail.",
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
        let active = self.session.active().await;
        let Some(cluster) = args.cluster else {
            // The table: composed by the daemon within the answer budget.
            let request = pb::StatusTableRequest {
                refresh: args.refresh,
                active: active.unwrap_or_default(),
                continue_token: args.continue_token.unwrap_or_default(),
            };
            let result = self
                .session
                .call(&name, |ch, id| {
                    let mut client = nskd_proto::client::fleet_client(ch);
                    let req = id.request(request.clone());
                    async move { client.status_table(req).await }
                })
                .await;
            return match result {
                Ok((resp, _)) => ok(resp.text),
                Err(e) => fail(e),
            };
        };
        if args.continue_token.is_some() {
            return fail(format!(
                "continue pages the table of all clusters; with cluster {cluster} there is one cluster in detail and nothing to page: drop continue, or drop cluster to page the table"
            ));
        }
        let request = ClusterStatusRequest {
            clusters: vec![cluster],
            // The detailed view counts live.
            refresh: args.refresh,
            detail: true,
        };
        let result = self
            .session
            .call(&name, |ch, id| {
                let mut client = nskd_proto::client::clusters_client(ch);
                let req = id.request(request.clone());
                async move { client.cluster_status(req).await }
            })
            .await;
        let (resp, _) = match result {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
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
        ok(text)
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NamespacesListArgs>(),
        name = "namespaces_list",
        description = "List namespaces.",
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
        let shaping = args.shaping();
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let mut request = pb::ListRequest {
            target: Some(target),
            api_version: "v1".into(),
            kind: "Namespace".into(),
            label_selector: args.label_selector.unwrap_or_default(),
            limit: args.limit.unwrap_or(0),
            output: output(args.output),
            ..Default::default()
        };
        shaping.fill(&mut request);
        self.list(&ctx, request).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsListArgs>(),
        name = "pods_list",
        description = "List pods (all namespaces, or `namespace`).",
        annotations(title = "Pods: List", read_only_hint = true, open_world_hint = true)
    )]
    async fn pods_list(
        &self,
        Parameters(args): Parameters<PodsListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let shaping = args.shaping();
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let mut request = pb::ListRequest {
            target: Some(target),
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: args.namespace.unwrap_or_default(),
            label_selector: args.label_selector.unwrap_or_default(),
            field_selector: args.field_selector.unwrap_or_default(),
            limit: args.limit.unwrap_or(0),
            output: output(args.output),
            name: String::new(),
            ..Default::default()
        };
        shaping.fill(&mut request);
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
            Some(c) if self.session.is_stateless() => ok(format!(
                "This endpoint is stateless: no active cluster is kept between calls; calls without `cluster` go to the default cluster, {c}. Pass `cluster` to every call."
            )),
            None if self.session.is_stateless() => ok(
                "This endpoint is stateless and the daemon has no default_cluster: pass `cluster` to every call.",
            ),
            Some(c) => ok(format!("Active cluster for this session: {c}")),
            None => ok(
                "No active cluster yet (the daemon has no default_cluster and knows several clusters): call cluster_use, or pass `cluster` to each tool.",
            ),
        }
    }
}

// The router is built at the first call, not before the initialize
// answer: sessions start faster.
#[tool_handler(router = router())]
impl ServerHandler for NskdTools {
    /// A tool with its schema (the router's entries carry none).
    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        crate::catalog::find(name).and_then(crate::catalog::parse)
    }

    /// Every tool, minus those the daemon says its safety switches forbid
    /// (when it can be asked; it refuses them anyway).
    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, McpError> {
        let mut tools = Self::tool_list();
        let caller = crate::session::caller_of(&ctx);
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
            self.session.listed(&info.hidden_tools);
        }
        tools.retain(|t| !self.session.narrows_out(&t.name));
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
        if self.session.narrows_out(&tool) {
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "{tool} is not offered in this session: mcp-shim was started with --toolsets {}; start it without --toolsets (or with the toolset of {tool}) to use it",
                self.session.toolsets().join(",")
            ))])
            .into());
        }
        let caller = crate::session::caller_of(&context);
        let peer = context.peer.clone();
        let name = client_name(&context);
        let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        let answer = crate::session::CURRENT_CALLER
            .scope(
                caller,
                crate::session::CURRENT_TOOL.scope(tool, router().call(tcc)),
            )
            .await;
        if self.session.offer_changed(&name).await {
            // A restarted daemon offers other tools: the client re-lists.
            let _ = peer.notify_tool_list_changed().await;
        }
        answer
    }

    async fn list_prompts(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, McpError> {
        let user = self
            .user_prompts(&client_name(&ctx))
            .await
            .unwrap_or_default();
        Ok(crate::prompts::list(&user))
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, McpError> {
        if crate::prompts::is_builtin(&request.name) {
            return crate::prompts::get(&request.name, request.arguments.as_ref()).map(Into::into);
        }
        let user = self
            .user_prompts(&client_name(&ctx))
            .await
            .map_err(|e| McpError::internal_error(format!("prompt {}: {e}", request.name), None))?;
        match user.iter().find(|u| u.name == request.name) {
            Some(u) => crate::prompts::get_user(u, request.arguments.as_ref()).map(Into::into),
            None => crate::prompts::get(&request.name, None).map(Into::into),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, McpError> {
        Ok(crate::resources::list())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, McpError> {
        Ok(crate::resources::templates())
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, McpError> {
        crate::resources::read(&self.session, &request.uri, &client_name(&ctx))
            .await
            .map(Into::into)
    }

    #[allow(
        deprecated,
        reason = "resources/subscribe is what clients before 2026-07-28 send"
    )]
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if self.session.is_stateless() {
            return Err(McpError::invalid_request(
                format!(
                    "cannot subscribe to {}: this nskd endpoint is stateless (mcp-shim --stateless) and sends no notifications; read the resource again when you need it",
                    request.uri
                ),
                None,
            ));
        }
        self.subscriptions
            .add(&request.uri, self.session.clone(), ctx.peer.clone())
            .await
    }

    #[allow(
        deprecated,
        reason = "resources/unsubscribe is what clients before 2026-07-28 send"
    )]
    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscriptions.remove(&request.uri).await;
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        let builder = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources();
        // A stateless endpoint has no stream to send notifications on.
        let (capabilities, instructions) = if self.session.is_stateless() {
            (builder.build(), STATELESS_INSTRUCTIONS)
        } else {
            (
                builder
                    .enable_tool_list_changed()
                    .enable_resources_subscribe()
                    .build(),
                INSTRUCTIONS,
            )
        };
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "nskd-mcp-shim",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(instructions)
    }
}

/// The lines of the `initialize` instructions both kinds of endpoint share.
macro_rules! shared_instructions {
    () => {
        "- Read tools take `clusters`: one cluster name, a list of names, or \"*\" for every healthy cluster (`cluster` works too). List arguments are lists of strings. Helm tools read the latest revision unless `revision` is given.\n\
- Every answer fits one byte budget; a footer says what was left out and gives the `continue` token for the next page (`limit` = rows per page).\n\
- List tools: `summary: true` counts by cluster and status instead of rows (`count_by`: keys such as cluster, namespace, a column); `columns` picks table columns; `fields` picks JSONPaths for yaml/json (e.g. \".spec.containers[*].image\"); `sortBy` a column or JSONPath.\n\
- Reads may come from nskd's watch cache, kept in sync with the API server and marked so; `live: true` asks the API server.\n\
- `apiVersion` may be empty: discovery finds the kind (plural and short names work). Changes are audited and may be refused by the daemon's safety switches.\n\
- Changes take `dryRun: true` (the server's dryRun=All: a diff and a plan id, nothing changes) and `plan` (apply exactly what that dry run previewed, refused if the object changed since).\n"
    };
}

/// The `instructions` of `initialize`: how targeting, `"*"`, pagination and
/// the watch cache work, so a client's tool search finds the right tool.
pub const INSTRUCTIONS: &str = concat!(
    "Kubernetes clusters of one environment, served by nskd.\n\
- Start with clusters_status. Tools run on this session's active cluster (cluster_use switches it) or on `cluster`.\n",
    shared_instructions!(),
    "- Prompts: fleet_health, debug_pod, cluster_compare. Resources: nskd://clusters (subscribe for health changes), nskd://clusters/{name}, nskd://refresh."
);

/// The `instructions` of a stateless endpoint (`mcp-shim --stateless`).
pub const STATELESS_INSTRUCTIONS: &str = concat!(
    "Kubernetes clusters of one environment, served by nskd (stateless endpoint: several replicas, no session).\n\
- Start with clusters_status. Pass `cluster` (or `clusters`) to every call: no active cluster is kept (cluster_use is refused); calls without it go to the default cluster.\n\
- Plans and `continue` tokens are kept by the replica that made them (another one refuses them, saying what to do); changes that need the user's confirmation are refused (no elicitation).\n",
    shared_instructions!(),
    "- Prompts: fleet_health, debug_pod, cluster_compare. Resources: nskd://clusters, nskd://clusters/{name}, nskd://refresh."
);

#[cfg(test)]
mod tests {
    use nskd_proto::tools::{ToolClass, class};

    use super::*;

    /// Every tool belongs to a toolset (nskd_proto::tools::TOOL_TOOLSETS).
    #[test]
    fn every_tool_has_a_toolset() {
        for tool in NskdTools::tool_list() {
            assert!(
                nskd_proto::tools::toolset(&tool.name).is_some(),
                "{} has no toolset: add it to TOOL_TOOLSETS in proto/src/tools.rs",
                tool.name
            );
        }
    }

    /// The annotations agents see say what the daemon's table says.
    #[test]
    fn annotations_follow_the_daemons_tool_classes() {
        let tools = NskdTools::tool_list();
        for (name, _) in nskd_proto::tools::CHANGING_TOOLS {
            assert!(
                tools.iter().any(|t| t.name == *name),
                "{name} is not a tool"
            );
        }
        for tool in tools {
            // Absent hints mean what the MCP specification says.
            let a = tool.annotations.clone().unwrap_or_default();
            let read_only = a.read_only_hint.unwrap_or(false);
            let class = class(&tool.name);
            // A read may still change the session or the daemon (cluster_use,
            // nsk_refresh): only tools that change clusters are in the table.
            if class != ToolClass::Read || read_only {
                assert_eq!(read_only, class == ToolClass::Read, "{}", tool.name);
            }
            assert_eq!(
                !read_only && a.is_destructive(),
                matches!(class, ToolClass::Destructive | ToolClass::CreateOrOverwrite),
                "{}",
                tool.name
            );
        }
    }
}
