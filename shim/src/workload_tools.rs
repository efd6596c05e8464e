//! Tools for workload maintenance: rollout history/undo/pause/resume, node
//! cordon/uncordon/drain, pod cleanup (the daemon's Workload service; its
//! change engine runs dryRun and plan).

use nskd_proto::v1 as pb;
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::wrapper::Parameters, model::CallToolResult,
    service::RequestContext, tool, tool_router,
};

use crate::{
    args::{
        DeploymentChangeArgs, NodeChangeArgs, NodesDrainArgs, PodsCleanupArgs, RolloutHistoryArgs,
        RolloutUndoArgs,
    },
    confirm,
    tools::{NskdTools, client_name, kube_answer},
};

/// Which Workload RPC a tool goes to.
#[derive(Debug, Clone)]
enum WorkloadCall {
    History(pb::RolloutRequest),
    Undo(pb::RolloutRequest),
    Pause(pb::RolloutRequest),
    Resume(pb::RolloutRequest),
    Cordon(pb::NodeRequest),
    Uncordon(pb::NodeRequest),
    Drain(pb::DrainRequest),
    Cleanup(pb::CleanupRequest),
}

impl confirm::Confirmable for WorkloadCall {
    fn with_change(mut self, options: pb::ChangeOptions) -> Self {
        let options = Some(options);
        match &mut self {
            WorkloadCall::Undo(r) | WorkloadCall::Pause(r) | WorkloadCall::Resume(r) => {
                if let Some(o) = &mut r.object {
                    o.change = options;
                }
            }
            WorkloadCall::Cordon(r) | WorkloadCall::Uncordon(r) => r.change = options,
            WorkloadCall::Drain(r) => {
                if let Some(n) = &mut r.node {
                    n.change = options;
                }
            }
            WorkloadCall::Cleanup(r) => r.change = options,
            WorkloadCall::History(_) => {}
        }
        self
    }
}

fn change(dry_run: bool, plan: Option<String>) -> Option<pb::ChangeOptions> {
    Some(pb::ChangeOptions {
        dry_run,
        plan: plan.unwrap_or_default(),
        ..Default::default()
    })
}

impl NskdTools {
    async fn workload(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: WorkloadCall,
    ) -> Result<CallToolResult, McpError> {
        let name = client_name(ctx);
        let answer = confirm::send_confirmed(&ctx.peer, call, |call| {
            let name = name.clone();
            async move {
                self.session
                    .call_response(&name, |ch, id| {
                        let mut client = nskd_proto::client::workload_client(ch);
                        let call = call.clone();
                        let id = id.clone();
                        async move {
                            match call {
                                WorkloadCall::History(r) => {
                                    client.rollout_history(id.request(r)).await
                                }
                                WorkloadCall::Undo(r) => client.rollout_undo(id.request(r)).await,
                                WorkloadCall::Pause(r) => client.rollout_pause(id.request(r)).await,
                                WorkloadCall::Resume(r) => {
                                    client.rollout_resume(id.request(r)).await
                                }
                                WorkloadCall::Cordon(r) => client.nodes_cordon(id.request(r)).await,
                                WorkloadCall::Uncordon(r) => {
                                    client.nodes_uncordon(id.request(r)).await
                                }
                                WorkloadCall::Drain(r) => client.nodes_drain(id.request(r)).await,
                                WorkloadCall::Cleanup(r) => {
                                    client.pods_cleanup(id.request(r)).await
                                }
                            }
                        }
                    })
                    .await
            }
        })
        .await;
        kube_answer(answer)
    }

    async fn deployment(&self, a: DeploymentChangeArgs) -> pb::RolloutRequest {
        pb::RolloutRequest {
            object: Some(pb::ObjectRequest {
                cluster: self.cluster_or_active(a.cluster).await,
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: a.namespace.unwrap_or_default(),
                name: a.name,
                grace_period_seconds: -1,
                clusters: Vec::new(),
                change: change(a.dry_run, a.plan),
            }),
            to_revision: 0,
        }
    }

    async fn node(&self, a: NodeChangeArgs) -> pb::NodeRequest {
        pb::NodeRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            node: a.name,
            change: change(a.dry_run, a.plan),
        }
    }
}

#[tool_router(router = workload_tool_router, vis = "pub(crate)")]
impl NskdTools {
    #[tool(
        input_schema = crate::catalog::input_schema::<RolloutHistoryArgs>(),
        name = "rollout_history",
        description = "A workload's revisions with images and change-cause.",
        annotations(
            title = "Rollout: History",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn rollout_history(
        &self,
        Parameters(a): Parameters<RolloutHistoryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::RolloutRequest {
            object: Some(pb::ObjectRequest {
                cluster: self.cluster_or_active(a.cluster).await,
                api_version: a.api_version,
                kind: a.kind,
                namespace: a.namespace.unwrap_or_default(),
                name: a.name,
                grace_period_seconds: -1,
                clusters: a.clusters.map(|c| c.names()).unwrap_or_default(),
                change: None,
            }),
            to_revision: 0,
        };
        self.workload(&ctx, WorkloadCall::History(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<RolloutUndoArgs>(),
        name = "rollout_undo",
        description = "Roll a workload back to the previous revision or `toRevision`.",
        annotations(
            title = "Rollout: Undo",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn rollout_undo(
        &self,
        Parameters(a): Parameters<RolloutUndoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::RolloutRequest {
            object: Some(pb::ObjectRequest {
                cluster: self.cluster_or_active(a.cluster).await,
                api_version: a.api_version,
                kind: a.kind,
                namespace: a.namespace.unwrap_or_default(),
                name: a.name,
                grace_period_seconds: -1,
                clusters: Vec::new(),
                change: change(a.dry_run, a.plan),
            }),
            to_revision: a.to_revision.unwrap_or(0),
        };
        self.workload(&ctx, WorkloadCall::Undo(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<DeploymentChangeArgs>(),
        name = "rollout_pause",
        description = "Pause a Deployment's rollouts; running pods stay.",
        annotations(
            title = "Rollout: Pause",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn rollout_pause(
        &self,
        Parameters(a): Parameters<DeploymentChangeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.deployment(a).await;
        self.workload(&ctx, WorkloadCall::Pause(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<DeploymentChangeArgs>(),
        name = "rollout_resume",
        description = "Resume a paused Deployment; a held rollout then proceeds.",
        annotations(
            title = "Rollout: Resume",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn rollout_resume(
        &self,
        Parameters(a): Parameters<DeploymentChangeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.deployment(a).await;
        self.workload(&ctx, WorkloadCall::Resume(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NodeChangeArgs>(),
        name = "nodes_cordon",
        description = "Mark a node unschedulable; its pods keep running.",
        annotations(
            title = "Nodes: Cordon",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn nodes_cordon(
        &self,
        Parameters(a): Parameters<NodeChangeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.node(a).await;
        self.workload(&ctx, WorkloadCall::Cordon(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NodeChangeArgs>(),
        name = "nodes_uncordon",
        description = "Mark a node schedulable again.",
        annotations(
            title = "Nodes: Uncordon",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn nodes_uncordon(
        &self,
        Parameters(a): Parameters<NodeChangeArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.node(a).await;
        self.workload(&ctx, WorkloadCall::Uncordon(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NodesDrainArgs>(),
        name = "nodes_drain",
        description = "Cordon a node and evict its pods, honouring disruption budgets.",
        annotations(
            title = "Nodes: Drain",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn nodes_drain(
        &self,
        Parameters(a): Parameters<NodesDrainArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::DrainRequest {
            node: Some(pb::NodeRequest {
                cluster: self.cluster_or_active(a.cluster).await,
                node: a.name,
                change: change(a.dry_run, a.plan),
            }),
            timeout_seconds: a.timeout.unwrap_or(0),
            force: a.force,
        };
        self.workload(&ctx, WorkloadCall::Drain(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsCleanupArgs>(),
        name = "pods_cleanup",
        description = "Delete a namespace's Failed, Evicted and Succeeded pods.",
        annotations(
            title = "Pods: Cleanup",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn pods_cleanup(
        &self,
        Parameters(a): Parameters<PodsCleanupArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::CleanupRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            namespace: a.namespace.unwrap_or_default(),
            change: change(a.dry_run, a.plan),
        };
        self.workload(&ctx, WorkloadCall::Cleanup(r)).await
    }
}
