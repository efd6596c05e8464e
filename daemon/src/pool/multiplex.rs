//! A cluster's clients, built from one TLS configuration: one for calls
//! (HTTP/1.1, as kube-rs builds it) and one the watch caches and metadata
//! indexes stream through: HTTP/2 when the API server offers it (ALPN),
//! so every watch of the cluster shares one connection instead of holding
//! one socket and its buffers each; HTTP/2 pings notice a silent or
//! black-holed server, so a watch may last minutes instead of ending every
//! request deadline. An API server (or proxy) that speaks only HTTP/1.1
//! still works: the watches then stay as short as the request deadline
//! ([`Protocol::is_h2`], [`crate::watching::timing`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use kube::client::{Body, ConfigExt};
use tower::{BoxError, Layer, Service, ServiceBuilder};

use crate::throttle::ThrottleLayer;

/// How often an HTTP/2 connection is pinged, even while only watches use it.
pub const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How long a ping may go unanswered before the connection (and every
/// watch on it) is dropped.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// TLS sessions remembered for resumption (one API server per client).
const SESSIONS: usize = 4;

/// The HTTP version the cluster's API server last answered the watch
/// client with (shared by the client and the caches that use it).
#[derive(Debug, Default)]
pub struct Protocol(AtomicU8);

impl Protocol {
    const H1: u8 = 1;
    const H2: u8 = 2;

    /// Whether the last answer came over HTTP/2 (pinged, multiplexed).
    pub fn is_h2(&self) -> bool {
        self.0.load(Ordering::Relaxed) == Self::H2
    }

    fn record(&self, version: http::Version) {
        let v = if version == http::Version::HTTP_2 {
            Self::H2
        } else {
            Self::H1
        };
        self.0.store(v, Ordering::Relaxed);
    }
}

/// A cluster's two clients, sharing one TLS configuration (its roots,
/// identity and a small session cache) and one rate limit.
pub struct Clients {
    /// For calls: HTTP/1.1 (upgrades for exec, attach and port-forward
    /// need it), with connect, read and write timeouts from the config.
    pub calls: kube::Client,
    /// For watches: HTTP/2 when offered, pinged ([`watch_client`]).
    pub watches: kube::Client,
}

/// The service stack over a hyper client: the cluster's URL, credentials,
/// extra headers (impersonation from the kubeconfig), protocol recording,
/// then the throttle.
macro_rules! kube_client {
    ($config:expr, $client:expr, $throttle:expr, $protocol:expr) => {{
        let service = ServiceBuilder::new()
            .layer($config.base_uri_layer())
            .option_layer($config.auth_layer().map_err(|e| e.to_string())?)
            .layer($config.extra_headers_layer().map_err(|e| e.to_string())?)
            .layer(RecordLayer($protocol))
            .map_err(BoxError::from)
            .service($client);
        kube::client::ClientBuilder::new(service, $config.default_namespace.clone())
            .with_layer($throttle)
            .build()
    }};
}

/// Both clients of `config`'s cluster; `protocol` records what the watch
/// client's answers came with.
pub fn clients(
    config: &kube::Config,
    connect_timeout: Duration,
    throttle: &ThrottleLayer,
    protocol: Arc<Protocol>,
) -> Result<Clients, String> {
    let mut tls = config.rustls_client_config().map_err(|e| e.to_string())?;
    // One server per client: rustls' default session cache (256 entries,
    // allocated up front) would cost each client ~30 KiB for nothing.
    tls.resumption = rustls::client::Resumption::in_memory_sessions(SESSIONS);
    let calls = {
        let https = https(config, tls.clone())?
            .enable_http1()
            .wrap_connector(tcp(connect_timeout));
        let mut timed = hyper_timeout::TimeoutConnector::new(https);
        timed.set_connect_timeout(config.connect_timeout);
        timed.set_read_timeout(config.read_timeout);
        timed.set_write_timeout(config.write_timeout);
        timed.set_reset_reader_on_write(config.reset_reader_on_write);
        let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(timed);
        kube_client!(config, client, throttle, Arc::default())
    };
    let watches = watch_client(config, tls, connect_timeout, throttle, protocol)?;
    Ok(Clients { calls, watches })
}

/// A client for `config`'s cluster that negotiates HTTP/2, pings its
/// connections, shares `throttle` with the cluster's other client, and
/// records the protocol each answer came with in `protocol`.
fn watch_client(
    config: &kube::Config,
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
    throttle: &ThrottleLayer,
    protocol: Arc<Protocol>,
) -> Result<kube::Client, String> {
    let https = https(config, tls)?
        .enable_all_versions()
        .wrap_connector(tcp(connect_timeout));
    let client: Client<_, Body> = Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(PING_INTERVAL)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build(https);
    Ok(kube_client!(config, client, throttle, protocol))
}

/// A TCP connector that also takes `https://` URLs (TLS wraps it).
fn tcp(connect_timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http
}

/// The TLS connector builder of `config`'s cluster (its
/// `tls-server-name`, if any), protocols still to choose.
fn https(
    config: &kube::Config,
    tls: rustls::ClientConfig,
) -> Result<hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1>, String>
{
    let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|e| format!("tls-server-name {name:?}: {e}"))?;
        builder =
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    Ok(builder)
}

/// Records each answer's HTTP version.
#[derive(Clone)]
struct RecordLayer(Arc<Protocol>);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            protocol: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Record<S> {
    inner: S,
    protocol: Arc<Protocol>,
}

impl<S, R, B> Service<R> for Record<S>
where
    S: Service<R, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let protocol = self.protocol.clone();
        self.inner
            .call(request)
            .map(move |result| {
                if let Ok(response) = &result {
                    protocol.record(response.version());
                }
                result
            })
            .boxed()
    }
}
