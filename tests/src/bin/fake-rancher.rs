//! A fake Rancher v3 HTTPS server for nskd's end-to-end tests.
//!
//! `fake-rancher --state STATE.json --tls-dir DIR [--listen 127.0.0.1:0]`
//! serves `/v3/clusters` (paginated), `generateKubeconfig`, `/v3/tokens/{name}`
//! and proxies `/k8s/clusters/{id}/...` to real apiservers. It re-reads the
//! state file (see `nskd_e2e::fake_rancher::RancherState`) on every request
//! and prints `listening https://ADDR` once ready.

use std::{
    collections::HashMap,
    convert::Infallible,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use clap::Parser;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::{
    HeaderMap, Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::{self, HeaderName, HeaderValue},
    service::service_fn,
};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use nskd_e2e::fake_rancher::{RancherCluster, RancherState};
use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;
type Upstream = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Fake Rancher v3 API server for tests")]
struct Args {
    /// JSON state file, re-read on every request.
    #[arg(long)]
    state: PathBuf,
    /// Directory of ca.crt, server.crt and server.key (created with openssl if missing).
    #[arg(long)]
    tls_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure_tls(&args.tls_dir)?;
    let acceptor = tls_acceptor(&args.tls_dir)?;
    let ca_pem = std::fs::read_to_string(args.tls_dir.join("ca.crt"))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    let base_url = format!("https://{}", listener.local_addr()?);
    let server = Arc::new(Server::new(args.state, base_url.clone(), ca_pem));
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening {base_url}")?;
    stdout.flush()?;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(serve_connection(tcp, acceptor.clone(), server.clone()));
            }
            Err(e) => {
                eprintln!("fake-rancher: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

// ---------------------------------------------------------------- TLS files

/// Creates a CA and a server certificate (IP:127.0.0.1, DNS:localhost)
/// under `dir` with the openssl CLI unless all three files exist.
fn ensure_tls(dir: &Path) -> anyhow::Result<()> {
    let files = ["ca.crt", "server.crt", "server.key"];
    if files.iter().all(|f| dir.join(f).exists()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let work = tempfile::tempdir_in(dir)?;
    let w = work.path();
    std::fs::write(w.join("openssl.cnf"), OPENSSL_CNF)?;
    openssl(
        w,
        &[
            "req",
            "-x509",
            "-days",
            "3650",
            "-subj",
            "/CN=fake-rancher-ca",
            "-extensions",
            "ca_ext",
        ],
        "ca",
    )?;
    openssl(w, &["req", "-new", "-subj", "/CN=localhost"], "server")?;
    let serial = format!("0x1{:015x}", fastrand::u64(..) >> 4);
    run(
        w,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-days",
            "825",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "server_ext",
            "-out",
            "server.crt",
        ],
    )?;
    for f in ["ca.key", "ca.crt", "server.key", "server.crt"] {
        std::fs::rename(w.join(f), dir.join(f))?;
    }
    Ok(())
}

/// `openssl req` with a fresh P-256 key written to `{name}.key`, output
/// `{name}.crt` (with `-x509`) or `{name}.csr`.
fn openssl(dir: &Path, args: &[&str], name: &str) -> anyhow::Result<()> {
    let out = if args.contains(&"-x509") {
        format!("{name}.crt")
    } else {
        format!("{name}.csr")
    };
    let key = format!("{name}.key");
    let mut all = args.to_vec();
    all.extend([
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-config",
        "openssl.cnf",
        "-keyout",
        &key,
        "-out",
        &out,
    ]);
    run(dir, &all)
}

/// Runs `openssl ARGS` in `dir`, failing with its stderr.
fn run(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("run openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = fake-rancher
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// The rustls acceptor for `dir/server.crt` + `dir/server.key` (h2 and http/1.1).
fn tls_acceptor(dir: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs =
        CertificateDer::pem_file_iter(dir.join("server.crt"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An HTTPS client (HTTP/1.1) trusting only the CAs in `ca_pem`.
fn upstream_client(ca_pem: &[u8]) -> anyhow::Result<Upstream> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

// ------------------------------------------------------------------- server

/// Serves one TLS connection (HTTP/1.1 or HTTP/2).
async fn serve_connection(tcp: TcpStream, acceptor: TlsAcceptor, server: Arc<Server>) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let service = service_fn(move |req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.handle(req).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// Counts `/v3` requests for `fail_first` / `rate_limit_first`; restarts
/// from zero whenever either knob changes.
#[derive(Default)]
struct FaultCounter {
    knobs: (u64, u64),
    count: u64,
}

/// The server's in-memory state.
struct Server {
    state_path: PathBuf,
    base_url: String,
    ca_pem: String,
    faults: Mutex<FaultCounter>,
    /// Generated kubeconfig tokens → the cluster id each is valid for.
    kube_tokens: Mutex<HashMap<String, String>>,
    /// Upstream clients by CA PEM.
    upstreams: Mutex<HashMap<Vec<u8>, Upstream>>,
    log: Mutex<()>,
}

/// What the caller's credentials amount to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Ok,
    Expired,
    Denied,
}

impl Server {
    fn new(state_path: PathBuf, base_url: String, ca_pem: String) -> Self {
        Server {
            state_path,
            base_url,
            ca_pem,
            faults: Mutex::default(),
            kube_tokens: Mutex::default(),
            upstreams: Mutex::default(),
            log: Mutex::default(),
        }
    }

    /// Answers one request and logs it.
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().to_string();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let state = match RancherState::load(&self.state_path) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("fake-rancher: state {}: {e:#}", self.state_path.display());
                return error(500, &format!("fake-rancher state: {e:#}"));
            }
        };
        let (resp, auth_ok) = self.route(req, &state).await;
        self.log_request(&state, &method, &path, resp.status(), auth_ok);
        resp
    }

    /// Dispatches on the path; also returns whether the caller authenticated.
    async fn route(
        &self,
        req: Request<Incoming>,
        state: &RancherState,
    ) -> (Response<Body>, Option<bool>) {
        let path = req.uri().path().to_string();
        if path == "/v3" || path.starts_with("/v3/") {
            self.v3(req, state).await
        } else if let Some(rest) = path.strip_prefix("/k8s/clusters/") {
            self.k8s(req, state, rest).await
        } else {
            (error(404, "not found"), None)
        }
    }

    /// Appends `{method, path, status, auth_ok}` to the request log.
    fn log_request(
        &self,
        state: &RancherState,
        method: &str,
        path: &str,
        status: StatusCode,
        auth_ok: Option<bool>,
    ) {
        let Some(log) = &state.requests_log else {
            return;
        };
        let line =
            json!({"method": method, "path": path, "status": status.as_u16(), "auth_ok": auth_ok});
        let _guard = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            eprintln!("fake-rancher: request log {}: {e}", log.display());
        }
    }

    // ----------------------------------------------------------------- /v3

    /// `/v3/...`: delay, faults, authentication, then the endpoint.
    async fn v3(
        &self,
        req: Request<Incoming>,
        state: &RancherState,
    ) -> (Response<Body>, Option<bool>) {
        let auth = api_auth(req.headers(), state);
        let auth_ok = Some(auth == Auth::Ok);
        if state.slow_ms > 0 {
            tokio::time::sleep(Duration::from_millis(state.slow_ms)).await;
        }
        if let Some(resp) = self.fault(state) {
            return (resp, auth_ok);
        }
        if let Some(resp) = auth_error(auth) {
            return (resp, auth_ok);
        }
        let query = parse_query(req.uri().query());
        let path = req.uri().path().trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').skip(2).collect();
        let resp = match (req.method(), segments.as_slice()) {
            (&Method::GET, ["clusters"]) => self.list_clusters(state, &query),
            (&Method::GET, ["clusters", id]) => self.get_cluster(state, id),
            (&Method::POST, ["clusters", id]) => self.cluster_action(state, id, &query),
            (&Method::GET, ["tokens", name]) => token_info(state, name),
            _ => error(404, "not found"),
        };
        (resp, auth_ok)
    }

    /// The fault answer for this `/v3` request, if any.
    fn fault(&self, state: &RancherState) -> Option<Response<Body>> {
        let n = self.next_request_number(state);
        if let Some(status) = state.fail_status {
            return Some(error(status, "injected failure"));
        }
        if n < state.fail_first {
            return Some(error(503, "injected failure"));
        }
        if n < state.fail_first + state.rate_limit_first {
            let mut resp = error(429, "too many requests");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Some(resp);
        }
        None
    }

    /// 0-based number of this `/v3` request since the fault knobs last changed.
    fn next_request_number(&self, state: &RancherState) -> u64 {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let knobs = (state.fail_first, state.rate_limit_first);
        if faults.knobs != knobs {
            *faults = FaultCounter { knobs, count: 0 };
        }
        faults.count += 1;
        faults.count - 1
    }

    /// `GET /v3/clusters?limit=N&marker=ID&name=X`.
    fn list_clusters(
        &self,
        state: &RancherState,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let limit = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
            .unwrap_or(state.effective_page_size());
        let name = query.get("name");
        let mut all: Vec<&RancherCluster> = state
            .clusters
            .iter()
            .filter(|c| name.is_none_or(|n| &c.name == n))
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        let start = query.get("marker").map_or(0, |m| {
            all.iter().position(|c| &c.id >= m).unwrap_or(all.len())
        });
        let end = all.len().min(start + limit);
        let mut pagination = json!({"limit": limit, "total": all.len()});
        if end < all.len() {
            let filter = name.map(|n| format!("&name={n}")).unwrap_or_default();
            pagination["next"] = format!(
                "{}/v3/clusters?limit={limit}&marker={}{filter}",
                self.base_url, all[end].id
            )
            .into();
            pagination["partial"] = true.into();
        }
        let data: Vec<Value> = all[start..end]
            .iter()
            .map(|c| self.cluster_json(c))
            .collect();
        json_response(
            200,
            &json!({"type": "collection", "resourceType": "cluster", "data": data, "pagination": pagination}),
        )
    }

    /// `GET /v3/clusters/{id}`.
    fn get_cluster(&self, state: &RancherState, id: &str) -> Response<Body> {
        match state.cluster(id) {
            Some(c) => json_response(200, &self.cluster_json(c)),
            None => error(404, &format!("cluster {id} not found")),
        }
    }

    /// The v3 JSON of one cluster.
    fn cluster_json(&self, c: &RancherCluster) -> Value {
        let link = format!("{}/v3/clusters/{}", self.base_url, c.id);
        json!({
            "id": c.id,
            "type": "cluster",
            "name": c.name,
            "state": c.state,
            "version": {"gitVersion": c.version},
            "links": {"self": link},
            "actions": {"generateKubeconfig": format!("{link}?action=generateKubeconfig")},
        })
    }

    /// `POST /v3/clusters/{id}?action=...` (only generateKubeconfig).
    fn cluster_action(
        &self,
        state: &RancherState,
        id: &str,
        query: &HashMap<String, String>,
    ) -> Response<Body> {
        let Some(cluster) = state.cluster(id) else {
            return error(404, &format!("cluster {id} not found"));
        };
        if query.get("action").map(String::as_str) != Some("generateKubeconfig") {
            return error(404, "invalid action");
        }
        if state.fail_generate.iter().any(|f| f == id) {
            return error(500, "injected generateKubeconfig failure");
        }
        let token = format!("kubeconfig-u-fake{id}:{}", random_alnum(32));
        self.kube_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), id.to_string());
        match self.kubeconfig(cluster, &token) {
            Ok(config) => json_response(
                200,
                &json!({"type": "generateKubeConfigOutput", "config": config}),
            ),
            Err(e) => error(500, &format!("kubeconfig: {e}")),
        }
    }

    /// A kubeconfig reaching `cluster` through this server with `token`.
    fn kubeconfig(&self, cluster: &RancherCluster, token: &str) -> anyhow::Result<String> {
        let name = &cluster.name;
        let mut cluster_map = json!({
            "server": cluster.hostile_server.clone().unwrap_or_else(|| format!("{}/k8s/clusters/{}", self.base_url, cluster.id)),
            "certificate-authority-data": STANDARD.encode(self.ca_pem.as_bytes()),
        });
        if let Some(m) = cluster_map.as_object_mut() {
            m.extend(cluster.hostile_cluster.clone());
        }
        let user = match &cluster.hostile_user {
            Some(u) => serde_json::Value::Object(u.clone()),
            None => json!({"token": token}),
        };
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster_map}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        });
        Ok(yaml_serde::to_string(&config)?)
    }

    // ---------------------------------------------------------------- /k8s

    /// `/k8s/clusters/{id}/{rest}`: authenticate, then proxy to the upstream.
    async fn k8s(
        &self,
        req: Request<Incoming>,
        state: &RancherState,
        rest: &str,
    ) -> (Response<Body>, Option<bool>) {
        let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let auth = self.k8s_auth(req.headers(), state, id);
        if let Some(resp) = auth_error(auth) {
            return (resp, Some(false));
        }
        let Some(cluster) = state.cluster(id) else {
            return (error(404, &format!("cluster {id} not found")), Some(true));
        };
        let resp = match self.proxy(req, cluster, rest).await {
            Ok(resp) => resp,
            Err(e) => {
                eprintln!("fake-rancher: proxy to {} ({id}): {e:#}", cluster.upstream);
                error(502, &format!("proxy to cluster {id}: {e:#}"))
            }
        };
        (resp, Some(true))
    }

    /// The API token, or a kubeconfig token generated for cluster `id`.
    fn k8s_auth(&self, headers: &HeaderMap, state: &RancherState, id: &str) -> Auth {
        let api = api_auth(headers, state);
        if api != Auth::Denied {
            return api;
        }
        let tokens = self.kube_tokens.lock().unwrap_or_else(|e| e.into_inner());
        match bearer(headers).and_then(|t| tokens.get(t)) {
            Some(cluster) if cluster == id => Auth::Ok,
            _ => Auth::Denied,
        }
    }

    /// Forwards `req` to `cluster`'s upstream as `/{rest}?query`, streaming both bodies.
    async fn proxy(
        &self,
        req: Request<Incoming>,
        cluster: &RancherCluster,
        rest: &str,
    ) -> anyhow::Result<Response<Body>> {
        let client = self.upstream(&cluster.upstream_ca_file)?;
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let uri = format!("{}/{rest}{query}", cluster.upstream.trim_end_matches('/'));
        let (parts, body) = req.into_parts();
        let mut up = Request::builder()
            .method(parts.method)
            .uri(&uri)
            .body(body)?;
        copy_headers(
            &parts.headers,
            up.headers_mut(),
            &[header::AUTHORIZATION, header::HOST],
        );
        if !cluster.upstream_token.is_empty() {
            let value = HeaderValue::from_str(&format!("Bearer {}", cluster.upstream_token))?;
            up.headers_mut().insert(header::AUTHORIZATION, value);
        }
        let resp = client
            .request(up)
            .await
            .with_context(|| format!("{} {uri}", parts.uri))?;
        let (mut head, body) = resp.into_parts();
        let headers = std::mem::take(&mut head.headers);
        copy_headers(&headers, &mut head.headers, &[]);
        Ok(Response::from_parts(
            head,
            body.map_err(BoxError::from).boxed_unsync(),
        ))
    }

    /// The (cached) client trusting the CA in `ca_file`.
    fn upstream(&self, ca_file: &Path) -> anyhow::Result<Upstream> {
        let pem = std::fs::read(ca_file).with_context(|| format!("read {}", ca_file.display()))?;
        let mut cache = self.upstreams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&pem) {
            return Ok(client.clone());
        }
        let client = upstream_client(&pem)?;
        cache.insert(pem, client.clone());
        Ok(client)
    }
}

/// Copies end-to-end headers (not hop-by-hop ones, nor `skip`).
fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, skip: &[HeaderName]) {
    const HOP_BY_HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
    ];
    for (name, value) in from {
        if skip.contains(name) || HOP_BY_HOP.contains(&name.as_str()) || name == header::UPGRADE {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

// ----------------------------------------------------------------- auth

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Whether the request carries the (unexpired) Rancher API token.
fn api_auth(headers: &HeaderMap, state: &RancherState) -> Auth {
    match bearer(headers) {
        Some(token) if !state.token.is_empty() && token == state.token => {
            if state.token_expired {
                Auth::Expired
            } else {
                Auth::Ok
            }
        }
        _ => Auth::Denied,
    }
}

/// The 401 for a failed authentication.
fn auth_error(auth: Auth) -> Option<Response<Body>> {
    match auth {
        Auth::Ok => None,
        Auth::Expired => Some(error(401, "token is expired")),
        Auth::Denied => Some(error(401, "must authenticate")),
    }
}

/// `GET /v3/tokens/{name}`: only the caller's own token.
fn token_info(state: &RancherState, name: &str) -> Response<Body> {
    let own = state.token.split(':').next().unwrap_or_default();
    if name != own {
        return error(404, &format!("token {name} not found"));
    }
    let expires_at = state.token_expires_at.clone().unwrap_or_default();
    let ttl = state
        .token_expires_at
        .as_deref()
        .and_then(unix_millis)
        .map_or(0, |at| (at - now_millis()).max(0));
    json_response(
        200,
        &json!({
            "type": "token",
            "id": name,
            "name": name,
            "expiresAt": expires_at,
            "expired": state.token_expired,
            "ttl": ttl,
        }),
    )
}

// ---------------------------------------------------------------- helpers

/// A JSON response.
fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(BoxError::from)
            .boxed_unsync(),
    );
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A Rancher-style JSON error.
fn error(status: u16, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code: String = status
        .canonical_reason()
        .unwrap_or("Error")
        .split_whitespace()
        .collect();
    json_response(
        status.as_u16(),
        &json!({"type": "error", "status": status.as_u16().to_string(), "code": code, "message": message}),
    )
}

/// `a=1&b=2` → map (percent-decoded).
fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+` (form encoding).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `n` random ASCII letters and digits.
fn random_alnum(n: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(n)
        .collect()
}

/// Milliseconds since the Unix epoch.
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → milliseconds since the Unix epoch.
fn unix_millis(text: &str) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let tail = text.get(19..)?;
    let zone = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
