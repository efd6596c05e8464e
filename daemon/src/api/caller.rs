//! The HTTP caller a shim names (`x-nskd-user`, `x-nskd-groups`): refused
//! when not header-safe ([`caller_check`]), else held for the whole call
//! ([`CallerLayer`]) so that every cluster request is made as that caller
//! ([`crate::impersonate`]). Only peers of the daemon's own uid get this far
//! ([`super::peer_check`]); why that suffices is in docs/security.md.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tonic::{Request, Status};
use tower::{Layer, Service};

use crate::{
    access::Access,
    impersonate::{self, Caller},
};

/// The caller named by `headers`.
fn caller_of(headers: &http::HeaderMap) -> Result<Option<Caller>, impersonate::NameError> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map_err(|_| ()))
            .transpose()
    };
    let (Ok(user), Ok(groups)) = (
        text(nskd_proto::USER_HEADER),
        text(nskd_proto::GROUPS_HEADER),
    ) else {
        return Err(impersonate::NameError::from(
            "x-nskd-user or x-nskd-groups is not visible ASCII".to_string(),
        ));
    };
    Caller::from_metadata(user, groups)
}

/// Refuses a call whose named caller cannot be impersonated safely, is
/// over its rate, or may not call the tool it names ([`Access`]).
pub fn caller_check(
    access: Arc<Access>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let caller = match caller_of(&req.metadata().clone().into_headers()) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(req),
            Err(e) => {
                return Err(Status::invalid_argument(format!(
                    "the caller named to nskd is refused: {e}; the shim passes on only what the OIDC token proved"
                )));
            }
        };
        access
            .check_rate(&caller)
            .map_err(Status::resource_exhausted)?;
        let tool = req
            .metadata()
            .get(nskd_proto::TOOL_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        access
            .check_tool(&caller, tool)
            .map_err(Status::permission_denied)?;
        Ok(req)
    }
}

/// Holds the named caller for the call.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerLayer;

impl<S> Layer<S> for CallerLayer {
    type Service = CallerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CallerService { inner }
    }
}

/// The service [`CallerLayer`] makes.
#[derive(Debug, Clone)]
pub struct CallerService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for CallerService<S>
where
    S: Service<http::Request<B>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // caller_check ran before and refused what does not parse.
        let caller = caller_of(req.headers()).ok().flatten().map(Arc::new);
        let future = self.inner.call(req);
        Box::pin(impersonate::scope(caller, future))
    }
}
