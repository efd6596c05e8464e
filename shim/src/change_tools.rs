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
        ApplyArgs, NodeNameArgs, NodesLogArgs, ObjectArgs, PodsDeleteArgs, PodsExecArgs,
        PodsLogArgs, PodsRunArgs, ScaleArgs,
    },
    tools::{NskdTools, client_name, kube_answer},
};

/// Which Kube RPC a change goes to.
#[derive(Debug, Clone)]
enum ChangeCall {
    Delete(pb::ObjectRequest),
    Scale(pb::ScaleRequest),
    Apply(pb::ApplyRequest),
    Restart(pb::ObjectRequest),
    Status(pb::ObjectRequest),
    Logs(pb::LogsRequest),
    Exec(pb::ExecRequest),
    NodeRead(pb::NodeReadRequest),
}

impl NskdTools {
    async fn cluster_or_active(&self, cluster: Option<String>) -> String {
        match cluster.filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => self.session.active().await.unwrap_or_default(),
        }
    }

    async fn object(&self, a: ObjectArgs) -> pb::ObjectRequest {
        pb::ObjectRequest {
            cluster: self.cluster_or_active(a.cluster).await,
            api_version: a.api_version,
            kind: a.kind,
            namespace: a.namespace.unwrap_or_default(),
            name: a.name,
            grace_period_seconds: a.grace_period_seconds.unwrap_or(-1),
            clusters: a.clusters.map(|c| c.names()).unwrap_or_default(),
        }
    }

    async fn change(
        &self,
        ctx: &RequestContext<RoleServer>,
        call: ChangeCall,
    ) -> Result<CallToolResult, McpError> {
        let result = self
            .session
            .call(&client_name(ctx), |ch, id| {
                let mut client = nskd_proto::client::kube_client(ch);
                let call = call.clone();
                let id = id.clone();
                async move {
                    match call {
                        ChangeCall::Delete(r) => client.delete(id.request(r)).await,
                        ChangeCall::Scale(r) => client.scale(id.request(r)).await,
                        ChangeCall::Apply(r) => client.apply(id.request(r)).await,
                        ChangeCall::Restart(r) => client.rollout_restart(id.request(r)).await,
                        ChangeCall::Status(r) => client.rollout_status(id.request(r)).await,
                        ChangeCall::Logs(r) => client.logs(id.request(r)).await,
                        ChangeCall::Exec(r) => client.exec(id.request(r)).await,
                        ChangeCall::NodeRead(r) => client.node_read(id.request(r)).await,
                    }
                }
            })
            .await;
        kube_answer(result)
    }
}

#[tool_router(router = change_tool_router, vis = "pub(crate)")]
impl NskdTools {
    #[tool(
        name = "resources_delete",
        description = "Delete one Kubernetes resource by apiVersion, kind, name and namespace. Refused when the environment is read-only or destructive operations are disabled.",
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
        Parameters(a): Parameters<ObjectArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.object(a).await;
        self.change(&ctx, ChangeCall::Delete(r)).await
    }

    #[tool(
        name = "pods_delete",
        description = "Delete one pod by name and namespace (its controller, if any, creates a replacement).",
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
        let r = self
            .object(ObjectArgs {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: a.name,
                namespace: a.namespace,
                cluster: a.cluster,
                grace_period_seconds: None,
                clusters: None,
            })
            .await;
        self.change(&ctx, ChangeCall::Delete(r)).await
    }

    #[tool(
        name = "resources_scale",
        description = "Set the number of replicas of a Deployment, StatefulSet or ReplicaSet (`scale`). Says the previous count.",
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
        let object = self
            .object(ObjectArgs {
                api_version: a.api_version,
                kind: a.kind,
                name: a.name,
                namespace: a.namespace,
                cluster: a.cluster,
                grace_period_seconds: None,
                clusters: None,
            })
            .await;
        self.change(
            &ctx,
            ChangeCall::Scale(pb::ScaleRequest {
                object: Some(object),
                replicas,
            }),
        )
        .await
    }

    #[tool(
        name = "resources_create_or_update",
        description = "Create or update Kubernetes resources from a YAML or JSON manifest (`resource`; several YAML documents allowed) with server-side apply. Overwriting an existing object counts as destructive.",
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
        };
        self.change(&ctx, ChangeCall::Apply(r)).await
    }

    #[tool(
        name = "rollout_restart",
        description = "Restart the pods of a Deployment, StatefulSet or DaemonSet (like `kubectl rollout restart`).",
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
        Parameters(a): Parameters<ObjectArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.object(a).await;
        self.change(&ctx, ChangeCall::Restart(r)).await
    }

    #[tool(
        name = "pods_run",
        description = "Run a pod with one container from `image` (name derived from the image unless given), optionally declaring `port`.",
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
        };
        self.change(&ctx, ChangeCall::Apply(r)).await
    }

    #[tool(
        name = "pods_exec",
        description = "Run a command in a pod's container (through the API server and the node's kubelet) and return its stdout and stderr; a non-zero exit is an error with the exit code. Refused when destructive operations are disabled.",
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
        name = "nodes_log",
        description = "Read a log file of a node's kubelet host through the API server's node proxy (`query`, e.g. \"kubelet.log\"; empty lists the files), optionally only the last `tailLines`.",
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
        name = "nodes_stats_summary",
        description = "The kubelet's stats summary of a node (CPU, memory, filesystem, network, per-pod usage) through the API server's node proxy.",
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
        name = "pods_log",
        description = "Get a pod container's log (through the API server and the node's kubelet): `container` when the pod has several, `previous` for the crashed instance, `tail` lines, `since` seconds. Long logs keep the newest lines.",
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
            name: a.name,
            container: a.container.unwrap_or_default(),
            previous: a.previous,
            tail: a.tail.unwrap_or(0),
            since_seconds: a.since.unwrap_or(0),
            clusters: a.clusters.map(|c| c.names()).unwrap_or_default(),
        };
        self.change(&ctx, ChangeCall::Logs(r)).await
    }

    #[tool(
        name = "rollout_status",
        description = "Where the rollout of a Deployment, StatefulSet or DaemonSet stands (like `kubectl rollout status`, without waiting).",
        annotations(
            title = "Rollout: Status",
            read_only_hint = true,
            open_world_hint = true
        )
    )]
    async fn rollout_status(
        &self,
        Parameters(a): Parameters<ObjectArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let r = self.object(a).await;
        self.change(&ctx, ChangeCall::Status(r)).await
    }
}
