//! `mcp-shim --http ADDR`: MCP over streamable HTTP, for containers where
//! the client is not a local process. Each MCP session (Mcp-Session-Id) gets
//! its own [`Session`] and so its own active cluster. A bearer token is
//! always required, loopback included (another local user could otherwise
//! reach the daemon through us): given, or generated and written to a 0600
//! file whose path is printed. With `--http-oidc`, callers present OIDC
//! tokens that the daemon checks ([`crate::oidc`]); a static token given as
//! well still works (e.g. for a health checker).
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

/// OIDC: serves the metadata, or checks the token and attaches the
/// [`crate::oidc::Caller`] to `req`; `Err` is the response to send instead.
async fn authenticate(
    auth: &crate::oidc::Authenticator,
    req: &mut Request<Incoming>,
    presented: Option<&[u8]>,
) -> Result<(), Response<Body>> {
    use crate::oidc::{self, Refusal};
    let settings = match auth.settings().await {
        Ok(s) if s.oidc => s,
        Ok(_) => {
            return Err(oidc::unavailable(
                "mcp-shim runs with --http-oidc but nskd has no [http_auth] issuer: set [http_auth] issuer and audience in nskd's config, or drop --http-oidc",
            ));
        }
        Err(Refusal::Unavailable(e) | Refusal::Unauthorized(e)) => {
            return Err(oidc::unavailable(&e));
        }
    };
    if oidc::is_metadata_path(req.uri().path()) {
        return Err(oidc::metadata(req, &settings));
    }
    match auth.check(presented).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(())
        }
        Err(Refusal::Unauthorized(reason)) => Err(oidc::unauthorized(
            &oidc::metadata_url(req, &settings.resource),
            &reason,
            presented.is_some(),
        )),
        Err(Refusal::Unavailable(reason)) => Err(oidc::unavailable(&reason)),
    }
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
    oidc: bool,
    toolsets: Vec<String>,
    stateless: bool,
) -> anyhow::Result<()> {
    let auth = oidc.then(|| crate::oidc::Authenticator::new(location.clone()));
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
        TokenSource::Given(b) => Some(b),
        TokenSource::Generate if oidc => None,
        TokenSource::Generate => {
            let (b, path) = generated(local.port())?;
            eprintln!(
                "mcp-shim: no token given (NSKD_SHIM_TOKEN or --http-token-file): generated one in {}; clients must send `Authorization: Bearer <contents of that file>`",
                path.display()
            );
            Some(b)
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
        let (service, token, auth) = (service.clone(), token.clone(), auth.clone());
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let (mut service, token, auth) = (service.clone(), token.clone(), auth.clone());
                async move {
                    let presented = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .map(|v| v.as_bytes().to_vec());
                    if token
                        .as_ref()
                        .as_ref()
                        .is_some_and(|t| t.authorizes(presented.as_deref()))
                    {
                        return service.call(req).await;
                    }
                    let Some(auth) = auth else {
                        return Ok::<_, Infallible>(unauthorized());
                    };
                    match authenticate(&auth, &mut req, presented.as_deref()).await {
                        Ok(()) => service.call(req).await,
                        Err(refused) => Ok(refused),
                    }
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
