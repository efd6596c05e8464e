//! Driving the fake Rancher server (src/bin/fake-rancher.rs) from tests.
//!
//! [`RancherState`] is the JSON state file the server re-reads on every
//! request, so a test changes tokens, clusters and faults at runtime with
//! [`FakeRancher::update`]. The same types are used by the binary itself.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use http_body_util::{BodyExt, Full};
use hyper::{
    HeaderMap, Method, Request, StatusCode,
    body::Bytes,
    header::{AUTHORIZATION, HeaderValue},
};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::{
    ClientConfig, RootCertStore,
    crypto::ring,
    pki_types::{CertificateDer, pem::PemObject},
};
use serde::{Deserialize, Serialize};

/// Rancher API token of a fresh [`RancherState`].
pub const DEFAULT_TOKEN: &str = "token-abcde:SECRETSECRETSECRET0123456789";
/// `/v3/clusters` page size when the state sets none (Rancher's default limit).
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// How long [`FakeRancher::start`] waits for the `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One downstream cluster as the fake Rancher knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RancherCluster {
    /// Rancher cluster id, e.g. `c-m-0001`.
    pub id: String,
    /// Display name (also the kubeconfig cluster/context name).
    pub name: String,
    /// Rancher state, e.g. `active`.
    pub state: String,
    /// Kubernetes `gitVersion`, e.g. `v1.20.2`.
    pub version: String,
    /// The real apiserver `/k8s/clusters/{id}` proxies to.
    pub upstream: String,
    /// CA (PEM file) the proxy trusts for `upstream`.
    pub upstream_ca_file: PathBuf,
    /// Bearer token the proxy presents to `upstream`.
    pub upstream_token: String,
    /// Hostile mode of the kubeconfig `generateKubeconfig` hands out.
    pub hostile_user: Option<serde_json::Map<String, serde_json::Value>>,
    /// Keys added to that kubeconfig's `cluster` map.
    pub hostile_cluster: serde_json::Map<String, serde_json::Value>,
    /// Server written into that kubeconfig instead of this Rancher's.
    pub hostile_server: Option<String>,
}

impl RancherCluster {
    /// This cluster handing out a `hostile` kubeconfig.
    pub fn hostile(self, hostile: &crate::hostile::Hostile) -> Self {
        RancherCluster {
            hostile_user: hostile.user(),
            hostile_cluster: hostile.cluster_extra(),
            hostile_server: hostile.server(),
            ..self
        }
    }

    /// An active cluster `id` proxying to the rig cluster `c` as its admin.
    pub fn from_rig(c: &crate::rig::RigCluster, id: &str) -> Self {
        RancherCluster {
            id: id.to_string(),
            name: c.name.clone(),
            state: "active".to_string(),
            version: "v1.20.2".to_string(),
            upstream: c.server.clone(),
            upstream_ca_file: c.ca.clone(),
            upstream_token: c.admin_token.clone(),
            ..Default::default()
        }
    }
}

/// The fake's state file (every field optional in the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RancherState {
    /// The Rancher API token clients must present as `Bearer`.
    pub token: String,
    /// RFC 3339 expiry reported by `/v3/tokens/{name}`; `None` = never.
    pub token_expires_at: Option<String>,
    /// When set, the API token is rejected with "token is expired".
    pub token_expired: bool,
    /// Default `/v3/clusters` page size (0 = [`DEFAULT_PAGE_SIZE`]).
    pub page_size: usize,
    /// The clusters (listed ordered by id).
    pub clusters: Vec<RancherCluster>,
    /// Every `/v3` request answers this status.
    pub fail_status: Option<u16>,
    /// The first N `/v3` requests answer 503 (counted since the value last changed).
    pub fail_first: u64,
    /// The next N `/v3` requests (after `fail_first`) answer 429 with `Retry-After: 1`.
    pub rate_limit_first: u64,
    /// Delay before every `/v3` answer.
    pub slow_ms: u64,
    /// Cluster ids whose `generateKubeconfig` answers 500.
    pub fail_generate: Vec<String>,
    /// JSON-lines log of every request (method, path, status, auth_ok).
    pub requests_log: Option<PathBuf>,
}

impl Default for RancherState {
    fn default() -> Self {
        RancherState {
            token: DEFAULT_TOKEN.to_string(),
            token_expires_at: None,
            token_expired: false,
            page_size: 0,
            clusters: Vec::new(),
            fail_status: None,
            fail_first: 0,
            rate_limit_first: 0,
            slow_ms: 0,
            fail_generate: Vec::new(),
            requests_log: None,
        }
    }
}

impl RancherState {
    /// The page size `/v3/clusters` uses when the request has no `limit`.
    pub fn effective_page_size(&self) -> usize {
        if self.page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            self.page_size
        }
    }

    /// The cluster with Rancher id `id`.
    pub fn cluster(&self, id: &str) -> Option<&RancherCluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    /// Reads a state file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path)?;
        Ok(serde_json::from_slice(&text)?)
    }

    /// Writes a state file atomically (temporary file + rename), so the
    /// server never reads half of it.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// A running `fake-rancher` process (killed on drop).
pub struct FakeRancher {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The fake's CA certificate (PEM), which signed its server certificate.
    pub ca_file: PathBuf,
    /// The Rancher API token at start.
    pub token: String,
    child: Child,
    dir: PathBuf,
    state_file: PathBuf,
    state: Mutex<RancherState>,
}

impl FakeRancher {
    /// Starts the server with its state file, TLS files and request log
    /// under `dir` (created if needed); panics when it does not listen within 10 s.
    pub fn start(dir: &Path, mut state: RancherState) -> FakeRancher {
        std::fs::create_dir_all(dir).expect("create fake-rancher dir");
        if state.requests_log.is_none() {
            state.requests_log = Some(dir.join("requests.jsonl"));
        }
        let state_file = dir.join("state.json");
        state.save(&state_file).expect("write fake-rancher state");
        let tls_dir = dir.join("tls");
        let mut child = Command::new(crate::bins::bin("fake-rancher"))
            .arg("--state")
            .arg(&state_file)
            .arg("--tls-dir")
            .arg(&tls_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fake-rancher");
        let url = wait_listening(&mut child);
        FakeRancher {
            url,
            ca_file: tls_dir.join("ca.crt"),
            token: state.token.clone(),
            child,
            dir: dir.to_path_buf(),
            state_file,
            state: Mutex::new(state),
        }
    }

    /// Changes the state; the server sees it from its next request on.
    pub fn update(&self, f: impl FnOnce(&mut RancherState)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state);
        state
            .save(&self.state_file)
            .expect("write fake-rancher state");
    }

    /// The current state.
    pub fn state(&self) -> RancherState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The directory holding the state, TLS files and request log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file the server re-reads on every request.
    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    /// Every request logged so far (`method`, `path`, `status`, `auth_ok`).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let Some(log) = self.state().requests_log else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("request log line is JSON"))
            .collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        if let Some(log) = self.state().requests_log {
            let _ = std::fs::write(log, "");
        }
    }

    /// An HTTPS client trusting the fake's CA.
    pub fn client(&self) -> HttpsClient {
        https_client(&std::fs::read(&self.ca_file).expect("read fake-rancher CA"))
    }

    /// Sends a body-less request to `path` (with query) on the fake.
    pub async fn call(&self, method: Method, path: &str, bearer: Option<&str>) -> Reply {
        send(
            &self.client(),
            method,
            &format!("{}{path}", self.url),
            bearer,
        )
        .await
    }
}

impl Drop for FakeRancher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the `listening https://...` line; returns the URL.
fn wait_listening(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("fake-rancher stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    match line.trim().strip_prefix("listening ") {
        Some(url) if url.starts_with("https://") => url.to_string(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "fake-rancher did not print `listening https://...` within {}s (got {line:?}); see its stderr above",
                START_TIMEOUT.as_secs()
            );
        }
    }
}

/// HTTPS client used by tests (HTTP/1.1 and HTTP/2).
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTPS client trusting only the CA certificates in `ca_pem`.
pub fn https_client(ca_pem: &[u8]) -> HttpsClient {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.expect("CA PEM"))
            .expect("add CA certificate");
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_all_versions()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends a body-less request to `url`, with `Authorization: Bearer` when given.
pub async fn send(client: &HttpsClient, method: Method, url: &str, bearer: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(token) = bearer {
        req = req.header(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("token header"),
        );
    }
    let resp = client
        .request(req.body(Full::new(Bytes::new())).expect("request"))
        .await
        .unwrap_or_else(|e| panic!("request to {url} failed: {e:?}"));
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("read body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::STANDARD};
    use std::time::Instant;

    /// Rancher ids of the rig clusters, deliberately not in id order.
    const IDS: [(&str, &str); 4] = [
        ("c-m-0003", "c1-lax1"),
        ("c-m-0001", "c1-sv5"),
        ("c-m-0004", "c1-ord1"),
        ("c-m-0002", "c1-dfw1"),
    ];

    /// A fake whose clusters proxy to the rig, or `None` without a rig.
    fn start_with_rig(page_size: usize) -> Option<(FakeRancher, tempfile::TempDir)> {
        let Some(rig) = crate::rig::shared() else {
            eprintln!("skipping: no rig");
            return None;
        };
        let clusters = IDS
            .iter()
            .map(|(id, name)| RancherCluster::from_rig(rig.cluster(name), id))
            .collect();
        Some(start(RancherState {
            page_size,
            clusters,
            ..Default::default()
        }))
    }

    /// A fake with `state` in a fresh directory.
    fn start(state: RancherState) -> (FakeRancher, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        (FakeRancher::start(dir.path(), state), dir)
    }

    /// A fake without upstreams (for the tests that need no rig).
    fn start_plain() -> (FakeRancher, tempfile::TempDir) {
        let cluster = RancherCluster {
            id: "c-m-0001".into(),
            name: "c1-sv5".into(),
            ..Default::default()
        };
        start(RancherState {
            clusters: vec![cluster],
            ..Default::default()
        })
    }

    /// Generates a kubeconfig for `id` and parses it.
    async fn generate(fake: &FakeRancher, id: &str) -> serde_json::Value {
        let path = format!("/v3/clusters/{id}?action=generateKubeconfig");
        let reply = fake.call(Method::POST, &path, Some(&fake.token)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let out = reply.json();
        assert_eq!(out["type"], "generateKubeConfigOutput");
        yaml_serde::from_str(out["config"].as_str().expect("config")).expect("kubeconfig YAML")
    }

    /// The decoded `data.password` of shop/db-credentials behind `server`.
    async fn db_password(client: &HttpsClient, server: &str, token: &str) -> Result<String, Reply> {
        let url = format!("{server}/api/v1/namespaces/shop/secrets/db-credentials");
        let reply = send(client, Method::GET, &url, Some(token)).await;
        if reply.status != StatusCode::OK {
            return Err(reply);
        }
        let encoded = reply.json()["data"]["password"]
            .as_str()
            .expect("data.password")
            .to_string();
        Ok(String::from_utf8(STANDARD.decode(&encoded).expect("base64")).expect("utf-8"))
    }

    #[tokio::test]
    async fn pagination_walks_all_clusters() {
        let Some((fake, _dir)) = start_with_rig(2) else {
            return;
        };
        let client = fake.client();
        let (mut url, mut ids, mut pages) = (format!("{}/v3/clusters", fake.url), Vec::new(), 0);
        loop {
            let page = send(&client, Method::GET, &url, Some(&fake.token))
                .await
                .json();
            pages += 1;
            assert_eq!(page["type"], "collection");
            assert_eq!(page["pagination"]["total"], 4);
            assert_eq!(page["pagination"]["limit"], 2);
            for c in page["data"].as_array().expect("data") {
                assert_eq!(c["type"], "cluster");
                assert_eq!(c["state"], "active");
                assert_eq!(c["version"]["gitVersion"], "v1.20.2");
                ids.push(format!(
                    "{}={}",
                    c["id"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                ));
            }
            match page["pagination"]["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        assert_eq!(pages, 2);
        assert_eq!(
            ids,
            [
                "c-m-0001=c1-sv5",
                "c-m-0002=c1-dfw1",
                "c-m-0003=c1-lax1",
                "c-m-0004=c1-ord1"
            ]
        );

        let three = fake
            .call(Method::GET, "/v3/clusters?limit=3", Some(&fake.token))
            .await
            .json();
        assert_eq!(three["data"].as_array().unwrap().len(), 3);
        assert!(
            three["pagination"]["next"]
                .as_str()
                .unwrap()
                .ends_with("limit=3&marker=c-m-0004")
        );

        let named = fake
            .call(Method::GET, "/v3/clusters?name=c1-dfw1", Some(&fake.token))
            .await
            .json();
        assert_eq!(named["data"][0]["id"], "c-m-0002");
        assert_eq!(named["data"].as_array().unwrap().len(), 1);
        assert!(named["pagination"].get("next").is_none());
    }

    #[tokio::test]
    async fn kubeconfig_reaches_its_cluster_only() {
        let Some((fake, _dir)) = start_with_rig(0) else {
            return;
        };
        let config = generate(&fake, "c-m-0001").await;
        assert_eq!(config["current-context"], "c1-sv5");
        assert_eq!(config["contexts"][0]["name"], "c1-sv5");
        assert_eq!(config["clusters"][0]["name"], "c1-sv5");
        let server = config["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(server, format!("{}/k8s/clusters/c-m-0001", fake.url));
        let ca = STANDARD
            .decode(
                config["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ca, std::fs::read(&fake.ca_file).unwrap());
        let token = config["users"][0]["user"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(token.starts_with("kubeconfig-u-fakec-m-0001:"), "{token}");
        assert_eq!(token.split(':').nth(1).unwrap().len(), 32);

        let client = https_client(&ca);
        assert_eq!(
            db_password(&client, &server, &token).await.unwrap(),
            "s3cr3t-c1-sv5"
        );
        let other = format!("{}/k8s/clusters/c-m-0002", fake.url);
        let denied = db_password(&client, &other, &token).await.unwrap_err();
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
        assert_eq!(denied.json()["message"], "must authenticate");
        // The Rancher API token itself reaches every cluster.
        assert_eq!(
            db_password(&client, &other, &fake.token).await.unwrap(),
            "s3cr3t-c1-dfw1"
        );

        // Every call makes a new token; the old one stays valid.
        let again = generate(&fake, "c-m-0001").await;
        let token2 = again["users"][0]["user"]["token"].as_str().unwrap();
        assert_ne!(token2, token);
        assert_eq!(
            db_password(&client, &server, token2).await.unwrap(),
            "s3cr3t-c1-sv5"
        );
        assert_eq!(
            db_password(&client, &server, &token).await.unwrap(),
            "s3cr3t-c1-sv5"
        );
    }

    #[tokio::test]
    async fn generate_kubeconfig_errors() {
        let (fake, _dir) = start_plain();
        let unknown = fake
            .call(
                Method::POST,
                "/v3/clusters/c-m-9999?action=generateKubeconfig",
                Some(&fake.token),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.json()["type"], "error");
        fake.update(|s| s.fail_generate = vec!["c-m-0001".into()]);
        let failed = fake
            .call(
                Method::POST,
                "/v3/clusters/c-m-0001?action=generateKubeconfig",
                Some(&fake.token),
            )
            .await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.json()["status"], "500");
    }

    #[tokio::test]
    async fn watch_streams_through_the_proxy() {
        let Some((fake, _dir)) = start_with_rig(0) else {
            return;
        };
        let config = generate(&fake, "c-m-0003").await;
        let server = config["clusters"][0]["cluster"]["server"].as_str().unwrap();
        let token = config["users"][0]["user"]["token"].as_str().unwrap();
        let url = format!("{server}/api/v1/namespaces/shop/secrets?watch=true&timeoutSeconds=60");
        let req = Request::get(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let first_event = async {
            let resp = fake.client().request(req).await.expect("watch");
            assert_eq!(resp.status(), StatusCode::OK);
            let mut body = resp.into_body();
            let mut seen = Vec::new();
            while !seen.contains(&b'\n') {
                let frame = body
                    .frame()
                    .await
                    .expect("watch ended early")
                    .expect("watch frame");
                seen.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..]));
            }
            seen
        };
        // The watch runs for 60 s: an event arriving well before that proves streaming.
        let seen = tokio::time::timeout(Duration::from_secs(15), first_event)
            .await
            .expect("no watch event in 15s");
        let line = String::from_utf8_lossy(&seen);
        let event: serde_json::Value =
            serde_json::from_str(line.lines().next().unwrap()).expect("event JSON");
        assert_eq!(event["type"], "ADDED");
        assert_eq!(event["object"]["kind"], "Secret");
    }

    #[tokio::test]
    async fn tokens_endpoint() {
        let (fake, _dir) = start(RancherState {
            token_expires_at: Some("2099-12-24T10:00:00Z".into()),
            ..Default::default()
        });
        let token = fake
            .call(Method::GET, "/v3/tokens/token-abcde", Some(&fake.token))
            .await;
        assert_eq!(token.status, StatusCode::OK);
        let token = token.json();
        assert_eq!(token["type"], "token");
        assert_eq!(token["name"], "token-abcde");
        assert_eq!(token["expiresAt"], "2099-12-24T10:00:00Z");
        assert_eq!(token["expired"], false);
        assert!(
            token["ttl"].as_i64().unwrap() > 365 * 24 * 3600 * 1000,
            "{token}"
        );

        let other = fake
            .call(Method::GET, "/v3/tokens/token-zzzzz", Some(&fake.token))
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);

        fake.update(|s| s.token_expires_at = None);
        let never = fake
            .call(Method::GET, "/v3/tokens/token-abcde", Some(&fake.token))
            .await
            .json();
        assert_eq!(never["expiresAt"], "");
        assert_eq!(never["ttl"], 0);

        fake.update(|s| s.token_expired = true);
        for path in [
            "/v3/tokens/token-abcde",
            "/v3/clusters",
            "/k8s/clusters/c-m-0001/version",
        ] {
            let expired = fake.call(Method::GET, path, Some(&fake.token)).await;
            assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(expired.json()["message"], "token is expired", "{path}");
        }
    }

    #[tokio::test]
    async fn bad_token_is_401() {
        let (fake, _dir) = start_plain();
        for bearer in [None, Some("token-abcde:wrong"), Some("")] {
            let reply = fake.call(Method::GET, "/v3/clusters", bearer).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
            let body = reply.json();
            assert_eq!(body["type"], "error");
            assert_eq!(body["status"], "401");
            assert_eq!(body["code"], "Unauthorized");
            assert_eq!(body["message"], "must authenticate");
        }
        let k8s = fake
            .call(
                Method::GET,
                "/k8s/clusters/c-m-0001/version",
                Some("kubeconfig-u-x:y"),
            )
            .await;
        assert_eq!(k8s.status, StatusCode::UNAUTHORIZED);
        let other = fake
            .call(Method::GET, "/v1/whatever", Some(&fake.token))
            .await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);
        assert_eq!(other.json()["code"], "NotFound");

        let log = fake.requests();
        assert_eq!(log.len(), 5);
        assert!(
            log[..4]
                .iter()
                .all(|r| r["auth_ok"] == false && r["status"] == 401),
            "{log:?}"
        );
        assert_eq!(log[0]["method"], "GET");
        assert_eq!(log[0]["path"], "/v3/clusters");
        let text = std::fs::read_to_string(fake.state().requests_log.unwrap()).unwrap();
        assert!(!text.contains("SECRET"), "the log leaks the token: {text}");
        fake.clear_requests();
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn fault_knobs() {
        let (fake, _dir) = start(RancherState {
            fail_first: 2,
            ..Default::default()
        });
        let status = |path: &'static str| {
            let fake = &fake;
            async move { fake.call(Method::GET, path, Some(&fake.token)).await }
        };
        let first = status("/v3/clusters").await;
        assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(first.json()["code"], "ServiceUnavailable");
        assert_eq!(
            status("/v3/clusters").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status("/v3/clusters").await.status, StatusCode::OK);

        // Changing a counter knob restarts the count.
        fake.update(|s| s.rate_limit_first = 1);
        for _ in 0..2 {
            assert_eq!(
                status("/v3/clusters").await.status,
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        let limited = status("/v3/clusters").await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers["retry-after"], "1");
        assert_eq!(status("/v3/clusters").await.status, StatusCode::OK);

        fake.update(|s| s.fail_status = Some(502));
        assert_eq!(status("/v3/clusters").await.status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            status("/v3/tokens/token-abcde").await.status,
            StatusCode::BAD_GATEWAY
        );
        // Faults are for /v3 only: an unknown cluster stays a 404.
        assert_eq!(
            status("/k8s/clusters/c-m-9999/version").await.status,
            StatusCode::NOT_FOUND
        );

        fake.update(|s| {
            s.fail_status = None;
            s.slow_ms = 300;
        });
        let started = Instant::now();
        assert_eq!(status("/v3/clusters").await.status, StatusCode::OK);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let statuses: Vec<_> = fake
            .requests()
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [503, 503, 200, 503, 503, 429, 200, 502, 502, 404, 200]
        );
    }
}
