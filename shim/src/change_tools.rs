//! Tools that change clusters: delete, scale, create-or-update (server-side
//! apply), rollout restart, plus rollout status. The daemon enforces
//! read_only / disable_destructive / denied_resources and audits each call.

use nskd_proto::v1 as pb;
use rmcp::{
    ErrorData as McpError, RoleServer, handler::server::wrapper::Parameters, model::CallToolResult,
    service::RequestContext, tool, tool_router,
};

use crate::{
    args::{
        ApplyArgs, DeleteArgs, NodeNameArgs, NodesLogArgs, ObjectArgs, ObjectReadArgs, PatchArgs,
        PatchKind, PodsDeleteArgs, PodsExecArgs, PodsLogArgs, PodsRunArgs, RestartArgs, ScaleArgs,
    },
    confirm,
    tools::{NskdTools, client_name, kube_answer},
};

/// The change options of a call (`None` when it asks for nothing).
pub(crate) fn options(dry_run: bool, plan: Option<String>) -> Option<pb::ChangeOptions> {
    let plan = plan.unwrap_or_default();
    (dry_run || !plan.is_empty()).then_some(pb::ChangeOptions {
        dry_run,
        plan,
        confirmation: pb::Confirmation::None as i32,
    })
}

/// Which Kube RPC a change goes to.
#[derive(Debug, Clone)]
enum ChangeCall {
    Delete(pb::ObjectRequest),
    Scale(pb::ScaleRequest),
    Apply(pb::ApplyRequest),
    Restart(pb::ObjectRequest),
    Patch(pb::PatchRequest),
    Status(pb::ObjectRequest),
    Logs(pb::LogsRequest),
    Exec(pb::ExecRequest),
    NodeRead(pb::NodeReadRequest),
}

impl NskdTools {
    pub(crate) async fn cluster_or_active(&self, cluster: Option<String>) -> String {
        match cluster.filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => self.session.active().await.unwrap_or_default(),
        }
    }

    /// One object on one cluster (a change), without options yet.
    async fn one_object(
        &self,
        api_version: String,
        kind: String,
        name: String,
        namespace: Option<String>,
        cluster: Option<String>,
    ) -> pb::ObjectRequest {
        self.object(ObjectArgs {
            api_version,
            kind,
            name,
            namespace,
            cluster,
        })
        .await
    }

    async fn object(&self, a: ObjectArgs) -> pb::ObjectRequest {
        pb::ObjectRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            api_version: a.api_version,
            kind: a.kind,
            namespace: a.namespace.unwrap_or_default(),
            name: a.name,
            grace_period_seconds: -1,
            clusters: Vec::new(),
            change: None,
        }
    }

    /// Sends `call`; when the daemon answers that the change waits for
    /// the user's confirmation, asks the user through the MCP client and
    /// sends the call again with the plan and the answer.
    async fn change(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: ChangeCall,
    ) -> Result<CallToolResult, McpError> {
        let answer =
            confirm::send_confirmed(&ctx.peer, call, |c| async move { self.send(ctx, &c).await })
                .await;
        kube_answer(answer)
    }

    async fn send(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: &ChangeCall,
    ) -> Result<(tonic::Response<pb::KubeResult>, pb::DaemonInfo), String> {
        self.session
            .call_response(&client_name(ctx), |ch, id| {
                let mut client = nskd_proto::client::kube_client(ch.clone());
                let mut changes = nskd_proto::client::changes_client(ch);
                let call = call.clone();
                let id = id.clone();
                async move {
                    match call {
                        ChangeCall::Delete(r) => client.delete(id.request(r)).await,
                        ChangeCall::Scale(r) => client.scale(id.request(r)).await,
                        ChangeCall::Apply(r) => client.apply(id.request(r)).await,
                        ChangeCall::Restart(r) => client.rollout_restart(id.request(r)).await,
                        ChangeCall::Patch(r) => changes.patch(id.request(r)).await,
                        ChangeCall::Status(r) => client.rollout_status(id.request(r)).await,
                        ChangeCall::Logs(r) => client.logs(id.request(r)).await,
                        ChangeCall::Exec(r) => client.exec(id.request(r)).await,
                        ChangeCall::NodeRead(r) => client.node_read(id.request(r)).await,
                    }
                }
            })
            .await
    }
}

impl confirm::Confirmable for ChangeCall {
    fn with_change(mut self, options: pb::ChangeOptions) -> Self {
        let options = Some(options);
        match &mut self {
            ChangeCall::Delete(r) | ChangeCall::Restart(r) => r.change = options,
            ChangeCall::Scale(r) => r.change = options,
            ChangeCall::Apply(r) => r.change = options,
            ChangeCall::Patch(r) => r.change = options,
            _ => {}
        }
        self
    }
}

#[tool_router(router = change_tool_router, vis = "pub(crate)")]
impl NskdTools {
    #[tool(
        input_schema = crate::catalog::input_schema::<DeleteArgs>(),
        name = "resources_delete",
        description = "Delete one Kubernetes object.",
        annotations(
            title = "Resources: Delete",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn resources_delete(
        &self,
        Parameters(a): Parameters<DeleteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let change = options(a.dry_run, a.plan.clone());
        let (object, grace) = a.split();
        let r = pb::ObjectRequest {
            grace_period_seconds: grace,
            change,
            ..self.object(object).await
        };
        self.change(&ctx, ChangeCall::Delete(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsDeleteArgs>(),
        name = "pods_delete",
        description = "Delete a pod.",
        annotations(
            title = "Pods: Delete",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn pods_delete(
        &self,
        Parameters(a): Parameters<PodsDeleteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let change = options(a.dry_run, a.plan);
        let mut r = self
            .object(ObjectArgs {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: a.name,
                namespace: a.namespace,
                cluster: a.cluster,
            })
            .await;
        r.change = change;
        self.change(&ctx, ChangeCall::Delete(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<ScaleArgs>(),
        name = "resources_scale",
        description = "Set the replicas of a Deployment, StatefulSet or ReplicaSet.",
        annotations(
            title = "Resources: Scale",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn resources_scale(
        &self,
        Parameters(a): Parameters<ScaleArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let replicas = a.scale;
        let change = options(a.dry_run, a.plan);
        let object = self
            .one_object(a.api_version, a.kind, a.name, a.namespace, a.cluster)
            .await;
        self.change(
            &ctx,
            ChangeCall::Scale(pb::ScaleRequest {
                object: Some(object),
                replicas,
                change,
            }),
        )
        .await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<ApplyArgs>(),
        name = "resources_create_or_update",
        description = "Create or update objects from a manifest (server-side apply).",
        annotations(
            title = "Resources: Create or Update",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn resources_create_or_update(
        &self,
        Parameters(a): Parameters<ApplyArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::ApplyRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            manifest: a.resource,
            namespace: a.namespace.unwrap_or_default(),
            run: false,
            change: options(a.dry_run, a.plan),
        };
        self.change(&ctx, ChangeCall::Apply(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<RestartArgs>(),
        name = "rollout_restart",
        description = "Restart a workload's pods.",
        annotations(
            title = "Rollout: Restart",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn rollout_restart(
        &self,
        Parameters(a): Parameters<RestartArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let change = options(a.dry_run, a.plan);
        let mut r = self
            .one_object(a.api_version, a.kind, a.name, a.namespace, a.cluster)
            .await;
        r.change = change;
        self.change(&ctx, ChangeCall::Restart(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PatchArgs>(),
        name = "resources_patch",
        description = "Patch one object: merge, json or strategic (built-in kinds).",
        annotations(
            title = "Resources: Patch",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn resources_patch(
        &self,
        Parameters(a): Parameters<PatchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let change = options(a.dry_run, a.plan);
        let patch = match a.patch {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        let object = self
            .one_object(a.api_version, a.kind, a.name, a.namespace, a.cluster)
            .await;
        let r = pb::PatchRequest {
            object: Some(object),
            r#type: match a.patch_type {
                PatchKind::Merge => pb::PatchType::Merge,
                PatchKind::Json => pb::PatchType::Json,
                PatchKind::Strategic => pb::PatchType::Strategic,
            } as i32,
            patch,
            change,
        };
        self.change(&ctx, ChangeCall::Patch(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsRunArgs>(),
        name = "pods_run",
        description = "Run a pod of one container from `image`.",
        annotations(
            title = "Pods: Run",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn pods_run(
        &self,
        Parameters(a): Parameters<PodsRunArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let base: String = a
            .image
            .rsplit('/')
            .next()
            .unwrap_or("pod")
            .split([':', '@'])
            .next()
            .unwrap_or("pod")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let suffix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 100_000)
            .unwrap_or(0);
        let name = a.name.unwrap_or_else(|| format!("{base}-{suffix}"));
        let mut container = serde_json::json!({"name": base, "image": a.image});
        if let Some(p) = a.port {
            container["ports"] = serde_json::json!([{"containerPort": p}]);
        }
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": base, "app.kubernetes.io/managed-by": "nskd"}},
            "spec": {"containers": [container]},
        });
        let r = pb::ApplyRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            manifest: pod.to_string(),
            namespace: a.namespace.unwrap_or_default(),
            run: true,
            change: options(a.dry_run, None),
        };
        self.change(&ctx, ChangeCall::Apply(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsExecArgs>(),
        name = "pods_exec",
        description = "Run a command in a container; stdout and stderr.",
        annotations(
            title = "Pods: Exec",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn pods_exec(
        &self,
        Parameters(a): Parameters<PodsExecArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::ExecRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            namespace: a.namespace.unwrap_or_default(),
            name: a.name,
            container: a.container.unwrap_or_default(),
            command: a.command,
        };
        self.change(&ctx, ChangeCall::Exec(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NodesLogArgs>(),
        name = "nodes_log",
        description = "A node's log file; empty `query` lists the files.",
        annotations(title = "Nodes: Log", read_only_hint = true, open_world_hint = true)
    )]
    async fn nodes_log(
        &self,
        Parameters(a): Parameters<NodesLogArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::NodeReadRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            node: a.name,
            path: format!("logs/{}", a.query.unwrap_or_default()),
            tail: a.tail_lines.unwrap_or(0),
            clusters: a.clusters.map(|c| c.names()).unwrap_or_default(),
        };
        self.change(&ctx, ChangeCall::NodeRead(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<NodeNameArgs>(),
        name = "nodes_stats_summary",
        description = "A node's kubelet stats summary.",
        annotations(
            title = "Nodes: Stats Summary",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn nodes_stats_summary(
        &self,
        Parameters(a): Parameters<NodeNameArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::NodeReadRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            node: a.name,
            path: "stats/summary".into(),
            tail: 0,
            clusters: a.clusters.map(|c| c.names()).unwrap_or_default(),
        };
        self.change(&ctx, ChangeCall::NodeRead(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<PodsLogArgs>(),
        name = "pods_log",
        description = "A pod's log, or merged logs of labelSelector pods; `grep` filters.",
        annotations(title = "Pods: Log", read_only_hint = true, open_world_hint = true)
    )]
    async fn pods_log(
        &self,
        Parameters(a): Parameters<PodsLogArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = pb::LogsRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            namespace: a.namespace.unwrap_or_default(),
            name: a.name.unwrap_or_default(),
            container: a.container.unwrap_or_default(),
            previous: a.previous,
            tail: a.tail.unwrap_or(0),
            since_seconds: a.since.unwrap_or(0),
            clusters: a.clusters.map(|c| c.names()).unwrap_or_default(),
            grep: a.grep.unwrap_or_default(),
            since_time: a.since_time.unwrap_or_default(),
            timestamps: a.timestamps,
            label_selector: a.label_selector.unwrap_or_default(),
        };
        self.change(&ctx, ChangeCall::Logs(r)).await
    }

    #[tool(
        input_schema = crate::catalog::input_schema::<ObjectReadArgs>(),
        name = "rollout_status",
        description = "Where a workload's rollout stands (no wait).",
        annotations(
            title = "Rollout: Status",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn rollout_status(
        &self,
        Parameters(a): Parameters<ObjectReadArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let (object, clusters) = a.split();
        let r = pb::ObjectRequest {
            clusters,
            ..self.object(object).await
        };
        self.change(&ctx, ChangeCall::Status(r)).await
    }
}
