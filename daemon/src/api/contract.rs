//! `nskd.v1.Contract`: what the configuration adds to the MCP contract
//! (the user prompts of `[[prompts]]`).

use std::sync::Arc;

use nskd_proto::v1::{
    ListPromptsRequest, ListPromptsResponse, UserPrompt, contract_server::Contract,
};
use tonic::{Request, Response, Status};

use crate::app::App;

/// The Contract service.
#[derive(Debug)]
pub struct ContractService {
    app: Arc<App>,
}

impl ContractService {
    /// Over `app`.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl Contract for ContractService {
    async fn list_prompts(
        &self,
        _request: Request<ListPromptsRequest>,
    ) -> Result<Response<ListPromptsResponse>, Status> {
        let prompts = self
            .app
            .config
            .prompts
            .iter()
            .map(|p| UserPrompt {
                name: p.name.clone(),
                description: p.description.clone(),
                text: p.text.clone(),
                arguments: p.arguments.clone(),
            })
            .collect();
        Ok(Response::new(ListPromptsResponse { prompts }))
    }
}
