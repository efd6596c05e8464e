//! The native Rancher v3 source, for hosts without nsk: list clusters
//! (paginated), generate one kubeconfig per cluster, read the token's
//! expiry.

use std::{sync::Arc, time::Duration};

use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Deserialize;

use super::{RemoteCluster, SourceError, contract::AuthInfo, token::TokenSource};
use crate::{
    config::{Config, Secret},
    error::{ErrorKind, http_status_kind, transport_kind},
};

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Talks to Rancher's v3 API.
#[derive(Debug)]
pub struct RancherSource {
    base: String,
    client: HttpsClient,
    token: TokenSource,
    timeout: Duration,
}

#[derive(Debug, Deserialize)]
struct Collection {
    #[serde(default)]
    data: Vec<ClusterJson>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ClusterJson {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    version: Option<VersionJson>,
}

#[derive(Debug, Deserialize)]
struct VersionJson {
    #[serde(default, rename = "gitVersion")]
    git_version: String,
}

#[derive(Debug, Deserialize)]
struct GeneratedKubeconfig {
    config: String,
}

#[derive(Debug, Deserialize)]
struct TokenJson {
    #[serde(default, rename = "userId")]
    user_id: String,
    #[serde(default, rename = "expiresAt")]
    expires_at: String,
    #[serde(default)]
    expired: bool,
}

/// Accepts any server certificate (`rancher_insecure = true`).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(config: &Config) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    if config.nsk.rancher_insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &config.nsk.rancher_ca_file {
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("cannot read rancher_ca_file {}: {e}", ca.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| {
                format!(
                    "rancher_ca_file {} is not a PEM certificate bundle: {e}",
                    ca.display()
                )
            })?;
            roots
                .add(cert)
                .map_err(|e| format!("rancher_ca_file {}: {e}", ca.display()))?;
        }
    } else {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

impl RancherSource {
    /// From the configuration (`rancher_url` is required; config validation says so).
    pub fn new(config: &Config) -> Result<Self, String> {
        let base = config
            .nsk
            .rancher_url
            .clone()
            .ok_or("the rancher source needs [nsk] rancher_url (or RANCHER_URL)")?
            .trim_end_matches('/')
            .to_string();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(Self {
            base,
            client: Client::builder(TokioExecutor::new()).build(connector),
            token: TokenSource::new(
                config.nsk.rancher_token.clone(),
                config.nsk.rancher_token_file.clone(),
            ),
            timeout: config.nsk.timeout,
        })
    }

    /// The Rancher URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn token(&self) -> Result<Secret, SourceError> {
        match self.token.current() {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(SourceError::new(
                ErrorKind::Unauthorized,
                "no Rancher token configured: set RANCHER_TOKEN, [nsk] rancher_token or rancher_token_file",
            )),
            Err(e) => Err(SourceError::new(ErrorKind::Unauthorized, e)),
        }
    }

    /// One request; the URL must be on the configured Rancher (the token
    /// is never sent elsewhere, even if a `next` link points away).
    async fn call(&self, method: Method, url: &str) -> Result<Bytes, SourceError> {
        if !url.starts_with(&format!("{}/", self.base)) {
            return Err(SourceError::new(
                ErrorKind::Internal,
                format!(
                    "Rancher answered with a link outside {} ({url}); refusing to send the token there",
                    self.base
                ),
            ));
        }
        let token = self.token()?;
        let request = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| {
                SourceError::new(ErrorKind::Invalid, format!("bad Rancher URL {url}: {e}"))
            })?;
        let what = format!("{method} {url}");
        let send = async {
            let resp = self.client.request(request).await.map_err(|e| {
                SourceError::new(
                    transport_kind(&e),
                    format!("{what} failed: {}", crate::error::error_chain(&e)),
                )
            })?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| {
                    SourceError::new(
                        transport_kind(&e),
                        format!("{what}: reading the answer failed: {e}"),
                    )
                })?
                .to_bytes();
            Ok::<_, SourceError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| {
                SourceError::new(
                    ErrorKind::Timeout,
                    format!(
                        "{what} timed out after {:?}; raise [nsk] timeout if Rancher is just slow",
                        self.timeout
                    ),
                )
            })??;
        if status.is_success() {
            return Ok(body);
        }
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| crate::kubeconfig::one_line(&String::from_utf8_lossy(&body)));
        Err(SourceError::new(
            http_status_kind(status.as_u16()),
            format!("{what}: Rancher answered {status}: {detail}"),
        ))
    }

    /// GET /v3/clusters, following pagination.
    pub async fn list(&self) -> Result<Vec<RemoteCluster>, SourceError> {
        let mut url = format!("{}/v3/clusters", self.base);
        let mut out = Vec::new();
        for _ in 0..1000 {
            let body = self.call(Method::GET, &url).await?;
            let page: Collection = serde_json::from_slice(&body).map_err(|e| {
                SourceError::new(
                    ErrorKind::Internal,
                    format!("GET {url}: not a Rancher cluster collection ({e})"),
                )
            })?;
            out.extend(page.data.into_iter().map(|c| RemoteCluster {
                name: if c.name.is_empty() {
                    c.id.clone()
                } else {
                    c.name
                },
                id: c.id,
                state: c.state,
                version: c.version.map(|v| v.git_version).unwrap_or_default(),
            }));
            match page.pagination.and_then(|p| p.next) {
                Some(next) if !next.is_empty() => url = next,
                _ => return Ok(out),
            }
        }
        Err(SourceError::new(
            ErrorKind::Internal,
            "Rancher's cluster list did not end after 1000 pages",
        ))
    }

    /// POST /v3/clusters/{id}?action=generateKubeconfig.
    pub async fn kubeconfig(&self, cluster: &RemoteCluster) -> Result<String, SourceError> {
        let url = format!(
            "{}/v3/clusters/{}?action=generateKubeconfig",
            self.base, cluster.id
        );
        let body = self.call(Method::POST, &url).await?;
        let generated: GeneratedKubeconfig = serde_json::from_slice(&body).map_err(|e| {
            SourceError::new(
                ErrorKind::Internal,
                format!(
                    "generateKubeconfig for {} ({}) answered without a config ({e})",
                    cluster.name, cluster.id
                ),
            )
        })?;
        Ok(generated.config)
    }

    /// GET /v3/tokens/{name}: who the token is and when it expires.
    pub async fn verify(&self) -> Result<AuthInfo, SourceError> {
        let token = self.token()?;
        let name = token
            .expose()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let url = format!("{}/v3/tokens/{name}", self.base);
        let body = self.call(Method::GET, &url).await?;
        let t: TokenJson = serde_json::from_slice(&body).map_err(|e| {
            SourceError::new(
                ErrorKind::Internal,
                format!("GET {url}: not a Rancher token ({e})"),
            )
        })?;
        if t.expired {
            return Err(SourceError::new(
                ErrorKind::Unauthorized,
                format!("the Rancher token {name} has expired"),
            ));
        }
        let expires = match t.expires_at.as_str() {
            "" => None,
            s => Some(humantime::parse_rfc3339_weak(s).map_err(|e| {
                SourceError::new(
                    ErrorKind::Internal,
                    format!("Rancher token {name}: bad expiresAt {s:?}: {e}"),
                )
            })?),
        };
        Ok(AuthInfo {
            user: t.user_id,
            expires,
        })
    }
}
