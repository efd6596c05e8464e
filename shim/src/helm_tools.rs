//! Helm tools: releases read by the daemon from Helm's own storage (no
//! helm binary), on one cluster or many; and the writes (install, upgrade,
//! rollback, uninstall) the daemon runs with the helm CLI, one cluster,
//! through the same dry-run, plan and confirmation flow as every change.

use nskd_proto::v1 as pb;
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::wrapper::Parameters, model::CallToolResult,
    service::RequestContext, tool, tool_router,
};

use crate::{
    args::{
        HelmChangeArgs, HelmChartArgs, HelmHistoryArgs, HelmListArgs, HelmReleaseArgs,
        HelmRollbackArgs, HelmTextArgs, HelmValuesArgs, OutputFormat,
    },
    change_tools::options,
    confirm,
    tools::{NskdTools, client_name, kube_answer, output},
};

/// A Helm write, sent again with the plan once the user answered.
#[derive(Debug, Clone)]
struct HelmWrite(pb::HelmWriteRequest);

impl confirm::Confirmable for HelmWrite {
    fn with_change(mut self, options: pb::ChangeOptions) -> Self {
        self.0.change = Some(options);
        self
    }
}

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

impl NskdTools {
    /// Sends a Helm write (asking the user when a confirm rule holds it).
    async fn helm_write(
        &self,
        ctx: &RequestContext<RoleServer>,
        request: pb::HelmWriteRequest,
    ) -> Result<CallToolResult, McpError> {
        let name = client_name(ctx);
        let answer = confirm::send_confirmed(&ctx.peer, HelmWrite(request), |w| {
            let name = name.clone();
            async move {
                self.session
                    .call_response(&name, |ch, id| {
                        let mut client = nskd_proto::client::helm_client(ch);
                        let req = id.request(w.0.clone());
                        async move { client.write(req).await }
                    })
                    .await
            }
        })
        .await;
        kube_answer(answer)
    }

    async fn chart_write(
        &self,
        ctx: &RequestContext<RoleServer>,
        action: pb::HelmAction,
        args: HelmChartArgs,
    ) -> Result<CallToolResult, McpError> {
        let request = pb::HelmWriteRequest {
            target: Some(pb::Target {
                cluster: self.cluster_or_active(args.cluster).await,
                ..Default::default()
            }),
            action: action as i32,
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            chart: args.chart,
            version: args.version.unwrap_or_default(),
            values: args.values.unwrap_or_default(),
            revision: 0,
            change: options(args.dry_run, args.plan),
        };
        self.helm_write(ctx, request).await
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
        input_schema = crate::catalog::input_schema::<HelmListArgs>(),
        name = "helm_list",
        description = "List Helm releases.",
        annotations(title = "Helm: List", read_only_hint = true, open_world_hint = true)
    )]
    async fn helm_list(
        &self,
        Parameters(args): Parameters<HelmListArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = pb::HelmListRequest {
            target: Some(
                self.target(args.cluster, args.clusters.as_ref(), args.live)
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
        input_schema = crate::catalog::input_schema::<HelmReleaseArgs>(),
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
        input_schema = crate::catalog::input_schema::<HelmHistoryArgs>(),
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
        input_schema = crate::catalog::input_schema::<HelmValuesArgs>(),
        name = "helm_get_values",
        description = "A Helm release's values; credentials masked.",
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
        input_schema = crate::catalog::input_schema::<HelmTextArgs>(),
        name = "helm_get_manifest",
        description = "A Helm release's manifest; Secrets masked.",
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
        input_schema = crate::catalog::input_schema::<HelmTextArgs>(),
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

    #[tool(
        input_schema = crate::catalog::input_schema::<HelmChartArgs>(),
        name = "helm_install",
        description = "Install a Helm chart.",
        annotations(
            title = "Helm: Install",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn helm_install(
        &self,
        Parameters(args): Parameters<HelmChartArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.chart_write(&ctx, pb::HelmAction::Install, args).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<HelmChartArgs>(),
        name = "helm_upgrade",
        description = "Upgrade a Helm release.",
        annotations(
            title = "Helm: Upgrade",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn helm_upgrade(
        &self,
        Parameters(args): Parameters<HelmChartArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.chart_write(&ctx, pb::HelmAction::Upgrade, args).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<HelmRollbackArgs>(),
        name = "helm_rollback",
        description = "Roll back a Helm release.",
        annotations(
            title = "Helm: Rollback",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn helm_rollback(
        &self,
        Parameters(args): Parameters<HelmRollbackArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = pb::HelmWriteRequest {
            target: Some(pb::Target {
                cluster: self.cluster_or_active(args.cluster).await,
                ..Default::default()
            }),
            action: pb::HelmAction::Rollback as i32,
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            revision: args.revision.unwrap_or(0),
            change: options(args.dry_run, args.plan),
            ..Default::default()
        };
        self.helm_write(&ctx, request).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<HelmChangeArgs>(),
        name = "helm_uninstall",
        description = "Uninstall a Helm release.",
        annotations(
            title = "Helm: Uninstall",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn helm_uninstall(
        &self,
        Parameters(args): Parameters<HelmChangeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let request = pb::HelmWriteRequest {
            target: Some(pb::Target {
                cluster: self.cluster_or_active(args.cluster).await,
                ..Default::default()
            }),
            action: pb::HelmAction::Uninstall as i32,
            namespace: args.namespace.unwrap_or_default(),
            name: args.name,
            change: options(args.dry_run, args.plan),
            ..Default::default()
        };
        self.helm_write(&ctx, request).await
    }
}
