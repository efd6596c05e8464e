//! `nskd.v1.Helm`: Helm releases read from Helm's storage on one cluster
//! or many. Arguments are checked into typed parts before anything is sent.

use std::sync::Arc;

use nskd_proto::v1::{self as pb, helm_server::Helm};
use tonic::{Request, Response, Status};

use super::{
    Caller,
    kube::{Audited, CallFacts, KubeService, invalid, output},
};
use crate::{
    answer::{
        Answer, ListCall, budget,
        shape::{RawShape, Shape},
    },
    app::{Answered, App},
    config::HelmConfig,
    error::OpError,
    helm::{
        answer::{self, ListArgs, ListRow, Listed, ReleaseArgs, StatusFilter},
        summary::summarize,
        write::{
            apply::{self, RELEASE_KIND, WriteArgs, private_kubeconfig},
            chart,
            command::{Action, ChartVersion, check_values},
            run::HelmRunner,
        },
    },
    ops::change::How,
    ops::list::{ListedRow, Listing},
    request::{
        InvalidInput,
        names::{ChartName, Namespace, ReleaseName},
    },
};

/// One cluster's `helm_list` rows.
#[derive(Debug, Clone)]
struct Rows(Listed);

impl Answered for Rows {
    fn cached(&self) -> bool {
        self.0.from_cache
    }
}

/// Columns of `helm list`, NAMESPACE (and CLUSTER) added by the composer.
const COLUMNS: [&str; 6] = [
    "NAME",
    "REVISION",
    "UPDATED",
    "STATUS",
    "CHART",
    "APP VERSION",
];

/// Rows as the composer's listing: cells for tables, `helm list -o json`
/// objects for YAML/JSON.
fn listing(listed: &Listed) -> Listing {
    let rows = &listed.rows;
    Listing {
        noun: "releases".into(),
        namespaced: true,
        header: COLUMNS.map(String::from).to_vec(),
        rows: rows
            .iter()
            .map(|r| ListedRow {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                cells: vec![
                    r.name.clone(),
                    r.revision.to_string(),
                    r.updated.clone(),
                    r.status.clone(),
                    format!("{}-{}", r.chart, r.chart_version),
                    r.app_version.clone(),
                ],
                object: Some(r.json()),
            })
            .collect(),
        from_cache: listed.from_cache,
        more_on_server: false,
    }
}

/// The fleet summary, then the failures footer.
fn summary_answer(
    answers: Vec<(String, Result<Rows, OpError>)>,
    skipped: &[String],
    budget: usize,
) -> Answer {
    let budget = budget.saturating_sub(crate::answer::NOTE_RESERVE);
    let mut ok: Vec<(String, Vec<ListRow>)> = Vec::new();
    let mut failed: Vec<(String, OpError)> = Vec::new();
    // From the cache when every cluster that answered answered from it.
    let mut from_cache = true;
    for (cluster, result) in answers {
        match result {
            Ok(rows) => {
                from_cache &= rows.0.from_cache;
                ok.push((cluster, rows.0.rows));
            }
            Err(e) => failed.push((cluster, e)),
        }
    }
    ok.sort_by(|a, b| a.0.cmp(&b.0));
    let footer = budget::failures(&failed, skipped, budget / 4);
    let text = if ok.is_empty() {
        footer
    } else {
        summarize(&ok, budget.saturating_sub(footer.len())) + &footer
    };
    Answer {
        text: budget::cut(text, budget),
        failed: ok.is_empty(),
        from_cache: from_cache && !ok.is_empty(),
    }
}

/// Digest of the normalized request, for `continue` tokens.
fn digest(req: &pb::HelmListRequest, targets: &[String]) -> [u8; 32] {
    use prost::Message as _;
    use sha2::Digest as _;
    let mut normalized = req.clone();
    normalized.continue_token.clear();
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"helm-list\0");
    hasher.update(normalized.encode_to_vec());
    for name in targets {
        hasher.update(name.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

/// The Helm service.
#[derive(Debug)]
pub struct HelmService {
    app: Arc<App>,
    kube: KubeService,
}

impl HelmService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self {
            kube: KubeService::new(app.clone()),
            app,
        }
    }
}

fn list_args(req: &pb::HelmListRequest) -> Result<ListArgs, InvalidInput> {
    Ok(ListArgs {
        namespace: Namespace::optional("namespace", &req.namespace)?,
        name: ReleaseName::optional("name", &req.name)?,
        chart: ChartName::optional("chart", &req.chart)?,
        status: StatusFilter::parse(&req.status)?,
        output: output(req.output),
    })
}

/// A write's arguments, checked (the chart against the allowlist).
fn write_args(req: &pb::HelmWriteRequest, config: &HelmConfig) -> Result<WriteArgs, OpError> {
    let release = ReleaseName::parse("name", &req.name)?;
    let namespace = Namespace::optional("namespace", &req.namespace)?
        .unwrap_or_else(Namespace::default_namespace);
    let unused = |field: &str, value: &str, what: &str| -> Result<(), OpError> {
        if value.is_empty() {
            Ok(())
        } else {
            Err(
                InvalidInput::new(field, value, format!("is not used by {what}; leave it out"))
                    .into(),
            )
        }
    };
    let chart_and_version = || -> Result<_, OpError> {
        let chart = chart::resolve(&req.chart, config)
            .map_err(|e| OpError::InvalidArgument(e.to_string()))?;
        let version = match req.version.as_str() {
            "" => None,
            v => Some(ChartVersion::parse("version", v)?),
        };
        Ok((chart, version))
    };
    let values = match req.values.as_str() {
        "" => None,
        v => Some(check_values("values", v)?),
    };
    let action = match pb::HelmAction::try_from(req.action) {
        Ok(pb::HelmAction::Install) => {
            let (chart, version) = chart_and_version()?;
            Action::Install {
                release,
                chart,
                version,
            }
        }
        Ok(pb::HelmAction::Upgrade) => {
            let (chart, version) = chart_and_version()?;
            Action::Upgrade {
                release,
                chart,
                version,
            }
        }
        Ok(pb::HelmAction::Rollback) => {
            for (field, value) in [("chart", &req.chart), ("version", &req.version)] {
                unused(field, value, "helm_rollback")?;
            }
            if values.is_some() {
                unused("values", "(values not shown)", "helm_rollback")?;
            }
            let revision = match req.revision {
                0 => None,
                r if (1..=i64::from(u32::MAX)).contains(&r) => Some(r as u32),
                r => {
                    return Err(InvalidInput::new(
                        "revision",
                        &r.to_string(),
                        "must be a revision number from helm_history (1, 2, ...), or 0 for the previous one",
                    )
                    .into());
                }
            };
            Action::Rollback { release, revision }
        }
        Ok(pb::HelmAction::Uninstall) => {
            for (field, value) in [("chart", &req.chart), ("version", &req.version)] {
                unused(field, value, "helm_uninstall")?;
            }
            if values.is_some() {
                unused("values", "(values not shown)", "helm_uninstall")?;
            }
            Action::Uninstall { release }
        }
        _ => {
            return Err(InvalidInput::new(
                "action",
                &req.action.to_string(),
                "must be install, upgrade, rollback or uninstall",
            )
            .into());
        }
    };
    if req.revision != 0 && !matches!(action, Action::Rollback { .. }) {
        unused("revision", &req.revision.to_string(), action.operation())?;
    }
    Ok(WriteArgs {
        action,
        namespace,
        values,
    })
}

fn release_args(req: &pb::HelmReleaseRequest) -> Result<ReleaseArgs, InvalidInput> {
    if req.revision < 0 {
        return Err(InvalidInput::new(
            "revision",
            &req.revision.to_string(),
            "must be a revision number from helm_history (1, 2, ...), or 0 for the latest",
        ));
    }
    Ok(ReleaseArgs {
        namespace: Namespace::optional("namespace", &req.namespace)?
            .unwrap_or_else(Namespace::default_namespace),
        name: ReleaseName::parse("name", &req.name)?,
        revision: (req.revision > 0).then_some(req.revision),
        all: req.all,
        output: output(req.output),
    })
}

/// Which single-release answer.
#[derive(Debug, Clone, Copy)]
enum Part {
    Status,
    History,
    Values,
    Manifest,
    Notes,
}

impl HelmService {
    async fn one_release(
        &self,
        request: Request<pb::HelmReleaseRequest>,
        part: Part,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let args = release_args(&req).map_err(invalid)?;
        let target = req.target.unwrap_or_default();
        let targets = self.kube.targets(&target.cluster, &target.clusters)?;
        let verb = match part {
            Part::Status => "helm-status",
            Part::History => "helm-history",
            Part::Values => "helm-values",
            Part::Manifest => "helm-manifest",
            Part::Notes => "helm-notes",
        };
        let facts = CallFacts {
            verb,
            mutating: false,
            how: None,
            audited: vec![Audited {
                kind: "HelmRelease".into(),
                namespace: args.namespace.to_string(),
                name: args.name.to_string(),
                detail: args
                    .revision
                    .map(|r| format!("revision={r}"))
                    .unwrap_or_default(),
                ..Audited::default()
            }],
        };
        let args = &args;
        Ok(self
            .kube
            .run(&caller, targets, facts, |cc, opts| async move {
                match part {
                    Part::Status => answer::status(&cc, args, &opts).await,
                    Part::History => answer::history(&cc, args, &opts).await,
                    Part::Values => answer::values(&cc, args, &opts).await,
                    Part::Manifest => answer::manifest(&cc, args, &opts).await,
                    Part::Notes => answer::notes(&cc, args, &opts).await,
                }
            })
            .await)
    }
}

#[tonic::async_trait]
impl Helm for HelmService {
    async fn write(
        &self,
        request: Request<pb::HelmWriteRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let config = &self.app.config.helm;
        // Every argument's form first (the plan id too), then the policy.
        let how = How::from_proto(req.change.as_ref(), &caller.session).map_err(invalid)?;
        let args = write_args(&req, config)?;
        let target = req.target.unwrap_or_default();
        let targets = self.kube.one_cluster(&target.cluster, &target.clusters)?;
        let detail = match &args.action {
            Action::Install { chart, version, .. } | Action::Upgrade { chart, version, .. } => {
                format!(
                    "chart={}{}",
                    chart.as_arg().to_string_lossy(),
                    version
                        .as_ref()
                        .map(|v| format!(" version={}", v.as_str()))
                        .unwrap_or_default()
                )
            }
            Action::Rollback { revision, .. } => {
                format!("revision={}", revision.unwrap_or_default())
            }
            Action::Uninstall { .. } => String::new(),
        };
        let facts = CallFacts {
            verb: args.action.operation(),
            mutating: true,
            how: Some(how.clone()),
            audited: vec![Audited {
                kind: RELEASE_KIND.into(),
                namespace: args.namespace.to_string(),
                name: args.action.release().to_string(),
                detail,
                ..Audited::default()
            }],
        };
        let runner = HelmRunner::new(config);
        let (args, how, runner, app) = (&args, &how, &runner, &self.app);
        Ok(self
            .kube
            .run(&caller, targets, facts, |cc, opts| async move {
                let entry = app.cluster(&cc.name)?;
                let kubeconfig = private_kubeconfig(&entry)?;
                apply::write(runner, &kubeconfig, &cc, &opts, args, how).await
            })
            .await)
    }

    async fn list(
        &self,
        request: Request<pb::HelmListRequest>,
    ) -> Result<Response<pb::HelmListResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let args = list_args(&req).map_err(invalid)?;
        let target = req.target.clone().unwrap_or_default();
        let targets = self.kube.targets(&target.cluster, &target.clusters)?;
        let budget = self.app.config.output.max_bytes;
        let shape = Shape::parse(RawShape {
            output: args.output,
            continue_token: &req.continue_token,
            ..RawShape::default()
        })
        .map_err(invalid)?;
        let call = ListCall {
            shape: &shape,
            multi: targets.names.len() > 1,
            all_namespaces: args.namespace.is_none(),
            budget,
            digest: digest(&req, &targets.names),
            tool: (!caller.tool.is_empty()).then_some(caller.tool.as_str()),
            narrow: crate::answer::NARROW_LIST,
        };
        if let Some(token) = &shape.continue_token {
            // The next page comes from the snapshot: no cluster is called.
            let answer = crate::answer::resume_list(&self.kube.pages, &call, token)?;
            return Ok(Response::new(pb::HelmListResult {
                result: Some(pb::KubeResult {
                    text: answer.text,
                    failed: answer.failed,
                    ..Default::default()
                }),
            }));
        }
        let facts = CallFacts {
            verb: "helm-list",
            mutating: false,
            how: None,
            audited: vec![Audited {
                kind: "HelmRelease".into(),
                namespace: args
                    .namespace
                    .as_ref()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                name: args
                    .name
                    .as_ref()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                detail: args
                    .chart
                    .as_ref()
                    .map(|c| format!("chart={c}"))
                    .unwrap_or_default(),
                ..Audited::default()
            }],
        };
        let (args, summary, decoded) = (&args, req.summary, &self.app.helm_rows);
        // `live: true`, an impersonated caller or a failing cluster
        // (`use_cache` off) list the records on the cluster.
        let live = target.live;
        let indexes = &self.app.indexes;
        let resp = self
            .kube
            .run_with(
                &caller,
                targets,
                facts,
                |cc, opts| async move {
                    let indexes = (!live && opts.use_cache).then_some(indexes.as_ref());
                    answer::list_rows(&cc, args, &opts, decoded, indexes)
                        .await
                        .map(Rows)
                },
                |answers, skipped| {
                    if summary {
                        return Ok(summary_answer(answers, skipped, budget));
                    }
                    let problems: Vec<String> = answers
                        .iter()
                        .filter_map(|(cluster, result)| result.as_ref().ok().map(|r| (cluster, r)))
                        .flat_map(|(c, r)| {
                            r.0.rows.iter().filter_map(move |row| {
                                row.problem.as_ref().map(|p| format!("! {c}: {p}\n"))
                            })
                        })
                        .collect();
                    let mut composed = crate::answer::compose_list(
                        &self.kube.pages,
                        &call,
                        answers
                            .into_iter()
                            .map(|(cluster, result)| (cluster, result.map(|r| listing(&r.0))))
                            .collect(),
                        skipped,
                    )?;
                    for p in problems {
                        if composed.text.len() + p.len() + crate::answer::NOTE_RESERVE > budget {
                            break;
                        }
                        composed.text.push_str(&p);
                    }
                    Ok(composed)
                },
            )
            .await?;
        let (metadata, result, extensions) = resp.into_parts();
        Ok(Response::from_parts(
            metadata,
            pb::HelmListResult {
                result: Some(result),
            },
            extensions,
        ))
    }

    async fn status(
        &self,
        request: Request<pb::HelmReleaseRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_release(request, Part::Status).await
    }

    async fn history(
        &self,
        request: Request<pb::HelmReleaseRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_release(request, Part::History).await
    }

    async fn values(
        &self,
        request: Request<pb::HelmReleaseRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_release(request, Part::Values).await
    }

    async fn manifest(
        &self,
        request: Request<pb::HelmReleaseRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_release(request, Part::Manifest).await
    }

    async fn notes(
        &self,
        request: Request<pb::HelmReleaseRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.one_release(request, Part::Notes).await
    }
}
