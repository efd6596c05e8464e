//! OpenID Connect token checks for `[http_auth]`: discovery of the issuer's
//! JWKS, a key cache refetched on an unknown `kid` (key rotation; at most
//! once per [`MIN_REFETCH`]), and validation with `jsonwebtoken` (signature,
//! `iss`, `aud`, `exp`/`nbf` with clock skew, required claims). The caller's
//! username and groups come out checked header-safe, ready for Kubernetes
//! impersonation headers.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, Jwk, JwkSet},
};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::HttpAuthConfig;

/// Shortest time between two JWKS fetches caused by unknown `kid`s, so a
/// flood of forged tokens cannot turn nskd into a load generator.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Keys older than this are fetched again on the next check.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// Time allowed for one request to the provider.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery or JWKS document read.
const MAX_DOCUMENT: usize = 512 * 1024;
use crate::impersonate::MAX_GROUPS;
/// Longest token accepted.
const MAX_TOKEN: usize = 16 * 1024;

/// A caller the token proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The username claim.
    pub user: String,
    /// The groups claim.
    pub groups: Vec<String>,
}

/// Why a token is refused or cannot be checked. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token itself is unacceptable (answered as 401).
    #[error("token refused: {0}")]
    Invalid(String),
    /// The provider could not be reached or answered nonsense (503).
    #[error("cannot check tokens: {0}")]
    Provider(String),
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Invalid(msg.into())
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Debug, Default)]
struct Keys {
    jwks_uri: Option<String>,
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

/// Checks tokens against one `[http_auth]` configuration.
pub struct Verifier {
    config: HttpAuthConfig,
    issuer: String,
    audience: String,
    client: HttpsClient,
    keys: Mutex<Keys>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `config`; `None` when no issuer is configured.
    pub fn new(config: &HttpAuthConfig) -> Result<Option<Self>, String> {
        let (Some(issuer), Some(audience)) = (&config.issuer, &config.audience) else {
            return Ok(None);
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("[http_auth] TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Some(Self {
            config: config.clone(),
            issuer: issuer.clone(),
            audience: audience.clone(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            keys: Mutex::new(Keys::default()),
        }))
    }

    /// The issuer tokens must come from.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks `token` and returns who it names.
    pub async fn verify(&self, token: &str) -> Result<Subject, AuthError> {
        if token.len() > MAX_TOKEN {
            return Err(invalid(format!(
                "the token is longer than {MAX_TOKEN} bytes"
            )));
        }
        let header = decode_header(token).map_err(|e| {
            invalid(format!(
                "not a signed JWT ({e}); send an access or ID token from {}",
                self.issuer
            ))
        })?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(invalid(format!(
                "alg {:?} (a shared secret) is never accepted; tokens must be signed with the issuer's published keys",
                header.alg
            )));
        }
        let kid = header.kid.as_deref().ok_or_else(|| {
            invalid("the token's header has no kid, so no published key can be chosen")
        })?;
        let jwk = self.key(kid).await?;
        if let Some(alg) = jwk.common.key_algorithm
            && format!("{alg:?}") != format!("{:?}", header.alg)
        {
            return Err(invalid(format!(
                "the token says alg {:?} but key {kid} is for {alg:?}",
                header.alg
            )));
        }
        let family_ok = matches!(
            (&jwk.algorithm, header.alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        if !family_ok {
            return Err(invalid(format!(
                "alg {:?} does not fit key {kid}'s type",
                header.alg
            )));
        }
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| AuthError::Provider(format!("key {kid} of the JWKS is unusable: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.config.clock_skew.as_secs();
        validation.validate_nbf = true;
        let data = decode::<Value>(token, &key, &validation).map_err(|e| self.explain(&e))?;
        self.subject(&data.claims)
    }

    /// Words for a failed validation.
    fn explain(&self, e: &jsonwebtoken::errors::Error) -> AuthError {
        use jsonwebtoken::errors::ErrorKind as K;
        invalid(match e.kind() {
            K::ExpiredSignature => "the token has expired; get a new one".to_string(),
            K::ImmatureSignature => "the token is not valid yet (nbf); check the clocks".into(),
            K::InvalidSignature => {
                "the signature does not match the issuer's key; the token was not signed by the issuer".into()
            }
            K::InvalidIssuer => format!("the token's iss is not {}", self.issuer),
            K::InvalidAudience => format!(
                "the token's aud does not name {}; request a token for this audience",
                self.audience
            ),
            K::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
            K::InvalidAlgorithm => "the token's alg does not fit the key".into(),
            other => format!("invalid token ({other:?})"),
        })
    }

    /// Required claims, then the username and groups.
    fn subject(&self, claims: &Value) -> Result<Subject, AuthError> {
        for (claim, want) in &self.config.required_claims {
            let ok = match claims.get(claim) {
                Some(Value::String(s)) => s == want,
                Some(Value::Bool(b)) => b.to_string() == *want,
                Some(Value::Number(n)) => n.to_string() == *want,
                Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(want)),
                _ => false,
            };
            if !ok {
                return Err(invalid(format!(
                    "the required claim {claim}={want} is missing or different"
                )));
            }
        }
        let uc = &self.config.username_claim;
        let user = claims.get(uc).and_then(Value::as_str).ok_or_else(|| {
            invalid(format!(
                "the token has no string claim {uc} (the [http_auth] username_claim)"
            ))
        })?;
        check_name("username", user)?;
        let gc = &self.config.groups_claim;
        let groups: Vec<String> = match claims.get(gc) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid(format!("the {gc} claim holds a non-string entry")))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid(format!("the {gc} claim is not a list of strings"))),
        };
        if groups.len() > MAX_GROUPS {
            return Err(invalid(format!(
                "the {gc} claim lists {} groups; at most {MAX_GROUPS} are accepted",
                groups.len()
            )));
        }
        for g in &groups {
            check_name("group", g)?;
        }
        Ok(Subject {
            user: user.to_string(),
            groups,
        })
    }

    /// The published key `kid`: from the cache, else after a refetch (rate
    /// limited), else refused.
    async fn key(&self, kid: &str) -> Result<Jwk, AuthError> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|t| t.elapsed() > MAX_KEY_AGE);
        if !stale && let Some(k) = keys.set.as_ref().and_then(|s| s.find(kid)) {
            return Ok(k.clone());
        }
        let may_fetch = stale || keys.fetched.is_none_or(|t| t.elapsed() >= MIN_REFETCH);
        if may_fetch {
            match self.fetch(&mut keys).await {
                Ok(()) => {}
                // Keep serving the keys we have while the provider is down.
                Err(e) if keys.set.is_none() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; using the cached keys"),
            }
        }
        keys.set
            .as_ref()
            .and_then(|s| s.find(kid))
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "no key {kid:?} in the issuer's JWKS; the token was not signed by {}",
                    self.issuer
                ))
            })
    }

    /// Discovery (once), then the JWKS.
    async fn fetch(&self, keys: &mut Keys) -> Result<(), AuthError> {
        keys.fetched = Some(Instant::now());
        let jwks_uri = match &keys.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let doc = self.get_json(&url).await?;
                if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                    return Err(AuthError::Provider(format!(
                        "{url} names issuer {:?}, not {}; fix [http_auth] issuer (exact, without a trailing slash)",
                        doc.get("issuer"),
                        self.issuer
                    )));
                }
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AuthError::Provider(format!("{url} has no jwks_uri")))?
                    .to_string();
                keys.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let doc = self.get_json(&jwks_uri).await?;
        let set: JwkSet = serde_json::from_value(doc)
            .map_err(|e| AuthError::Provider(format!("{jwks_uri} is not a JWK set: {e}")))?;
        tracing::info!(issuer = %self.issuer, keys = set.keys.len(), "fetched the issuer's JWKS");
        keys.set = Some(set);
        Ok(())
    }

    async fn get_json(&self, url: &str) -> Result<Value, AuthError> {
        let provider = |what: String| {
            AuthError::Provider(format!(
                "{url}: {what}; check [http_auth] issuer and that the provider is reachable from nskd"
            ))
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| provider(format!("bad URL ({e})")))?;
        let get = self.client.get(uri);
        let resp = tokio::time::timeout(FETCH_TIMEOUT, get)
            .await
            .map_err(|_| provider(format!("no answer within {FETCH_TIMEOUT:?}")))?
            .map_err(|e| provider(format!("request failed ({e})")))?;
        if !resp.status().is_success() {
            return Err(provider(format!("HTTP {}", resp.status())));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(resp.into_body(), MAX_DOCUMENT).collect(),
        )
        .await
        .map_err(|_| provider(format!("body not read within {FETCH_TIMEOUT:?}")))?
        .map_err(|e| {
            provider(format!(
                "body unreadable or over {MAX_DOCUMENT} bytes ({e})"
            ))
        })?
        .to_bytes();
        serde_json::from_slice(&body).map_err(|e| provider(format!("not JSON ({e})")))
    }
}

/// [`crate::impersonate::check_name`], as a refused token.
fn check_name(what: &str, name: &str) -> Result<(), AuthError> {
    crate::impersonate::check_name(what, name).map_err(|e| invalid(e.to_string()))
}
