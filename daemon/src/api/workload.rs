//! `nskd.v1.Workload`: rollout history/undo/pause/resume, node
//! cordon/uncordon/drain, pod cleanup. Requests are checked into typed
//! parts here; changes run on one cluster and are always audited.

use std::{sync::Arc, time::Duration};

use nskd_proto::v1::{self as pb, workload_server::Workload};
use tonic::{Request, Response, Status};

use super::{
    Caller,
    kube::{Audited, CallFacts, KubeService, invalid, object_ref},
};
use crate::{
    app::App,
    ops::{change::How, cleanup, drain, rollout},
    request::{
        InvalidInput,
        names::{Namespace, NodeName},
    },
};

/// The Workload service.
#[derive(Debug)]
pub struct WorkloadService {
    kube: KubeService,
}

impl WorkloadService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self {
            kube: KubeService::new(app),
        }
    }
}

/// Which rollout operation.
#[derive(Debug, Clone, Copy)]
enum RolloutOp {
    History,
    Undo,
    Pause,
    Resume,
}

/// `toRevision`: 0 (the previous) or a revision number.
fn to_revision(value: i64) -> Result<i64, InvalidInput> {
    if value < 0 {
        return Err(InvalidInput::new(
            "toRevision",
            &value.to_string(),
            "must be 0 (the previous revision) or a revision number from rollout_history",
        ));
    }
    Ok(value)
}

/// `timeout` of a drain: `None` (0) for the daemon's call timeout.
fn drain_timeout(seconds: u32) -> Result<Option<Duration>, InvalidInput> {
    let t = Duration::from_secs(u64::from(seconds));
    if t > drain::MAX_TIMEOUT {
        return Err(InvalidInput::new(
            "timeout",
            &seconds.to_string(),
            format!(
                "must be at most {} seconds; drain in several calls",
                drain::MAX_TIMEOUT.as_secs()
            ),
        ));
    }
    Ok((seconds > 0).then_some(t))
}

fn node_audited(node: &NodeName, detail: String) -> Vec<Audited> {
    vec![Audited {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.to_string(),
        detail,
        ..Audited::default()
    }]
}

impl WorkloadService {
    async fn rollout(
        &self,
        request: Request<pb::RolloutRequest>,
        op: RolloutOp,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let r = req.object.unwrap_or_default();
        let o = object_ref(&r).map_err(invalid)?;
        let to = to_revision(req.to_revision).map_err(invalid)?;
        let how = How::from_proto(r.change.as_ref(), &caller.session).map_err(invalid)?;
        let (verb, mutating, detail) = match op {
            RolloutOp::History => ("rollout-history", false, String::new()),
            RolloutOp::Undo => ("rollout-undo", true, format!("toRevision={to}")),
            RolloutOp::Pause => ("rollout-pause", true, String::new()),
            RolloutOp::Resume => ("rollout-resume", true, String::new()),
        };
        let targets = if mutating {
            self.kube.one_cluster(&r.cluster, &r.clusters)?
        } else {
            self.kube.targets(&r.cluster, &r.clusters)?
        };
        let facts = CallFacts {
            verb,
            mutating,
            audited: vec![Audited {
                detail,
                ..Audited::object(&o)
            }],
            how: mutating.then(|| how.clone()),
        };
        let (o, how) = (&o, &how);
        Ok(self
            .kube
            .run(&caller, targets, facts, |cc, opts| async move {
                match op {
                    RolloutOp::History => rollout::history(&cc, o, &opts).await,
                    RolloutOp::Undo => rollout::undo(&cc, o, to, &opts, how).await,
                    RolloutOp::Pause => rollout::pause(&cc, o, true, &opts, how).await,
                    RolloutOp::Resume => rollout::pause(&cc, o, false, &opts, how).await,
                }
            })
            .await)
    }

    async fn cordon(
        &self,
        request: Request<pb::NodeRequest>,
        unschedulable: bool,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let node = NodeName::parse("name", &req.node).map_err(invalid)?;
        let targets = self.kube.one_cluster(&req.cluster, &[])?;
        let how = How::from_proto(req.change.as_ref(), &caller.session).map_err(invalid)?;
        let facts = CallFacts {
            verb: if unschedulable {
                "nodes-cordon"
            } else {
                "nodes-uncordon"
            },
            mutating: true,
            audited: node_audited(&node, String::new()),
            how: Some(how.clone()),
        };
        let (node, how) = (&node, &how);
        Ok(self
            .kube
            .run(&caller, targets, facts, |cc, opts| async move {
                drain::cordon(&cc, node, unschedulable, &opts, how).await
            })
            .await)
    }
}

#[tonic::async_trait]
impl Workload for WorkloadService {
    async fn rollout_history(
        &self,
        request: Request<pb::RolloutRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.rollout(request, RolloutOp::History).await
    }

    async fn rollout_undo(
        &self,
        request: Request<pb::RolloutRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.rollout(request, RolloutOp::Undo).await
    }

    async fn rollout_pause(
        &self,
        request: Request<pb::RolloutRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.rollout(request, RolloutOp::Pause).await
    }

    async fn rollout_resume(
        &self,
        request: Request<pb::RolloutRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.rollout(request, RolloutOp::Resume).await
    }

    async fn nodes_cordon(
        &self,
        request: Request<pb::NodeRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.cordon(request, true).await
    }

    async fn nodes_uncordon(
        &self,
        request: Request<pb::NodeRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        self.cordon(request, false).await
    }

    async fn nodes_drain(
        &self,
        request: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let n = req.node.unwrap_or_default();
        let node = NodeName::parse("name", &n.node).map_err(invalid)?;
        let timeout = drain_timeout(req.timeout_seconds).map_err(invalid)?;
        let targets = self.kube.one_cluster(&n.cluster, &[])?;
        let how = How::from_proto(n.change.as_ref(), &caller.session).map_err(invalid)?;
        let mut detail = vec![format!("timeout={}s", req.timeout_seconds)];
        if req.force {
            detail.push("force".into());
        }
        let facts = CallFacts {
            verb: "nodes-drain",
            mutating: true,
            audited: node_audited(&node, detail.join(" ")),
            how: Some(how.clone()),
        };
        let (force, node, how) = (req.force, &node, &how);
        Ok(self
            .kube
            .run(&caller, targets, facts, |cc, opts| async move {
                let args = drain::DrainArgs {
                    node: node.clone(),
                    timeout: timeout.unwrap_or(opts.timeout),
                    force,
                };
                drain::drain(&cc, &args, &opts, how).await
            })
            .await)
    }

    async fn pods_cleanup(
        &self,
        request: Request<pb::CleanupRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let namespace = Namespace::optional("namespace", &req.namespace)
            .map_err(invalid)?
            .unwrap_or_else(Namespace::default_namespace);
        let targets = self.kube.one_cluster(&req.cluster, &[])?;
        let how = How::from_proto(req.change.as_ref(), &caller.session).map_err(invalid)?;
        let facts = CallFacts {
            verb: "pods-cleanup",
            mutating: true,
            audited: vec![Audited {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: namespace.to_string(),
                ..Audited::default()
            }],
            how: Some(how.clone()),
        };
        let (namespace, how) = (&namespace, &how);
        Ok(self
            .kube
            .run(&caller, targets, facts, |cc, opts| async move {
                cleanup::cleanup(&cc, namespace, &opts, how).await
            })
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_and_timeouts_are_checked_before_anything_is_sent() {
        assert_eq!(to_revision(0).unwrap(), 0);
        assert_eq!(to_revision(i64::MAX).unwrap(), i64::MAX);
        let e = to_revision(-1).unwrap_err();
        assert_eq!(e.field, "toRevision");
        assert_eq!(drain_timeout(0).unwrap(), None);
        assert_eq!(drain_timeout(30).unwrap(), Some(Duration::from_secs(30)));
        let e = drain_timeout(u32::MAX).unwrap_err();
        assert!(e.to_string().contains("at most 3600"), "{e}");
    }
}
