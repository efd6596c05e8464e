//! `mcp-shim --http ADDR`: MCP over streamable HTTP, for containers where
//! the client is not a local process. Each MCP session (Mcp-Session-Id) gets
//! its own [`Session`] and so its own active cluster. A bearer token is
//! always required, loopback included (another local user could otherwise
//! reach the daemon through us): given, or generated and written to a 0600
//! file whose path is printed.
//!
//! With `--stateless` (several replicas behind one Kubernetes Service) no
//! MCP session is kept: every POST is answered on its own, so any replica
//! can serve any request; see docs/operations.md ("Several replicas").

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper_util::{rt::TokioExecutor, rt::TokioIo, server::conn::auto};
use nskd_proto::{
    autostart::Starter,
    bearer::{self, Bearer},
    socket::SocketLocation,
};
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
        .body(Full::new(Bytes::from_static(br#"{"error":"missing or wrong bearer token: send Authorization: Bearer <token> (NSKD_SHIM_TOKEN, --http-token-file, or the file mcp-shim printed at start)"}"#)).boxed())
        .expect("static response")
}

/// Where the token HTTP clients must send comes from.
#[derive(Debug)]
pub enum TokenSource {
    /// Given (flag, variable or file), already checked.
    Given(Bearer),
    /// None given: generate one and write it to a private file.
    Generate,
}

/// Generates a token for `port` and writes it to
/// `<socket dir>/shim-<port>.token` (0600, in a 0700 directory of ours).
fn generated(port: u16) -> anyhow::Result<(Bearer, std::path::PathBuf)> {
    let token = bearer::generate()?;
    let dir = nskd_proto::socket::default_socket_dir();
    let path = bearer::write_file(&dir, &format!("shim-{port}.token"), &token)?;
    Ok((Bearer::new(&token, "the generated token")?, path))
}

/// Serves MCP on `addr` until the process is stopped.
pub async fn serve(
    addr: SocketAddr,
    location: SocketLocation,
    starter: Option<Starter>,
    token: TokenSource,
    toolsets: Vec<String>,
    stateless: bool,
) -> anyhow::Result<()> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!stateless)
        .with_json_response(stateless);
    if !addr.ip().is_loopback() {
        // Behind a Service / port mapping the Host header is not ours to know;
        // the bearer token guards instead.
        config = config.disable_allowed_hosts();
    }
    let base = Session::new(location)
        .with_starter(starter)
        .with_toolsets(toolsets);
    let base = if stateless { base.stateless() } else { base };
    let service = StreamableHttpService::new(
        move || Ok(NskdTools::new(base.for_client())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr}: {e}; choose another --http address")
    })?;
    let local = listener.local_addr()?;
    let token = match token {
        TokenSource::Given(b) => b,
        TokenSource::Generate => {
            let (b, path) = generated(local.port())?;
            eprintln!(
                "mcp-shim: no token given (NSKD_SHIM_TOKEN or --http-token-file): generated one in {}; clients must send `Authorization: Bearer <contents of that file>`",
                path.display()
            );
            b
        }
    };
    eprintln!(
        "mcp-shim: serving MCP over streamable HTTP on http://{local}/mcp{}",
        if stateless {
            " (stateless: no session kept between requests)"
        } else {
            ""
        }
    );
    let token = Arc::new(token);
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
                    let presented = req.headers().get(header::AUTHORIZATION);
                    if !token.authorizes(presented.map(|v| v.as_bytes())) {
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
