//! Running the daemon: bind the socket, start discovery and probes, serve
//! gRPC until SIGTERM/SIGINT, then stop accepting, let in-flight calls
//! finish (bounded) and remove the socket.

use std::{future::Future, sync::Arc, time::Duration};

use futures::StreamExt;
use nskd_proto::socket::SocketLocation;
use tokio::{net::UnixListener, sync::watch};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{service::InterceptorLayer, transport::Server};

use crate::{
    api,
    app::App,
    config::Config,
    socket::{self, own_uid},
};

/// How long in-flight calls may run after a stop signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds, serves until a signal, cleans up.
pub async fn run(config: Config, location: SocketLocation) -> anyhow::Result<()> {
    let (listener, guard) = match socket::inherited()? {
        Some(inherited) => {
            tracing::info!(path = %location.path.display(), "using the socket passed by systemd (socket activation)");
            socket::adopt(&location, inherited)?
        }
        None => socket::bind(&location)?,
    };
    crate::metrics::install(config.environment());
    let http = match config.server.port {
        Some(port) => {
            let addr = std::net::SocketAddr::new(config.server.http_bind, port);
            let http = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen on http://{addr} for /metrics, /healthz and /readyz: {e}; choose another --port ([server] port) or stop what uses it")
            })?;
            tracing::info!(addr = %http.local_addr()?, "http listening (/metrics, /healthz, /readyz)");
            Some(http)
        }
        None => None,
    };
    let replication = match &config.replication {
        Some(r) => Some(crate::replication::Replication::connect(&config, r).await?),
        None => None,
    };
    let app = App::with_replication(
        config,
        location,
        crate::source::RetryPolicy::default(),
        replication,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    serve(app, listener, http, shutdown_signal()).await?;
    drop(guard);
    tracing::info!("stopped; socket removed");
    Ok(())
}

/// Serves `app` on `listener` until `shutdown` resolves (background tasks
/// included), then drains.
pub async fn serve(
    app: Arc<App>,
    listener: UnixListener,
    http: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(http) = http {
        let token = app.config.server.http_bearer().map_err(|e| {
            anyhow::anyhow!("{e}; /metrics and /readyz cannot be guarded, so nskd does not start")
        })?;
        tokio::spawn(crate::http::serve(
            app.clone(),
            http,
            token,
            stop_rx.clone(),
        ));
    }
    let prober = tokio::spawn(app.prober.clone().run(stop_rx.clone()));
    let sweeper = tokio::spawn(app.caches.clone().sweep_idle(stop_rx.clone()));
    let index_sweeper = tokio::spawn(app.indexes.clone().sweep_idle(stop_rx.clone()));
    let watcher = tokio::spawn(crate::watch::run(app.clone(), stop_rx.clone()));
    let scheduler = match app.replication.clone() {
        Some(r) => tokio::spawn(crate::replication::run(app.clone(), r, stop_rx.clone())),
        None => tokio::spawn(crate::refresh::schedule(app.clone(), stop_rx.clone())),
    };

    let uid = own_uid();
    let environment = app.config.environment().to_string();
    let incoming = UnixListenerStream::new(listener).filter_map(move |conn| async move {
        match conn {
            Ok(stream) => {
                match stream.peer_cred() {
                    Ok(cred) if cred.uid() != uid => tracing::warn!(
                        peer_uid = cred.uid(),
                        peer_pid = ?cred.pid(),
                        daemon_uid = uid,
                        "refused connection from another user"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read peer credentials; the connection will be refused"),
                }
                Some(Ok::<_, std::io::Error>(crate::counted::Counted::new(stream)))
            }
            Err(e) => {
                // EMFILE and friends: keep serving the others.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                None
            }
        }
    });
    let (daemon_svc, clusters_svc, kube_svc, changes_svc) = api::services(app.clone());
    let snapshot = app.registry.snapshot();
    tracing::info!(
        environment = %environment,
        socket = %app.location.path.display(),
        clusters = snapshot.clusters.len(),
        source = app.config.nsk.source.as_str(),
        rancher_url = app.config.nsk.rancher_url.as_deref().unwrap_or("-"),
        rancher_auth = if app.config.nsk.rancher_token.is_some() || app.config.nsk.rancher_token_file.is_some() {
            "token configured"
        } else {
            "no token"
        },
        auto_refresh = app.config.nsk.auto_refresh,
        version = env!("CARGO_PKG_VERSION"),
        "nskd serving"
    );
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("stop requested: no new connections, finishing in-flight calls");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        let _ = drained_tx.send(());
    };
    let server = Server::builder()
        .layer(api::layer::MetricsLayer)
        .layer(InterceptorLayer::new(api::peer_check(uid, environment)))
        .layer(InterceptorLayer::new(api::tool_check(
            app.config.server.tools.clone(),
        )))
        .layer(InterceptorLayer::new(api::caller::caller_check(
            app.access.clone(),
        )))
        .layer(api::caller::CallerLayer)
        .add_service(daemon_svc)
        .add_service(clusters_svc)
        .add_service(kube_svc)
        .add_service(changes_svc)
        .add_service(api::workload_service(app.clone()))
        .add_service(nskd_proto::v1::identity_server::IdentityServer::new(
            api::IdentityService::new(&app.config.http_auth).map_err(|e| anyhow::anyhow!(e))?,
        ))
        .add_service(api::contract_service(app.clone()))
        .add_service(api::helm_service(app.clone()))
        .add_service(api::fleet_service(app.clone()))
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::pin!(server);
    app.serving
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // Serve; once shutdown starts, give the drain a bounded time.
    tokio::select! {
        result = &mut server => result?,
        _ = async {
            let _ = drained_rx.await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("in-flight calls still running after {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    let _ = stop_tx.send(true);
    // A probe of a black-holed cluster may still be waiting: do not wait.
    prober.abort();
    sweeper.abort();
    index_sweeper.abort();
    if app.replication.is_some() {
        // It releases the Lease on the way out.
        let _ = tokio::time::timeout(Duration::from_secs(6), scheduler).await;
    } else {
        scheduler.abort();
    }
    let _ = watcher.await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}
