//! OpenID Connect callers of `mcp-shim --http --http-oidc`: the daemon checks
//! each bearer token against its `[http_auth]` settings (one source of
//! truth; the shim holds no keys and no issuer of its own), the shim serves
//! the RFC 9728 protected-resource metadata, answers refused tokens with
//! `401` and `WWW-Authenticate: Bearer resource_metadata="…"`, and names
//! the accepted caller on every call it forwards.

use std::{convert::Infallible, time::Duration};

use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Bytes;
use nskd_proto::{
    client::{Identity, Link},
    socket::SocketLocation,
    v1::{self as pb, identity_client::IdentityClient},
};

type Body = BoxBody<Bytes, Infallible>;

/// The metadata path (RFC 9728 §3: the well-known prefix before the
/// resource's path; the bare form is served too).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// How long one check by the daemon may take before the caller gets a 503.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::session::Caller;

/// Why a request is not served.
#[derive(Debug)]
pub enum Refusal {
    /// No usable token, or the daemon refused it (the reason, for the body).
    Unauthorized(String),
    /// The daemon could not be asked.
    Unavailable(String),
}

/// Asks the daemon about tokens.
#[derive(Debug, Clone)]
pub struct Authenticator {
    link: Link,
}

impl Authenticator {
    /// Talks to the daemon at `location`.
    pub fn new(location: SocketLocation) -> Self {
        Self {
            link: Link::new(
                location,
                Identity {
                    client: format!("mcp-shim {} (http auth)", env!("CARGO_PKG_VERSION")),
                    ..Default::default()
                },
            ),
        }
    }

    /// The daemon's `[http_auth]` view (issuer, resource).
    pub async fn settings(&self) -> Result<pb::HttpAuthReply, Refusal> {
        let (channel, _) = self.link.channel().await.map_err(|e| {
            Refusal::Unavailable(format!("cannot reach nskd to read [http_auth]: {e}"))
        })?;
        let req = self.link.identity().request(pb::HttpAuthRequest {});
        match IdentityClient::new(channel).http_auth(req).await {
            Ok(r) => Ok(r.into_inner()),
            Err(status) => {
                self.link.note_failure(&status).await;
                Err(Refusal::Unavailable(self.link.explain(&status)))
            }
        }
    }

    /// Checks the `Authorization` header's bearer token with the daemon.
    pub async fn check(&self, authorization: Option<&[u8]>) -> Result<Caller, Refusal> {
        let token = bearer_token(authorization).ok_or_else(|| {
            Refusal::Unauthorized(
                "missing bearer token: send Authorization: Bearer <OIDC access or ID token from the issuer named in the resource metadata>"
                    .into(),
            )
        })?;
        let (channel, _) = self.link.channel().await.map_err(|e| {
            Refusal::Unavailable(format!("cannot reach nskd to check the token: {e}"))
        })?;
        let req = self.link.identity().request(pb::AuthenticateRequest {
            token: token.to_string(),
        });
        let mut client = IdentityClient::new(channel);
        match tokio::time::timeout(CHECK_TIMEOUT, client.authenticate(req)).await {
            Err(_) => Err(Refusal::Unavailable(format!(
                "nskd did not check the token within {CHECK_TIMEOUT:?}; retry, and see nskd's log if it persists"
            ))),
            Ok(Ok(r)) => {
                let r = r.into_inner();
                Ok(Caller {
                    user: r.user,
                    groups: r.groups,
                })
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unauthenticated => {
                Err(Refusal::Unauthorized(status.message().to_string()))
            }
            Ok(Err(status)) => {
                self.link.note_failure(&status).await;
                Err(Refusal::Unavailable(self.link.explain(&status)))
            }
        }
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive), if that is what
/// the header holds.
fn bearer_token(authorization: Option<&[u8]>) -> Option<&str> {
    let (scheme, token) = authorization?.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = std::str::from_utf8(token).ok()?.trim();
    (!token.is_empty()).then_some(token)
}

/// True for the metadata paths (`/.well-known/oauth-protected-resource`
/// and `…/mcp`).
pub fn is_metadata_path(path: &str) -> bool {
    path == METADATA_PATH || path == format!("{METADATA_PATH}/mcp")
}

/// The public base URL (`scheme://host`) of a request: from `resource` when
/// configured, else from its Host header (plain http: TLS ends in front).
fn base_url<B>(req: &Request<B>, resource: &str) -> String {
    if let Some(base) = resource.strip_suffix("/mcp") {
        return base.to_string();
    }
    if !resource.is_empty() {
        return resource.trim_end_matches('/').to_string();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The resource (the MCP endpoint's URL) a request addressed.
pub fn resource_url<B>(req: &Request<B>, resource: &str) -> String {
    if !resource.is_empty() {
        return resource.to_string();
    }
    format!("{}/mcp", base_url(req, resource))
}

/// The metadata document's URL for a request.
pub fn metadata_url<B>(req: &Request<B>, resource: &str) -> String {
    format!("{}{METADATA_PATH}/mcp", base_url(req, resource))
}

/// RFC 9728 protected-resource metadata.
pub fn metadata<B>(req: &Request<B>, settings: &pb::HttpAuthReply) -> Response<Body> {
    let doc = serde_json::json!({
        "resource": resource_url(req, &settings.resource),
        "authorization_servers": [settings.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": "nskd MCP",
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(doc.to_string())).boxed())
        .expect("static response")
}

/// Quotes `s` for a `WWW-Authenticate` parameter (no quotes, backslashes or
/// control characters survive).
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\' && c.is_ascii())
        .take(300)
        .collect()
}

/// `401` naming the metadata, with the reason as `error_description`.
pub fn unauthorized(metadata_url: &str, reason: &str, token_given: bool) -> Response<Body> {
    let mut challenge = format!("Bearer resource_metadata=\"{}\"", quoted(metadata_url));
    if token_given {
        challenge.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{}\"",
            quoted(reason)
        ));
    }
    let mut response = error_response(StatusCode::UNAUTHORIZED, reason);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_str(&challenge).expect("quoted to visible ASCII"),
    );
    response
}

/// `status` with `{"error": reason}`.
fn error_response(status: StatusCode, reason: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(
                serde_json::json!({ "error": reason }).to_string(),
            ))
            .boxed(),
        )
        .expect("static response")
}

/// `503`: the daemon could not check the token.
pub fn unavailable(reason: &str) -> Response<Body> {
    error_response(StatusCode::SERVICE_UNAVAILABLE, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_and_urls() {
        assert_eq!(bearer_token(Some(b"Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some(b"bearer abc ")), Some("abc"));
        assert_eq!(bearer_token(Some(b"Basic abc")), None);
        assert_eq!(bearer_token(Some(b"Bearer ")), None);
        assert_eq!(bearer_token(None), None);
        let req = Request::builder()
            .header(header::HOST, "nskd.example:8080")
            .body(())
            .unwrap();
        assert_eq!(resource_url(&req, ""), "http://nskd.example:8080/mcp");
        assert_eq!(
            metadata_url(&req, ""),
            "http://nskd.example:8080/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url(&req, "https://mcp.example/mcp"),
            "https://mcp.example/.well-known/oauth-protected-resource/mcp"
        );
        let hostile = Request::builder()
            .header(header::HOST, "a\"b")
            .body(())
            .unwrap();
        assert_eq!(resource_url(&hostile, ""), "http://localhost/mcp");
        let r = unauthorized("http://x/m", "bad \"sig\"\r\nX: y", true);
        let c = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(
            c,
            "Bearer resource_metadata=\"http://x/m\", error=\"invalid_token\", error_description=\"bad sigX: y\""
        );
    }
}
