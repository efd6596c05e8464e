//! The NSK tools: refresh, status, discover, get, and
//! the refresh view. The daemon does the work; credentials never come back.

use nskd_proto::{
    refresh_view,
    v1::{
        FetchKubeconfigRequest, RefreshHistoryRequest, RefreshRequest, SourceStatusRequest,
        clusters_client::ClustersClient,
    },
};
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::wrapper::Parameters, model::CallToolResult,
    service::RequestContext, tool, tool_router,
};

use crate::{
    args::{NskDiscoverArgs, NskGetArgs, NskRefreshArgs},
    tools::{NskdTools, client_name, fail, ok},
};

impl NskdTools {
    /// One Clusters RPC through the session, rendered by `view` on success.
    async fn clusters_rpc<Req, Resp, F, Fut>(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: Req,
        call: F,
        view: impl FnOnce(&Resp) -> String,
    ) -> Result<CallToolResult, McpError>
    where
        Req: Clone,
        F: Fn(ClustersClient<tonic::transport::Channel>, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let result = self
            .session
            .call(&client_name(ctx), |ch, id| {
                call(
                    nskd_proto::client::clusters_client(ch),
                    id.request(request.clone()),
                )
            })
            .await;
        match result {
            Ok((resp, _)) => ok(view(&resp)),
            Err(e) => fail(e),
        }
    }

    async fn refresh_call(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: RefreshRequest,
    ) -> Result<CallToolResult, McpError> {
        let result = self
            .session
            .call(&client_name(ctx), |ch, id| {
                let mut client = nskd_proto::client::clusters_client(ch);
                let req = id.request(request.clone());
                async move { client.refresh(req).await }
            })
            .await;
        match result {
            Ok((r, _))
                if nskd_proto::refresh_view::outcome_word(r.outcome) == "Failed"
                    && r.note.is_empty() =>
            {
                fail(refresh_view::record_view(&r))
            }
            Ok((r, _)) => ok(refresh_view::record_view(&r)),
            Err(e) => fail(e),
        }
    }
}

#[tool_router(router = nsk_tool_router, vis = "pub(crate)")]
impl NskdTools {
    #[tool(
        input_schema = crate::catalog::input_schema::<NskRefreshArgs>(),
        name = "nsk_refresh",
        description = "Refresh kubeconfigs from Rancher.",
        annotations(
            title = "NSK: Refresh Kubeconfigs",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn nsk_refresh(
        &self,
        Parameters(args): Parameters<NskRefreshArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = RefreshRequest {
            force: args.force,
            pattern: String::new(),
            trigger: "nsk_refresh".into(),
        };
        self.refresh_call(&ctx, request).await
    }

    #[tool(
        name = "nsk_status",
        description = "Rancher source status: token expiry, last and next refresh.",
        annotations(
            title = "NSK: Integration Status",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn nsk_status(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.clusters_rpc(
            &ctx,
            SourceStatusRequest { verify: true },
            |mut c, req| async move { c.source_status(req).await },
            refresh_view::source_view,
        )
        .await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NskDiscoverArgs>(),
        name = "nsk_clusters_discover",
        description = "Fetch kubeconfigs of Rancher clusters matching `pattern`.",
        annotations(
            title = "NSK: Discover Clusters",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn nsk_clusters_discover(
        &self,
        Parameters(args): Parameters<NskDiscoverArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let pattern = args
            .pattern
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".*".into());
        let request = RefreshRequest {
            force: true,
            pattern,
            trigger: "nsk_clusters_discover".into(),
        };
        self.refresh_call(&ctx, request).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NskGetArgs>(),
        name = "nsk_get",
        description = "A cluster's kubeconfig from Rancher, without credentials.",
        annotations(
            title = "NSK: Get Cluster Kubeconfig",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn nsk_get(
        &self,
        Parameters(args): Parameters<NskGetArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = FetchKubeconfigRequest {
            cluster_name: args.cluster_name,
            save: args.save,
        };
        self.clusters_rpc(
            &ctx,
            request,
            |mut c, req| async move { c.fetch_kubeconfig(req).await },
            refresh_view::fetch_view,
        )
        .await
    }

    #[tool(
        name = "clusters_refresh_status",
        description = "Kubeconfig refresh status and history.",
        annotations(
            title = "Clusters: Refresh Status",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn clusters_refresh_status(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.clusters_rpc(
            &ctx,
            RefreshHistoryRequest { limit: 10 },
            |mut c, req| async move { c.refresh_history(req).await },
            refresh_view::integration_view,
        )
        .await
    }
}
