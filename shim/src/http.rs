//! `mcp-shim --http ADDR`: MCP over streamable HTTP, for containers where
//! the client is not a local process. Each MCP session (Mcp-Session-Id) gets
//! its own [`Session`] and so its own active cluster. A bearer token is
//! required when the address is reachable beyond this host.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper_util::{rt::TokioExecutor, rt::TokioIo, server::conn::auto};
use nskd_proto::{autostart::Starter, socket::SocketLocation};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tower::Service;

use crate::{session::Session, tools::NskdTools};

type Body = BoxBody<Bytes, Infallible>;

fn unauthorized() -> Response<Body> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, "Bearer")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(br#"{"error":"missing or wrong bearer token: send Authorization: Bearer <NSKD_SHIM_TOKEN>"}"#)).boxed())
        .expect("static response")
}

/// Constant-time comparison of the presented bearer token.
fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    presented.len() == token.len()
        && presented
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Serves MCP on `addr` until the process is stopped.
pub async fn serve(
    addr: SocketAddr,
    location: SocketLocation,
    starter: Option<Starter>,
    token: Option<String>,
) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && token.is_none() {
        anyhow::bail!(
            "--http {addr} is reachable from other hosts: set NSKD_SHIM_TOKEN (or --http-token-file) so that clients must send `Authorization: Bearer <token>`"
        );
    }
    let mut config = StreamableHttpServerConfig::default();
    if !addr.ip().is_loopback() {
        // Behind a Service / port mapping the Host header is not ours to know;
        // the bearer token guards instead.
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || {
            Ok(NskdTools::new(
                Session::new(location.clone()).with_starter(starter.clone()),
            ))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}; choose another --http address")
    })?;
    eprintln!(
        "mcp-shim: serving MCP over streamable HTTP on http://{}/mcp",
        listener.local_addr()?
    );
    let token: Arc<Option<String>> = Arc::new(token);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let (service, token) = (service.clone(), token.clone());
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (mut service, token) = (service.clone(), token.clone());
                async move {
                    if let Some(t) = token.as_deref()
                        && !authorized(&req, t)
                    {
                        return Ok::<_, Infallible>(unauthorized());
                    }
                    service.call(req).await
                }
            });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), handler)
                .await
            {
                tracing::debug!(error = %e, "http connection ended");
            }
        });
    }
}
