//! Helm tools: releases read by the daemon from Helm's own storage (no
//! helm binary), on one cluster or many.

use nskd_proto::v1 as pb;
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::wrapper::Parameters, model::CallToolResult,
    service::RequestContext, tool, tool_router,
};

use crate::{
    args::{
        HelmHistoryArgs, HelmListArgs, HelmReleaseArgs, HelmTextArgs, HelmValuesArgs, OutputFormat,
    },
    tools::{NskdTools, client_name, kube_answer, output},
};

/// Which single-release call.
#[derive(Debug, Clone, Copy)]
enum Part {
    Status,
    History,
    Values,
    Manifest,
    Notes,
}

impl NskdTools {
    async fn helm_release(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: pb::HelmReleaseRequest,
        part: Part,
    ) -> Result<CallToolResult, McpError> {
        let result = self
            .session
            .call(&client_name(ctx), |ch, id| {
                let mut client = nskd_proto::client::helm_client(ch);
                let req = id.request(request.clone());
                async move {
                    match part {
                        Part::Status => client.status(req).await,
                        Part::History => client.history(req).await,
                        Part::Values => client.values(req).await,
                        Part::Manifest => client.manifest(req).await,
                        Part::Notes => client.notes(req).await,
                    }
                }
            })
            .await;
        kube_answer(result)
    }

    async fn release_request(&self, args: HelmReleaseArgs, all: bool) -> pb::HelmReleaseRequest {
        pb::HelmReleaseRequest {
            target: Some(
                self.target(args.cluster, args.clusters.as_ref(), false)
                    .await,
            ),
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            revision: args.revision.unwrap_or(0),
            all,
            output: output(args.output),
        }
    }
}

fn text_args(args: HelmTextArgs) -> HelmReleaseArgs {
    HelmReleaseArgs {
        name: args.name,
        namespace: args.namespace,
        revision: args.revision,
        cluster: args.cluster,
        clusters: args.clusters,
        output: None,
    }
}

#[tool_router(router = helm_tool_router, vis = "pub(crate)")]
impl NskdTools {
    #[tool(
        name = "helm_list",
        description = "List Helm releases; `summary` counts by chart, version, status.",
        annotations(title = "Helm: List", read_only_hint = true, open_world_hint = true)
    )]
    async fn helm_list(
        &self,
        Parameters(args): Parameters<HelmListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = pb::HelmListRequest {
            target: Some(
                self.target(args.cluster, args.clusters.as_ref(), false)
                    .await,
            ),
            namespace: args.namespace.unwrap_or_default(),
            name: args.name.unwrap_or_default(),
            chart: args.chart.unwrap_or_default(),
            status: args.status.unwrap_or_default(),
            output: output(args.output),
            summary: args.summary,
            continue_token: args.continue_token.unwrap_or_default(),
        };
        let result = self
            .session
            .call(&client_name(&ctx), |ch, id| {
                let mut client = nskd_proto::client::helm_client(ch);
                let req = id.request(request.clone());
                async move { client.list(req).await }
            })
            .await;
        kube_answer(result.map(|(r, info)| (r.result.unwrap_or_default(), info)))
    }

    #[tool(
        name = "helm_status",
        description = "Status of one Helm release.",
        annotations(title = "Helm: Status", read_only_hint = true, open_world_hint = true)
    )]
    async fn helm_status(
        &self,
        Parameters(args): Parameters<HelmReleaseArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = self.release_request(args, false).await;
        self.helm_release(&ctx, request, Part::Status).await
    }

    #[tool(
        name = "helm_history",
        description = "Revisions of one Helm release.",
        annotations(title = "Helm: History", read_only_hint = true, open_world_hint = true)
    )]
    async fn helm_history(
        &self,
        Parameters(args): Parameters<HelmHistoryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let args = HelmReleaseArgs {
            name: args.name,
            namespace: args.namespace,
            revision: None,
            cluster: args.cluster,
            clusters: args.clusters,
            output: args.output,
        };
        let request = self.release_request(args, false).await;
        self.helm_release(&ctx, request, Part::History).await
    }

    #[tool(
        name = "helm_get_values",
        description = "A Helm release's values (`all`: computed); credentials masked.",
        annotations(
            title = "Helm: Get Values",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn helm_get_values(
        &self,
        Parameters(args): Parameters<HelmValuesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let all = args.all;
        let out = match args.output {
            Some(OutputFormat::Json) => Some(OutputFormat::Json),
            _ => Some(OutputFormat::Yaml),
        };
        let request = self
            .release_request(
                HelmReleaseArgs {
                    name: args.name,
                    namespace: args.namespace,
                    revision: args.revision,
                    cluster: args.cluster,
                    clusters: args.clusters,
                    output: out,
                },
                all,
            )
            .await;
        self.helm_release(&ctx, request, Part::Values).await
    }

    #[tool(
        name = "helm_get_manifest",
        description = "A Helm release's manifest; Secret documents masked.",
        annotations(
            title = "Helm: Get Manifest",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn helm_get_manifest(
        &self,
        Parameters(args): Parameters<HelmTextArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = self.release_request(text_args(args), false).await;
        self.helm_release(&ctx, request, Part::Manifest).await
    }

    #[tool(
        name = "helm_get_notes",
        description = "Notes (NOTES.txt) of a Helm release.",
        annotations(
            title = "Helm: Get Notes",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn helm_get_notes(
        &self,
        Parameters(args): Parameters<HelmTextArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = self.release_request(text_args(args), false).await;
        self.helm_release(&ctx, request, Part::Notes).await
    }
}
