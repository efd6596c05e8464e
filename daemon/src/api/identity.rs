//! `nskd.v1.Identity`: the shim's questions about HTTP callers, answered
//! from `[http_auth]` ([`crate::oidc`]).

use std::sync::Arc;

use nskd_proto::v1::{self as pb, identity_server::Identity};
use tonic::{Request, Response, Status};

use crate::{
    config::HttpAuthConfig,
    oidc::{AuthError, Verifier},
};

/// The Identity service.
#[derive(Debug)]
pub struct IdentityService {
    config: HttpAuthConfig,
    verifier: Option<Arc<Verifier>>,
}

impl IdentityService {
    /// Over `config`; fails only when TLS cannot be set up.
    pub fn new(config: &HttpAuthConfig) -> Result<Self, String> {
        Ok(Self {
            config: config.clone(),
            verifier: Verifier::new(config)?.map(Arc::new),
        })
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn http_auth(
        &self,
        _req: Request<pb::HttpAuthRequest>,
    ) -> Result<Response<pb::HttpAuthReply>, Status> {
        Ok(Response::new(pb::HttpAuthReply {
            oidc: self.verifier.is_some(),
            issuer: self.config.issuer.clone().unwrap_or_default(),
            resource: self.config.resource.clone().unwrap_or_default(),
        }))
    }

    async fn authenticate(
        &self,
        req: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateReply>, Status> {
        let Some(verifier) = &self.verifier else {
            return Err(Status::failed_precondition(
                "nskd has no [http_auth] issuer: set issuer and audience in its config to accept OIDC tokens",
            ));
        };
        match verifier.verify(&req.get_ref().token).await {
            Ok(subject) => {
                tracing::debug!(user = %subject.user, groups = ?subject.groups, "OIDC caller accepted");
                Ok(Response::new(pb::AuthenticateReply {
                    user: subject.user,
                    groups: subject.groups,
                }))
            }
            Err(AuthError::Invalid(reason)) => {
                tracing::info!(reason = %reason, "OIDC token refused");
                Err(Status::unauthenticated(reason))
            }
            Err(e @ AuthError::Provider(_)) => {
                tracing::warn!(error = %e, "OIDC token could not be checked");
                Err(Status::unavailable(e.to_string()))
            }
        }
    }
}
