//! `nskd.v1.Kube`: Kubernetes operations on one or many clusters.

use std::sync::Arc;

use nskd_proto::v1::{self as pb, kube_server::Kube};
use tonic::{Request, Response, Status};

use super::Caller;
use crate::{
    app::{App, ClusterAnswer, Targets},
    ops::{Output, get::GetArgs, list::ListArgs},
};

/// The Kube service.
#[derive(Debug)]
pub struct KubeService {
    app: Arc<App>,
}

impl KubeService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    fn targets(&self, target: Option<&pb::Target>) -> Result<Targets, Status> {
        let (cluster, clusters) = target
            .map(|t| (t.cluster.as_str(), t.clusters.as_slice()))
            .unwrap_or(("", &[]));
        Ok(self.app.targets(cluster, clusters)?)
    }
}

fn output(o: i32) -> Output {
    match pb::OutputFormat::try_from(o).unwrap_or(pb::OutputFormat::Table) {
        pb::OutputFormat::Table => Output::Table,
        pb::OutputFormat::Yaml => Output::Yaml,
        pb::OutputFormat::Json => Output::Json,
    }
}

fn result(answers: Vec<ClusterAnswer>, skipped: Vec<String>) -> pb::KubeResult {
    pb::KubeResult {
        skipped,
        results: answers
            .into_iter()
            .map(|a| {
                let elapsed_us = a.elapsed.as_micros() as u64;
                match a.result {
                    Ok(r) => pb::ClusterResult {
                        cluster: a.cluster,
                        ok: true,
                        text: r.text,
                        items: r.items,
                        omitted: r.omitted,
                        elapsed_us,
                        from_cache: r.from_cache,
                    },
                    Err(e) => pb::ClusterResult {
                        cluster: a.cluster,
                        ok: false,
                        text: crate::redact::redact(&e.to_string()),
                        items: 0,
                        omitted: 0,
                        elapsed_us,
                        from_cache: false,
                    },
                }
            })
            .collect(),
    }
}

/// What a read call was about, for the audit log.
struct ReadFacts {
    verb: &'static str,
    kind: String,
    namespace: String,
    name: String,
}

impl KubeService {
    /// Audits a read, marks partial/failed answers for the metrics, and
    /// builds the response.
    fn answer(
        &self,
        caller: &Caller,
        facts: ReadFacts,
        clusters: &str,
        started: std::time::Instant,
        answers: Vec<ClusterAnswer>,
        skipped: Vec<String>,
    ) -> Response<pb::KubeResult> {
        let failed: Vec<String> = answers
            .iter()
            .filter_map(|a| {
                a.result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", a.cluster))
            })
            .collect();
        let outcome = if failed.is_empty() {
            "ok".to_string()
        } else {
            failed.join("; ")
        };
        let mut entry =
            crate::audit::entry(caller, facts.verb, clusters, &outcome, started.elapsed());
        entry.resource = facts.kind;
        entry.namespace = facts.namespace;
        entry.name = facts.name;
        self.app.audit.record(entry, false);
        let total = answers.len();
        let mut resp = Response::new(result(answers, skipped));
        if !failed.is_empty() {
            super::mark_outcome(
                &mut resp,
                if failed.len() == total {
                    "error"
                } else {
                    "partial"
                },
            );
        }
        resp
    }
}

#[tonic::async_trait]
impl Kube for KubeService {
    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let targets = self.targets(req.target.as_ref())?;
        tracing::debug!(session = %caller.session, client = %caller.client, tool = %caller.tool, kind = %req.kind, clusters = ?targets.names, "list");
        let args = ListArgs {
            api_version: req.api_version,
            kind: req.kind,
            namespace: Some(req.namespace).filter(|n| !n.is_empty()),
            label_selector: Some(req.label_selector),
            field_selector: Some(req.field_selector),
            limit: req.limit,
            output: output(req.output),
            live: req.target.as_ref().is_some_and(|t| t.live),
        };
        let started = std::time::Instant::now();
        let clusters = targets.names.join(",");
        let facts = ReadFacts {
            verb: "list",
            kind: args.kind.clone(),
            namespace: args.namespace.clone().unwrap_or_default(),
            name: String::new(),
        };
        let answers = self.app.list(targets.names, &args).await;
        Ok(self.answer(&caller, facts, &clusters, started, answers, targets.skipped))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_object(request, "get").await
    }

    async fn describe(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_object(request, "describe").await
    }

    async fn delete(
        &self,
        request: Request<pb::ObjectRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.object_op(request, ObjectOp::Delete).await
    }

    async fn scale(
        &self,
        request: Request<pb::ScaleRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let c = self.change(req.object, false)?;
        let (o, replicas) = (c.object.clone(), req.replicas);
        Ok(self
            .run_change(&caller, &c, "scale", true, |cc, opts| {
                let o = o.clone();
                async move { crate::ops::mutate::scale(&cc, &o, replicas, &opts).await }
            })
            .await)
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let c = self.change(
            Some(pb::ObjectRequest {
                cluster: req.cluster.clone(),
                ..Default::default()
            }),
            false,
        )?;
        let namespace = Some(req.namespace).filter(|n| !n.is_empty());
        let (manifest, run) = (req.manifest, req.run);
        Ok(self
            .run_change(&caller, &c, "apply", true, |cc, opts| {
                let (manifest, namespace) = (manifest.clone(), namespace.clone());
                async move {
                    crate::ops::mutate::apply(&cc, &manifest, namespace.as_deref(), run, &opts)
                        .await
                }
            })
            .await)
    }

    async fn rollout_restart(
        &self,
        request: Request<pb::ObjectRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.object_op(request, ObjectOp::RolloutRestart).await
    }

    async fn node_read(
        &self,
        request: Request<pb::NodeReadRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let c = self.change(
            Some(pb::ObjectRequest {
                cluster: req.cluster.clone(),
                kind: "Node".into(),
                name: req.node.clone(),
                clusters: req.clusters.clone(),
                ..Default::default()
            }),
            true,
        )?;
        let read = crate::ops::nodeproxy::NodeRead {
            node: req.node,
            path: req.path,
            tail: req.tail as usize,
        };
        Ok(self
            .run_change(&caller, &c, "node-read", false, |cc, opts| {
                let read = read.clone();
                async move { crate::ops::nodeproxy::read(&cc, &read, &opts).await }
            })
            .await)
    }

    async fn exec(
        &self,
        request: Request<pb::ExecRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let c = self.change(
            Some(pb::ObjectRequest {
                cluster: req.cluster.clone(),
                kind: "Pod".into(),
                namespace: req.namespace.clone(),
                name: req.name.clone(),
                ..Default::default()
            }),
            false,
        )?;
        let args = crate::ops::exec::ExecArgs {
            namespace: Some(req.namespace).filter(|n| !n.is_empty()),
            name: req.name,
            container: Some(req.container).filter(|n| !n.is_empty()),
            command: req.command,
        };
        Ok(self
            .run_change(&caller, &c, "exec", true, |cc, opts| {
                let args = args.clone();
                async move { crate::ops::exec::exec(&cc, &args, &opts).await }
            })
            .await)
    }

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let c = self.change(
            Some(pb::ObjectRequest {
                cluster: req.cluster.clone(),
                kind: "Pod".into(),
                namespace: req.namespace.clone(),
                name: req.name.clone(),
                clusters: req.clusters.clone(),
                ..Default::default()
            }),
            true,
        )?;
        let args = crate::ops::logs::LogArgs {
            namespace: Some(req.namespace).filter(|n| !n.is_empty()),
            name: req.name,
            container: Some(req.container).filter(|n| !n.is_empty()),
            previous: req.previous,
            tail: req.tail,
            since_seconds: req.since_seconds,
        };
        Ok(self
            .run_change(&caller, &c, "logs", false, |cc, opts| {
                let args = args.clone();
                async move { crate::ops::logs::logs(&cc, &args, &opts).await }
            })
            .await)
    }

    async fn rollout_status(
        &self,
        request: Request<pb::ObjectRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.object_op(request, ObjectOp::RolloutStatus).await
    }
}

impl KubeService {
    /// `get` or `describe` of one object on the target clusters.
    async fn one_object(
        &self,
        request: Request<pb::GetRequest>,
        verb: &'static str,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let targets = self.targets(req.target.as_ref())?;
        tracing::debug!(session = %caller.session, client = %caller.client, tool = %caller.tool, kind = %req.kind, name = %req.name, clusters = ?targets.names, verb);
        let args = GetArgs {
            api_version: req.api_version,
            kind: req.kind,
            namespace: Some(req.namespace).filter(|n| !n.is_empty()),
            name: req.name,
            output: output(req.output),
            live: req.target.as_ref().is_some_and(|t| t.live),
        };
        let started = std::time::Instant::now();
        let clusters = targets.names.join(",");
        let facts = ReadFacts {
            verb,
            kind: args.kind.clone(),
            namespace: args.namespace.clone().unwrap_or_default(),
            name: args.name.clone(),
        };
        let answers = self
            .app
            .each(targets.names, verb, |cc, opts| {
                let args = args.clone();
                async move {
                    match verb {
                        "describe" => crate::ops::describe::describe(&cc, &args, &opts).await,
                        _ => crate::ops::get::get(&cc, &args, &opts).await,
                    }
                }
            })
            .await;
        Ok(self.answer(&caller, facts, &clusters, started, answers, targets.skipped))
    }
}

/// Operations on one named object.
#[derive(Debug, Clone, Copy)]
enum ObjectOp {
    Delete,
    RolloutRestart,
    RolloutStatus,
}

impl KubeService {
    /// Runs `op` on the object of `request` (one cluster), audited.
    async fn object_op(
        &self,
        request: Request<pb::ObjectRequest>,
        op: ObjectOp,
    ) -> Result<Response<pb::KubeResult>, Status> {
        use crate::ops::mutate;
        let caller = Caller::of(&request);
        let c = self.change(
            Some(request.into_inner()),
            matches!(op, ObjectOp::RolloutStatus),
        )?;
        let (verb, mutating) = match op {
            ObjectOp::Delete => ("delete", true),
            ObjectOp::RolloutRestart => ("rollout-restart", true),
            ObjectOp::RolloutStatus => ("rollout-status", false),
        };
        let o = c.object.clone();
        Ok(self
            .run_change(&caller, &c, verb, mutating, |cc, opts| {
                let o = o.clone();
                async move {
                    match op {
                        ObjectOp::Delete => mutate::delete(&cc, &o, &opts).await,
                        ObjectOp::RolloutRestart => mutate::rollout_restart(&cc, &o, &opts).await,
                        ObjectOp::RolloutStatus => mutate::rollout_status(&cc, &o, &opts).await,
                    }
                }
            })
            .await)
    }
}

/// What a change request is about, resolved to one cluster.
struct Change {
    /// Clusters to run on (one for changes).
    clusters: Vec<String>,
    /// What "*" skipped.
    skipped: Vec<String>,
    /// For the audit log.
    cluster: String,
    object: crate::ops::mutate::ObjectRef,
}

impl KubeService {
    /// Resolves the object and its clusters: several only for reads.
    fn change(&self, r: Option<pb::ObjectRequest>, read: bool) -> Result<Change, Status> {
        let r = r.unwrap_or_default();
        if !read && !r.clusters.is_empty() {
            return Err(crate::error::OpError::InvalidArgument(
                "changes run on one cluster at a time: pass `cluster`, not `clusters`".into(),
            )
            .into());
        }
        let targets = self.app.targets(&r.cluster, &r.clusters)?;
        Ok(Change {
            cluster: targets.names.join(","),
            skipped: targets.skipped,
            clusters: targets.names,
            object: crate::ops::mutate::ObjectRef {
                api_version: r.api_version,
                kind: r.kind,
                namespace: Some(r.namespace).filter(|n| !n.is_empty()),
                name: r.name,
                grace_period_seconds: u32::try_from(r.grace_period_seconds)
                    .ok()
                    .filter(|_| r.grace_period_seconds >= 0),
            },
        })
    }

    /// Runs `op` on the clusters of `c`, audits it (changes always, reads
    /// when enabled) and answers.
    async fn run_change<F, Fut>(
        &self,
        caller: &Caller,
        c: &Change,
        verb: &'static str,
        mutating: bool,
        op: F,
    ) -> Response<pb::KubeResult>
    where
        F: Fn(std::sync::Arc<crate::pool::ClusterClient>, crate::ops::list::OpOptions) -> Fut,
        Fut: std::future::Future<Output = Result<crate::ops::Rendered, crate::error::OpError>>,
    {
        let started = std::time::Instant::now();
        let answers = self.app.each(c.clusters.clone(), verb, op).await;
        let outcome = match answers.first().map(|a| &a.result) {
            Some(Err(e)) => e.to_string(),
            _ => "ok".to_string(),
        };
        let mut entry = crate::audit::entry(caller, verb, &c.cluster, &outcome, started.elapsed());
        entry.resource = c.object.kind.clone();
        entry.namespace = c.object.namespace.clone().unwrap_or_default();
        entry.name = c.object.name.clone();
        self.app.audit.record(entry, mutating);
        let failed = answers.iter().any(|a| a.result.is_err());
        let mut resp = Response::new(result(answers, c.skipped.clone()));
        if failed {
            super::mark_outcome(&mut resp, "error");
        }
        resp
    }
}
