//! `nskd.v1.Helm`: Helm releases read from Helm's storage on one cluster
//! or many. Arguments are checked into typed parts before anything is sent.

use std::sync::{Arc, Mutex};

use nskd_proto::v1::{self as pb, helm_server::Helm};
use tonic::{Request, Response, Status};

use super::{
    Caller,
    kube::{Audited, CallFacts, KubeService, invalid, output},
};
use crate::{
    app::App,
    helm::{
        answer::{self, ListArgs, ListRow, ReleaseArgs, StatusFilter},
        summary::summarize,
    },
    ops::Rendered,
    request::{
        InvalidInput,
        names::{ChartName, Namespace, ReleaseName},
    },
};

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
    async fn list(
        &self,
        request: Request<pb::HelmListRequest>,
    ) -> Result<Response<pb::HelmListResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let args = list_args(&req).map_err(invalid)?;
        let target = req.target.unwrap_or_default();
        let targets = self.kube.targets(&target.cluster, &target.clusters)?;
        let facts = CallFacts {
            verb: "helm-list",
            mutating: false,
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
        let max_bytes = self.app.config.output.max_bytes;
        // Each cluster's share of the answer, so the whole fits the cap.
        let share = (max_bytes / targets.names.len().max(1)).max(1024);
        let rows: Mutex<Vec<(String, Vec<ListRow>)>> = Mutex::new(Vec::new());
        let (args, rows_ref, summary) = (&args, &rows, req.summary);
        let resp = self
            .kube
            .run(&caller, targets, facts, |cc, mut opts| async move {
                let found = answer::list_rows(&cc, args, &opts).await?;
                if summary {
                    let n = found.len() as u32;
                    rows_ref
                        .lock()
                        .expect("rows lock")
                        .push((cc.name.clone(), found));
                    return Ok(Rendered {
                        items: n,
                        ..Default::default()
                    });
                }
                opts.max_bytes = share;
                Ok(answer::render_list(&found, args.output, opts.max_bytes))
            })
            .await;
        let (metadata, result, extensions) = resp.into_parts();
        let summary = if summary {
            let mut per_cluster = rows.into_inner().expect("rows lock");
            per_cluster.sort_by(|a, b| a.0.cmp(&b.0));
            summarize(&per_cluster, max_bytes)
        } else {
            String::new()
        };
        Ok(Response::from_parts(
            metadata,
            pb::HelmListResult {
                result: Some(result),
                summary,
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
