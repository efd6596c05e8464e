//! `nskd.v1.Kube`: Kubernetes operations on one or many clusters. Every
//! request is checked here into typed parts ([`crate::request`]) before
//! anything else happens; a bad one is `InvalidArgument` and sends nothing.

use std::sync::Arc;

use nskd_proto::v1::{self as pb, kube_server::Kube};
use tonic::{Request, Response, Status};

use super::Caller;
use crate::{
    answer::{
        self, Answer, ListCall,
        page::Pages,
        shape::{RawShape, Shape},
    },
    app::{Answered, App, ClusterAnswer, Targets},
    error::OpError,
    ops::{
        OpOptions, Output, Rendered,
        change::{How, confirmation_word},
        exec::ExecArgs,
        get::GetArgs,
        list::ListArgs,
        logs::{LogArgs, LogPods},
        mutate::{ManifestDoc, ObjectRef},
        nodeproxy::NodeRead,
    },
    pool::ClusterClient,
    request::{
        InvalidInput,
        logfilter::{LogPattern, SinceTime},
        names::{
            ApiVersion, ContainerName, KindName, Namespace, NodeLogPath, NodeName, ObjectName,
            Selector,
        },
        path::KubeletPath,
    },
};

/// The Kube service.
#[derive(Debug)]
pub struct KubeService {
    app: Arc<App>,
    /// Snapshots behind `continue` tokens, and their key.
    pub(super) pages: Pages,
}

impl KubeService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self {
            app,
            pages: Pages::new(),
        }
    }

    pub(super) fn targets(&self, cluster: &str, clusters: &[String]) -> Result<Targets, Status> {
        Ok(self.app.targets(cluster, clusters)?)
    }
}

pub(super) fn output(o: i32) -> Output {
    match pb::OutputFormat::try_from(o).unwrap_or(pb::OutputFormat::Table) {
        pb::OutputFormat::Table => Output::Table,
        pb::OutputFormat::Yaml => Output::Yaml,
        pb::OutputFormat::Json => Output::Json,
    }
}

pub(super) fn invalid(e: InvalidInput) -> Status {
    crate::error::OpError::from(e).into()
}

fn kind(value: &str) -> Result<KindName, InvalidInput> {
    if value.trim().is_empty() {
        return Err(InvalidInput::new(
            "kind",
            value,
            "is required (e.g. \"Pod\", \"deployments\")",
        ));
    }
    KindName::parse("kind", value)
}

/// The name of an object of `kind`: a node's or a namespace's by their
/// own stricter rules when the kind says which, else one path segment.
fn object_name(value: &str, kind: &KindName) -> Result<ObjectName, InvalidInput> {
    let k = kind.as_str().to_ascii_lowercase();
    if matches!(k.as_str(), "node" | "nodes" | "no" | "nodemetrics") {
        NodeName::parse("name", value)?;
    } else if matches!(k.as_str(), "namespace" | "namespaces" | "ns") {
        Namespace::parse("name", value)?;
    }
    ObjectName::parse("name", value)
}

fn list_args(req: &pb::ListRequest) -> Result<ListArgs, InvalidInput> {
    let kind = kind(&req.kind)?;
    let name = match req.name.as_str() {
        "" => None,
        n => Some(object_name(n, &kind)?),
    };
    Ok(ListArgs {
        api_version: ApiVersion::optional("apiVersion", &req.api_version)?,
        kind,
        namespace: Namespace::optional("namespace", &req.namespace)?,
        label_selector: Selector::optional("labelSelector", &req.label_selector)?,
        field_selector: match name {
            None => Selector::optional("fieldSelector", &req.field_selector)?,
            Some(name) => Some(Selector::and(
                Selector::optional("fieldSelector", &req.field_selector)?.as_ref(),
                Selector::field_equals("metadata.name", name.as_str()),
            )),
        },
        // `limit` pages the whole answer; every cluster sends all it has.
        limit: 0,
        output: output(req.output),
        live: req.target.as_ref().is_some_and(|t| t.live),
        objects: false,
    })
}

fn shape(req: &pb::ListRequest) -> Result<Shape, InvalidInput> {
    Shape::parse(RawShape {
        output: output(req.output),
        limit: req.limit,
        continue_token: &req.continue_token,
        summary: req.summary,
        count_by: &req.count_by,
        columns: &req.columns,
        fields: &req.fields,
        sort_by: &req.sort_by,
    })
}

/// Digest of what a list call asks (its clusters included), without the
/// page it asks for: a `continue` token is bound to it.
fn list_digest(req: &pb::ListRequest, targets: &Targets) -> [u8; 32] {
    use prost::Message as _;
    use sha2::Digest as _;
    let mut normalized = req.clone();
    normalized.continue_token.clear();
    normalized.limit = 0;
    let mut hasher = sha2::Sha256::new();
    hasher.update(normalized.encode_to_vec());
    for name in &targets.names {
        hasher.update(name.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

fn get_args(req: &pb::GetRequest) -> Result<GetArgs, InvalidInput> {
    let kind = kind(&req.kind)?;
    Ok(GetArgs {
        api_version: ApiVersion::optional("apiVersion", &req.api_version)?,
        name: object_name(&req.name, &kind)?,
        kind,
        namespace: Namespace::optional("namespace", &req.namespace)?,
        output: output(req.output),
        live: req.target.as_ref().is_some_and(|t| t.live),
    })
}

pub(super) fn object_ref(r: &pb::ObjectRequest) -> Result<ObjectRef, InvalidInput> {
    let kind = kind(&r.kind)?;
    Ok(ObjectRef {
        api_version: ApiVersion::optional("apiVersion", &r.api_version)?,
        name: object_name(&r.name, &kind)?,
        kind,
        namespace: Namespace::optional("namespace", &r.namespace)?,
        grace_period_seconds: u32::try_from(r.grace_period_seconds).ok(),
    })
}

/// A log request checked (a bad argument or a conflicting pair sends nothing).
fn log_args(req: &pb::LogsRequest) -> Result<LogArgs, OpError> {
    let selector = Selector::optional("labelSelector", &req.label_selector)?;
    let pods = match (req.name.as_str(), selector) {
        ("", Some(s)) => LogPods::Selected(s),
        ("", None) => {
            return Err(InvalidInput::new(
                "name",
                "",
                "is required: a pod name, or labelSelector for every matching pod",
            )
            .into());
        }
        (name, None) => LogPods::Named(ObjectName::parse("name", name)?),
        (_, Some(_)) => {
            return Err(OpError::InvalidArgument(
                "pass either name (one pod) or labelSelector (every matching pod), not both; nothing was sent to the cluster".into(),
            ));
        }
    };
    let since_time = SinceTime::optional("sinceTime", &req.since_time)?;
    if since_time.is_some() && req.since_seconds > 0 {
        return Err(OpError::InvalidArgument(
            "pass either since (seconds) or sinceTime, not both; nothing was sent to the cluster"
                .into(),
        ));
    }
    for (field, value) in [("tail", req.tail), ("since", req.since_seconds)] {
        if value < 0 {
            return Err(InvalidInput::new(field, &value.to_string(), "must be 0 or more").into());
        }
    }
    Ok(LogArgs {
        namespace: Namespace::optional("namespace", &req.namespace)?,
        pods,
        container: ContainerName::optional("container", &req.container)?,
        previous: req.previous,
        tail: req.tail,
        since_seconds: req.since_seconds,
        since_time,
        timestamps: req.timestamps,
        grep: LogPattern::optional("grep", &req.grep)?,
    })
}

/// The audit detail of a log read: container, selector, search.
fn log_detail(args: &LogArgs) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &args.container {
        parts.push(format!("container={c}"));
    }
    if let LogPods::Selected(s) = &args.pods {
        parts.push(format!("labelSelector={s}"));
    }
    if let Some(g) = &args.grep {
        parts.push(format!("grep={g}"));
    }
    if let Some(t) = &args.since_time {
        parts.push(format!("sinceTime={t}"));
    }
    parts.join(" ")
}

fn kubelet_path(path: &str) -> Result<KubeletPath, InvalidInput> {
    if path == "stats/summary" {
        return Ok(KubeletPath::StatsSummary);
    }
    match path
        .strip_prefix("logs/")
        .or((path == "logs").then_some(""))
    {
        Some(rest) => Ok(KubeletPath::Logs(NodeLogPath::parse("query", rest)?)),
        None => Err(InvalidInput::new(
            "path",
            path,
            "must be \"stats/summary\" or a file under \"logs/\"; nothing else of the kubelet is read",
        )),
    }
}

/// What one audit entry names.
#[derive(Debug, Clone, Default)]
pub(super) struct Audited {
    pub(super) api_version: String,
    pub(super) kind: String,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) detail: String,
}

/// An optional part as audit text ("" when absent).
fn text<T: ToString>(part: Option<&T>) -> String {
    part.map(T::to_string).unwrap_or_default()
}

impl Audited {
    pub(super) fn object(o: &ObjectRef) -> Self {
        Self {
            api_version: text(o.api_version.as_ref()),
            kind: o.kind.to_string(),
            namespace: text(o.namespace.as_ref()),
            name: o.name.to_string(),
            detail: String::new(),
        }
    }

    fn doc(d: &ManifestDoc) -> Self {
        Self {
            api_version: d.api_version.to_string(),
            kind: d.kind.to_string(),
            namespace: text(d.namespace.as_ref()),
            name: d.name.to_string(),
            detail: String::new(),
        }
    }
}

/// One call as the answer builder sees it.
pub(super) struct CallFacts {
    /// Verb for the audit log and metrics.
    pub(super) verb: &'static str,
    /// Whether it changes a cluster (always audited).
    pub(super) mutating: bool,
    /// One audit entry per object it names.
    pub(super) audited: Vec<Audited>,
    /// How a change runs (plan, dry-run, confirmation), for the audit log.
    pub(super) how: Option<How>,
}

/// The per-cluster facts of an answer (texts only for failures: the
/// composed answer carries the rest).
fn cluster_results<T: Answered>(answers: &[ClusterAnswer<T>]) -> Vec<pb::ClusterResult> {
    answers
        .iter()
        .map(|a| {
            let (ok, text, from_cache) = match &a.result {
                Ok(r) => (true, String::new(), r.cached()),
                Err(e) => (
                    false,
                    answer::budget::cut(crate::redact::redact(&e.to_string()), 1024),
                    false,
                ),
            };
            pb::ClusterResult {
                cluster: a.cluster.clone(),
                ok,
                text,
                items: 0,
                omitted: 0,
                elapsed_us: a.elapsed.as_micros() as u64,
                from_cache,
            }
        })
        .collect()
}

impl KubeService {
    /// Runs `op` on `targets` (each with its share of the answer budget)
    /// and composes the per-cluster texts into one answer.
    pub(super) async fn run<F, Fut>(
        &self,
        caller: &Caller,
        targets: Targets,
        facts: CallFacts,
        op: F,
    ) -> Response<pb::KubeResult>
    where
        F: Fn(Arc<ClusterClient>, OpOptions) -> Fut,
        Fut: std::future::Future<Output = Result<Rendered, crate::error::OpError>>,
    {
        let budget = self.app.config.output.max_bytes;
        self.run_with(caller, targets, facts, op, |answers, skipped| {
            Ok(answer::compose_sections(budget, answers, skipped))
        })
        .await
        .unwrap_or_else(|status| {
            // compose_sections never fails.
            Response::new(pb::KubeResult {
                text: status.message().to_string(),
                failed: true,
                ..Default::default()
            })
        })
    }

    /// Runs `op` on `targets`, audits it (one entry per named object;
    /// changes always, reads when enabled), marks partial or failed answers
    /// for the metrics, and builds the response with `compose`. One notion
    /// of failure for every call: some clusters failed = partial, all
    /// failed = error.
    pub(super) async fn run_with<T, F, Fut, C>(
        &self,
        caller: &Caller,
        targets: Targets,
        facts: CallFacts,
        op: F,
        compose: C,
    ) -> Result<Response<pb::KubeResult>, Status>
    where
        T: Answered,
        F: Fn(Arc<ClusterClient>, OpOptions) -> Fut,
        Fut: std::future::Future<Output = Result<T, crate::error::OpError>>,
        C: FnOnce(
            Vec<(String, Result<T, crate::error::OpError>)>,
            &[String],
        ) -> Result<Answer, crate::error::OpError>,
    {
        let started = std::time::Instant::now();
        let clusters = targets.names.join(",");
        let mut opts = self.app.op_options();
        opts.max_bytes = answer::share(opts.max_bytes, targets.names.len());
        let answers = self
            .app
            .each_with(targets.names, facts.verb, opts, op)
            .await;
        let change = answers
            .iter()
            .find_map(|a| a.result.as_ref().ok().and_then(|r| r.change().cloned()));
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
        for audited in facts.audited {
            let mut entry =
                crate::audit::entry(caller, facts.verb, &clusters, &outcome, started.elapsed());
            entry.api_version = audited.api_version;
            entry.resource = audited.kind;
            entry.namespace = audited.namespace;
            entry.name = audited.name;
            entry.detail = audited.detail;
            if let Some(how) = &facts.how {
                entry.dry_run = how.dry_run;
                entry.plan = text(how.plan.as_ref());
                entry.confirmation = confirmation_word(how.confirmation).to_string();
            }
            if let Some(c) = &change {
                if !c.plan.is_empty() {
                    entry.plan = c.plan.clone();
                }
                entry.diff_sha256 = c.diff_sha256.clone();
                if !c.confirmation.is_empty() {
                    entry.confirmation = c.confirmation.clone();
                }
            }
            self.app.audit.record(entry, facts.mutating);
        }
        let total = answers.len();
        let results = cluster_results(&answers);
        let composed = compose(
            answers.into_iter().map(|a| (a.cluster, a.result)).collect(),
            &targets.skipped,
        )
        .map_err(Status::from)?;
        if total > 1 {
            crate::trim::after_fan_out();
        }
        let mut resp = Response::new(pb::KubeResult {
            results,
            skipped: targets.skipped,
            text: composed.text,
            failed: composed.failed,
            from_cache: composed.from_cache,
        });
        if let Some(needed) = change.and_then(|c| c.confirm_needed) {
            use prost::Message;
            resp.metadata_mut().insert_bin(
                nskd_proto::CONFIRM_HEADER,
                tonic::metadata::MetadataValue::from_bytes(&needed.encode_to_vec()),
            );
        }
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
        Ok(resp)
    }

    /// Targets of a change: one cluster, never a list.
    pub(super) fn one_cluster(
        &self,
        cluster: &str,
        clusters: &[String],
    ) -> Result<Targets, Status> {
        if !clusters.is_empty() {
            return Err(crate::error::OpError::InvalidArgument(
                "changes run on one cluster at a time: pass `cluster`, not `clusters`".into(),
            )
            .into());
        }
        self.targets(cluster, &[])
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
        let mut args = list_args(&req).map_err(invalid)?;
        let shape = shape(&req).map_err(invalid)?;
        args.objects = shape.needs_objects();
        if shape.count_by.is_some() {
            args.output = Output::Table;
        }
        let target = req.target.clone().unwrap_or_default();
        let targets = self.targets(&target.cluster, &target.clusters)?;
        tracing::debug!(session = ?caller.session, tool = ?caller.tool, kind = ?args.kind.as_str(), clusters = targets.names.len(), "list");
        let call = ListCall {
            shape: &shape,
            multi: targets.names.len() > 1,
            all_namespaces: args.namespace.is_none(),
            budget: self.app.config.output.max_bytes,
            digest: list_digest(&req, &targets),
            tool: (!caller.tool.is_empty()).then_some(caller.tool.as_str()),
            narrow: crate::answer::NARROW_LIST,
        };
        if let Some(token) = &shape.continue_token {
            // The next page comes from the snapshot: no cluster is called.
            let answer = answer::resume_list(&self.pages, &call, token)?;
            return Ok(Response::new(pb::KubeResult {
                text: answer.text,
                failed: answer.failed,
                from_cache: answer.from_cache,
                ..Default::default()
            }));
        }
        let facts = CallFacts {
            verb: "list",
            mutating: false,
            how: None,
            audited: vec![Audited {
                api_version: text(args.api_version.as_ref()),
                kind: args.kind.to_string(),
                namespace: text(args.namespace.as_ref()),
                ..Audited::default()
            }],
        };
        let args = &args;
        let budget = self.app.config.output.max_bytes;
        self.run_with(
            &caller,
            targets,
            facts,
            |cc, mut opts| async move {
                // Rows are cut by the composer, not per cluster.
                opts.max_bytes = budget;
                crate::ops::list::rows(&cc, args, &opts).await
            },
            |answers, skipped| answer::compose_list(&self.pages, &call, answers, skipped),
        )
        .await
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
        let r = req.object.unwrap_or_default();
        let o = object_ref(&r).map_err(invalid)?;
        let targets = self.one_cluster(&r.cluster, &r.clusters)?;
        let replicas = req.replicas;
        let how = How::from_proto(req.change.as_ref(), &caller.session).map_err(invalid)?;
        let facts = CallFacts {
            verb: "scale",
            mutating: true,
            audited: vec![Audited {
                detail: format!("replicas={replicas}"),
                ..Audited::object(&o)
            }],
            how: Some(how.clone()),
        };
        let (o, how) = (&o, &how);
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                crate::ops::mutate::scale(&cc, o, replicas, &opts, how).await
            })
            .await)
    }

    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let namespace = Namespace::optional("namespace", &req.namespace).map_err(invalid)?;
        let docs = crate::ops::mutate::parse_manifest(&req.manifest, namespace.as_ref())?;
        let targets = self.one_cluster(&req.cluster, &[])?;
        let how = How::from_proto(req.change.as_ref(), &caller.session).map_err(invalid)?;
        let facts = CallFacts {
            verb: "apply",
            mutating: true,
            audited: docs.iter().map(Audited::doc).collect(),
            how: Some(how.clone()),
        };
        let (docs, how, run) = (&docs, &how, req.run);
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                crate::ops::mutate::apply(&cc, docs, &opts, how, run).await
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
        let read = NodeRead {
            node: NodeName::parse("name", &req.node).map_err(invalid)?,
            what: kubelet_path(&req.path).map_err(invalid)?,
            tail: req.tail as usize,
        };
        let targets = self.targets(&req.cluster, &req.clusters)?;
        let facts = CallFacts {
            verb: "node-read",
            mutating: false,
            how: None,
            audited: vec![Audited {
                kind: "Node".into(),
                name: read.node.to_string(),
                detail: read.what.display(),
                ..Audited::default()
            }],
        };
        let read = &read;
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                crate::ops::nodeproxy::read(&cc, read, &opts).await
            })
            .await)
    }

    async fn exec(
        &self,
        request: Request<pb::ExecRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        ExecArgs::check_command(&req.command).map_err(invalid)?;
        let args = ExecArgs {
            namespace: Namespace::optional("namespace", &req.namespace).map_err(invalid)?,
            name: ObjectName::parse("name", &req.name).map_err(invalid)?,
            container: ContainerName::optional("container", &req.container).map_err(invalid)?,
            command: req.command,
        };
        let targets = self.one_cluster(&req.cluster, &[])?;
        let facts = CallFacts {
            verb: "exec",
            mutating: true,
            how: None,
            audited: vec![Audited {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: text(args.namespace.as_ref()),
                name: args.name.to_string(),
                detail: serde_json::to_string(&args.command).unwrap_or_default(),
            }],
        };
        let args = &args;
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                crate::ops::exec::exec(&cc, args, &opts).await
            })
            .await)
    }

    async fn logs(
        &self,
        request: Request<pb::LogsRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let args = log_args(&req)?;
        let targets = self.targets(&req.cluster, &req.clusters)?;
        let facts = CallFacts {
            verb: "logs",
            mutating: false,
            how: None,
            audited: vec![Audited {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: text(args.namespace.as_ref()),
                name: match &args.pods {
                    LogPods::Named(name) => name.to_string(),
                    LogPods::Selected(_) => String::new(),
                },
                detail: log_detail(&args),
            }],
        };
        let args = &args;
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                crate::ops::logs::logs(&cc, args, &opts).await
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
        let args = get_args(&req).map_err(invalid)?;
        let target = req.target.unwrap_or_default();
        let targets = self.targets(&target.cluster, &target.clusters)?;
        tracing::debug!(session = ?caller.session, tool = ?caller.tool, kind = ?args.kind.as_str(), name = ?args.name.as_str(), clusters = targets.names.len(), verb);
        let facts = CallFacts {
            verb,
            mutating: false,
            how: None,
            audited: vec![Audited {
                api_version: text(args.api_version.as_ref()),
                kind: args.kind.to_string(),
                namespace: text(args.namespace.as_ref()),
                name: args.name.to_string(),
                detail: String::new(),
            }],
        };
        let args = &args;
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                match verb {
                    "describe" => crate::ops::describe::describe(&cc, args, &opts).await,
                    _ => crate::ops::get::get(&cc, args, &opts).await,
                }
            })
            .await)
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
    /// Runs `op` on the object of `request`: one cluster for changes,
    /// several for rollout status.
    async fn object_op(
        &self,
        request: Request<pb::ObjectRequest>,
        op: ObjectOp,
    ) -> Result<Response<pb::KubeResult>, Status> {
        use crate::ops::mutate;
        let caller = Caller::of(&request);
        let r = request.into_inner();
        let o = object_ref(&r).map_err(invalid)?;
        let (verb, mutating) = match op {
            ObjectOp::Delete => ("delete", true),
            ObjectOp::RolloutRestart => ("rollout-restart", true),
            ObjectOp::RolloutStatus => ("rollout-status", false),
        };
        let targets = if mutating {
            self.one_cluster(&r.cluster, &r.clusters)?
        } else {
            self.targets(&r.cluster, &r.clusters)?
        };
        let how = How::from_proto(r.change.as_ref(), &caller.session).map_err(invalid)?;
        if !mutating && r.change.is_some() {
            return Err(invalid(InvalidInput::new(
                "dryRun",
                "true",
                "applies to changes only; rollout status reads",
            )));
        }
        let facts = CallFacts {
            verb,
            mutating,
            audited: vec![Audited::object(&o)],
            how: mutating.then(|| how.clone()),
        };
        let (o, how) = (&o, &how);
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                match op {
                    ObjectOp::Delete => mutate::delete(&cc, o, &opts, how).await,
                    ObjectOp::RolloutRestart => mutate::rollout_restart(&cc, o, &opts, how).await,
                    ObjectOp::RolloutStatus => mutate::rollout_status(&cc, o, &opts).await,
                }
            })
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_are_logs_or_the_summary_only() {
        assert_eq!(
            kubelet_path("stats/summary").unwrap(),
            KubeletPath::StatsSummary
        );
        assert!(matches!(
            kubelet_path("logs/").unwrap(),
            KubeletPath::Logs(_)
        ));
        assert!(matches!(
            kubelet_path("logs/kubelet.log").unwrap(),
            KubeletPath::Logs(_)
        ));
        for bad in [
            "pods",
            "logs/../pods",
            "stats/summary?x",
            "logs/a%2f",
            "configz",
            "logs/x?y=",
        ] {
            let e = kubelet_path(bad).unwrap_err();
            assert!(e.field == "query" || e.field == "path", "{bad}: {e}");
        }
    }

    #[test]
    fn nodes_and_namespaces_are_named_by_their_own_rules() {
        let kind = |k: &str| KindName::parse("kind", k).unwrap();
        for k in ["Node", "nodes", "NodeMetrics", "Namespace", "ns"] {
            assert!(object_name("Shop", &kind(k)).is_err(), "{k}");
            assert!(object_name("shop-1", &kind(k)).is_ok(), "{k}");
        }
        assert!(object_name("system:node:Shop", &kind("ClusterRole")).is_ok());
    }

    #[test]
    fn bad_parts_are_refused_naming_the_argument() {
        let req = pb::ListRequest {
            kind: "ConfigMap".into(),
            namespace: "shop/secrets?".into(),
            ..Default::default()
        };
        assert_eq!(list_args(&req).unwrap_err().field, "namespace");
        let req = pb::ObjectRequest {
            kind: "ConfigMap".into(),
            namespace: "scratch".into(),
            name: "x/../y".into(),
            ..Default::default()
        };
        assert_eq!(object_ref(&req).unwrap_err().field, "name");
        let status = invalid(object_ref(&req).unwrap_err());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("invalid name"),
            "{}",
            status.message()
        );
    }
}
