//! `nskd.v1.Changes`: patches, through the same validation, policy, audit
//! and change engine as the Kube service's changes.

use nskd_proto::v1::{self as pb, changes_server::Changes};
use tonic::{Request, Response, Status};

use super::{
    Caller,
    kube::{Audited, CallFacts, KubeService, invalid, object_ref},
};
use crate::ops::{
    change::How,
    patch::{PatchArgs, PatchType, parse_patch},
};

#[tonic::async_trait]
impl Changes for KubeService {
    async fn patch(
        &self,
        request: Request<pb::PatchRequest>,
    ) -> Result<Response<pb::KubeResult>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let r = req.object.unwrap_or_default();
        let object = object_ref(&r).map_err(invalid)?;
        let patch_type = match pb::PatchType::try_from(req.r#type) {
            Ok(pb::PatchType::Merge) => PatchType::Merge,
            Ok(pb::PatchType::Json) => PatchType::Json,
            Ok(pb::PatchType::Strategic) => PatchType::Strategic,
            Err(_) => {
                return Err(invalid(crate::request::InvalidInput::new(
                    "type",
                    &req.r#type.to_string(),
                    "must be merge, json or strategic",
                )));
            }
        };
        let body = parse_patch(patch_type, &req.patch)?;
        let how = How::from_proto(req.change.as_ref(), &caller.session).map_err(invalid)?;
        let targets = self.one_cluster(&r.cluster, &r.clusters)?;
        let facts = CallFacts {
            verb: "patch",
            mutating: true,
            audited: vec![Audited {
                detail: format!("type={}", patch_type.word()),
                ..Audited::object(&object)
            }],
            how: Some(how.clone()),
        };
        let args = PatchArgs {
            object,
            patch_type,
            body,
        };
        let (args, how) = (&args, &how);
        Ok(self
            .run(&caller, targets, facts, |cc, opts| async move {
                crate::ops::patch::patch(&cc, args, &opts, how).await
            })
            .await)
    }
}
