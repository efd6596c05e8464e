//! `nskd.v1.Fleet`: the clusters_status table for agents, composed within
//! `[output] max_bytes` at any number of clusters (`answer::status`).

use std::{sync::Arc, time::Instant};

use nskd_proto::v1::{self as pb, fleet_server::Fleet};
use tonic::{Request, Response, Status};

use super::{Caller, kube::invalid};
use crate::{
    answer::{
        self, ListCall,
        page::Pages,
        shape::{RawShape, Shape},
        status,
    },
    app::App,
};

/// What to do instead of paging through the table.
const NARROW: &str = "clusters_status with \"cluster\" shows one cluster in detail";

/// The Fleet service.
#[derive(Debug)]
pub struct FleetService {
    app: Arc<App>,
    pages: Pages,
}

impl FleetService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self {
            app,
            pages: Pages::new(),
        }
    }
}

/// Binds a `continue` token to this table (the only thing it pages).
fn digest() -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(b"nskd.v1.Fleet/StatusTable").into()
}

#[tonic::async_trait]
impl Fleet for FleetService {
    async fn status_table(
        &self,
        request: Request<pb::StatusTableRequest>,
    ) -> Result<Response<pb::StatusTableResponse>, Status> {
        let started = Instant::now();
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let shape = Shape::parse(RawShape {
            continue_token: &req.continue_token,
            ..RawShape::default()
        })
        .map_err(invalid)?;
        let budget = self.app.config.output.max_bytes;
        let tool = (!caller.tool.is_empty()).then_some(caller.tool.as_str());
        let call = ListCall {
            shape: &shape,
            multi: false,
            all_namespaces: false,
            budget,
            digest: digest(),
            tool,
            narrow: NARROW,
        };
        let text = if let Some(token) = &shape.continue_token {
            // The next page comes from the snapshot: nothing is probed.
            answer::resume_list(&self.pages, &call, token)?.text
        } else {
            let names = self.app.registry.names();
            tracing::debug!(session = %caller.session, clusters = names.len(), refresh = req.refresh, "status table");
            let clusters = super::clusters::health(&self.app, &names, req.refresh, false).await?;
            let active = (!req.active.is_empty()).then_some(req.active.as_str());
            status::compose(&self.pages, &call, &clusters, active)
        };
        Ok(Response::new(pb::StatusTableResponse {
            text,
            elapsed_ms: started.elapsed().as_millis() as u32,
        }))
    }
}
