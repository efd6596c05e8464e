//! A tower layer around the gRPC server: request counts by method and code,
//! and tool-call counts and latency for the tool a shim names.

use std::{
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use tower::{Layer, Service};

/// Adds metrics to every gRPC request.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

/// The service [`MetricsLayer`] makes.
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
}

/// gRPC status code name of a numeric `grpc-status`.
fn code_name(value: &str) -> String {
    let code = value
        .parse::<i32>()
        .map(tonic::Code::from)
        .unwrap_or(tonic::Code::Unknown);
    format!("{code:?}")
}

impl<S, B, R> Service<http::Request<B>> for MetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let tool = req
            .headers()
            .get(nskd_proto::TOOL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let started = Instant::now();
        let future = self.inner.call(req);
        Box::pin(async move {
            let result = future.await;
            let code = match &result {
                // Errors are trailers-only responses: the status is a header.
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(code_name)
                    .unwrap_or_else(|| "OK".into()),
                Err(_) => "Transport".into(),
            };
            let verdict = result.as_ref().ok().and_then(|r| {
                r.headers()
                    .get(nskd_proto::OUTCOME_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            });
            crate::metrics::grpc_request(
                &method,
                tool.as_deref(),
                &code,
                verdict.as_deref(),
                started.elapsed(),
            );
            result
        })
    }
}
