//! Generic Kubernetes read tools with the Go kubernetes-mcp-server's names
//! and argument names: any kind through API discovery, per-call cluster
//! targeting, `clusters` for many clusters at once.

use nskd_proto::v1 as pb;
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::wrapper::Parameters, model::CallToolResult,
    service::RequestContext, tool, tool_router,
};

use crate::{
    args::{
        ConfigViewArgs, NodesTopArgs, OutputFormat, PodsGetArgs, ResourcesGetArgs,
        ResourcesListArgs, SimpleListArgs, TopArgs,
    },
    tools::{NskdTools, client_name, fail, kube_answer, ok, output},
};

impl NskdTools {
    /// `get` or (with `describe`) `describe` of one object.
    async fn get(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: pb::GetRequest,
        describe: bool,
    ) -> Result<CallToolResult, McpError> {
        let result = self
            .session
            .call(&client_name(ctx), |ch, id| {
                let mut client = nskd_proto::client::kube_client(ch);
                let req = id.request(request.clone());
                async move {
                    if describe {
                        client.describe(req).await
                    } else {
                        client.get(req).await
                    }
                }
            })
            .await;
        kube_answer(result)
    }

    /// A list of `api_version`/`kind` with the common arguments.
    async fn list_kind(
        &self,
        ctx: &RequestContext<RoleServer>,
        api_version: &str,
        kind: &str,
        args: SimpleListArgs,
    ) -> Result<CallToolResult, McpError> {
        self.list_named(ctx, api_version, kind, args, None).await
    }

    /// Lists `kind`, only the object `name` when one is given.
    async fn list_named(
        &self,
        ctx: &RequestContext<RoleServer>,
        api_version: &str,
        kind: &str,
        args: SimpleListArgs,
        name: Option<String>,
    ) -> Result<CallToolResult, McpError> {
        let shaping = args.shaping();
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let mut request = pb::ListRequest {
            target: Some(target),
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: args.namespace.unwrap_or_default(),
            label_selector: args.label_selector.unwrap_or_default(),
            field_selector: args.field_selector.unwrap_or_default(),
            limit: args.limit.unwrap_or(0),
            output: output(args.output),
            name: name.unwrap_or_default(),
            ..Default::default()
        };
        shaping.fill(&mut request);
        self.list(ctx, request).await
    }
}

/// YAML unless JSON was asked for (a single object has no table).
fn object_output(o: Option<OutputFormat>) -> i32 {
    match o {
        Some(OutputFormat::Json) => pb::OutputFormat::Json as i32,
        _ => pb::OutputFormat::Yaml as i32,
    }
}

#[tool_router(router = kube_tool_router, vis = "pub(crate)")]
impl NskdTools {
    #[tool(
        input_schema = crate::catalog::input_schema::<ResourcesListArgs>(),
        name = "resources_list",
        description = "List objects of any kind, CRDs included.",
        annotations(
            title = "Resources: List",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn resources_list(
        &self,
        Parameters(args): Parameters<ResourcesListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let shaping = args.shaping();
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let mut request = pb::ListRequest {
            target: Some(target),
            api_version: args.api_version,
            kind: args.kind,
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
        input_schema = crate::catalog::input_schema::<ResourcesGetArgs>(),
        name = "resources_get",
        description = "Get one object of any kind; Secret values masked.",
        annotations(
            title = "Resources: Get",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn resources_get(
        &self,
        Parameters(args): Parameters<ResourcesGetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let request = pb::GetRequest {
            target: Some(target),
            api_version: args.api_version,
            kind: args.kind,
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            output: object_output(args.output),
        };
        self.get(&ctx, request, false).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<ResourcesGetArgs>(),
        name = "resources_describe",
        description = "Describe one object, with recent events.",
        annotations(
            title = "Resources: Describe",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn resources_describe(
        &self,
        Parameters(args): Parameters<ResourcesGetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let request = pb::GetRequest {
            target: Some(target),
            api_version: args.api_version,
            kind: args.kind,
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            output: pb::OutputFormat::Table as i32,
        };
        self.get(&ctx, request, true).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsGetArgs>(),
        name = "pods_get",
        description = "Get one pod as YAML or JSON.",
        annotations(title = "Pods: Get", read_only_hint = true, open_world_hint = true)
    )]
    async fn pods_get(
        &self,
        Parameters(args): Parameters<PodsGetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let target = self
            .target(args.cluster, args.clusters.as_ref(), args.live)
            .await;
        let request = pb::GetRequest {
            target: Some(target),
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            output: object_output(args.output),
        };
        self.get(&ctx, request, false).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<SimpleListArgs>(),
        name = "nodes_list",
        description = "List nodes: status, roles, version.",
        annotations(title = "Nodes: List", read_only_hint = true, open_world_hint = true)
    )]
    async fn nodes_list(
        &self,
        Parameters(args): Parameters<SimpleListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.list_kind(&ctx, "v1", "Node", args).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<TopArgs>(),
        name = "pods_top",
        description = "CPU and memory usage of pods (metrics.k8s.io).",
        annotations(title = "Pods: Top", read_only_hint = true, open_world_hint = true)
    )]
    async fn pods_top(
        &self,
        Parameters(a): Parameters<TopArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let (args, name) = a.into_list();
        self.list_named(&ctx, "metrics.k8s.io/v1beta1", "PodMetrics", args, name)
            .await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NodesTopArgs>(),
        name = "nodes_top",
        description = "CPU and memory usage of nodes (metrics.k8s.io).",
        annotations(title = "Nodes: Top", read_only_hint = true, open_world_hint = true)
    )]
    async fn nodes_top(
        &self,
        Parameters(a): Parameters<NodesTopArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        // NodeMetrics is cluster-scoped: a namespace is ignored.
        let (args, name) = a.into_list();
        self.list_named(&ctx, "metrics.k8s.io/v1beta1", "NodeMetrics", args, name)
            .await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<ConfigViewArgs>(),
        name = "configuration_view",
        description = "The kubeconfig this session sees, credentials redacted.",
        annotations(
            title = "Configuration: View",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn configuration_view(
        &self,
        Parameters(a): Parameters<ConfigViewArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let result = self
            .session
            .call(&client_name(&ctx), |ch, id| {
                let mut client = nskd_proto::client::clusters_client(ch);
                let req = id.request(pb::ListClustersRequest {});
                async move { client.list_clusters(req).await }
            })
            .await;
        let list = match result {
            Ok((l, _)) => l,
            Err(e) => return fail(e),
        };
        let current = self.session.active().await.unwrap_or_default();
        let shown: Vec<&pb::ClusterInfo> = list
            .clusters
            .iter()
            .filter(|c| !a.minified.unwrap_or(true) || c.name == current)
            .collect();
        let quoted = |s: &str| {
            if s.is_empty() {
                "\"\"".to_string()
            } else {
                s.to_string()
            }
        };
        let mut y = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {}\nclusters:\n",
            quoted(&current)
        );
        for c in &shown {
            y.push_str(&format!(
                "- name: {}\n  cluster:\n    server: {}\n",
                c.name,
                quoted(&c.server)
            ));
        }
        y.push_str("contexts:\n");
        for c in &shown {
            y.push_str(&format!(
                "- name: {0}\n  context:\n    cluster: {0}\n    user: {0}\n",
                c.name
            ));
        }
        y.push_str("users:\n");
        for c in &shown {
            let kind = if c.auth.is_empty() {
                "auth"
            } else {
                c.auth.as_str()
            };
            y.push_str(&format!(
                "- name: {}\n  user:\n    {kind}: REDACTED\n",
                c.name
            ));
        }
        ok(y)
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<SimpleListArgs>(),
        name = "events_list",
        description = "List events, e.g. fieldSelector \"type=Warning\".",
        annotations(title = "Events: List", read_only_hint = true, open_world_hint = true)
    )]
    async fn events_list(
        &self,
        Parameters(args): Parameters<SimpleListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.list_kind(&ctx, "v1", "Event", args).await
    }
}
