//! The daemon's HTTP port: `/metrics` (Prometheus), `/healthz` (liveness)
//! and `/readyz` (readiness), with `/health` and
//! `/ready` as aliases. Loopback by default (`[server] http_bind`); with a
//! token configured (required beyond loopback) `/metrics` and the details of
//! `/readyz` answer only `Authorization: Bearer <token>` (a probe without a
//! token gets `/readyz`'s status code and word), `/healthz` anyone.

use std::{convert::Infallible, sync::Arc, sync::atomic::Ordering};

use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::{rt::TokioExecutor, rt::TokioIo, server::conn::auto};
use serde_json::json;
use tokio::{net::TcpListener, sync::watch};

use nskd_proto::bearer::Bearer;

use crate::{api::convert_unix_ms as unix_ms, app::App, health::Health};

/// Paths that need the token when one is configured.
fn guarded(path: &str) -> bool {
    matches!(path, "/metrics" | "/readyz" | "/ready")
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut resp = respond(
        StatusCode::UNAUTHORIZED,
        "application/json",
        json!({"error": "missing or wrong bearer token: send Authorization: Bearer <token> ([server] http_token_file, http_token or NSKD_HTTP_TOKEN); /healthz needs none"}).to_string(),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts")
}

/// The metrics, with the cluster gauges set from the health tracker.
fn metrics_text(app: &App) -> String {
    let names = app.registry.names();
    let states: Vec<(&str, bool)> = names
        .iter()
        .map(|n| {
            let healthy = matches!(app.tracker.get(n).state, Health::Ready | Health::Degraded);
            (n.as_str(), healthy)
        })
        .collect();
    crate::metrics::render(states.into_iter())
}

/// Readiness: every component, and whether all are ready.
pub fn readiness(app: &App) -> (bool, serde_json::Value) {
    let names = app.registry.names();
    let healthy = names
        .iter()
        .filter(|n| matches!(app.tracker.get(n).state, Health::Ready | Health::Degraded))
        .count();
    let serving = app.serving.load(Ordering::Relaxed);
    let clusters_ok = names.is_empty() || healthy > 0;
    let replication = app.replication.as_ref().map(|r| r.readiness());
    let replicated_ok = replication.as_ref().is_none_or(|(ok, _)| *ok);
    let ready = serving && clusters_ok && replicated_ok;
    let last = app
        .refresher
        .history()
        .into_iter()
        .find(|r| r.note.is_none());
    let caches = app.caches.stats();
    let (objects, bytes) = app.caches.total();
    let indexes = app.indexes.stats();
    let (indexed, index_bytes) = app.indexes.total();
    let cache_detail = format!(
        "{} watch caches ({} in sync), {objects} objects, {bytes} bytes; {} metadata indexes ({} in sync), {indexed} objects, {index_bytes} bytes",
        caches.len(),
        caches.iter().filter(|c| c.in_sync).count(),
        indexes.len(),
        indexes.iter().filter(|c| c.in_sync).count()
    );
    let mut body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "environment": app.config.environment(),
        "total_clusters": names.len(),
        "healthy_clusters": healthy,
        "nsk_configured": app.refresher.source.is_some(),
        "last_refresh": last.as_ref().map(|r| humantime::format_rfc3339_seconds(r.started).to_string()),
        "last_refresh_outcome": last.as_ref().map(|r| r.outcome.word()),
        "next_refresh": app.refresher.next_due().map(|t| humantime::format_rfc3339_seconds(t).to_string()),
        "next_refresh_ms": unix_ms(app.refresher.next_due()),
        "components": {
            "config": {"ready": true, "detail": "loaded"},
            "discovery": {"ready": true, "detail": format!("{} clusters discovered", names.len())},
            "socket": {"ready": serving, "detail": app.location.path.display().to_string()},
            "cache": {"ready": true, "detail": cache_detail},
            "clusters": {
                "ready": clusters_ok,
                "detail": if names.is_empty() {
                    "no clusters known".to_string()
                } else {
                    format!("{healthy} of {} healthy", names.len())
                },
            },
        },
    });
    if let Some((_, r)) = replication {
        body["role"] = r["role"].clone();
        body["lease_holder"] = r["holder"].clone();
        body["last_secrets_sync"] = r["last_secrets_sync"].clone();
        body["components"]["replication"] = r;
    }
    (ready, body)
}

/// `/readyz` asked without a token where one is configured: 200 or 503
/// and the status word only (what the Pod's Ready condition shows anyway).
fn bare_readiness(app: &App) -> Response<Full<Bytes>> {
    let (ready, _) = readiness(app);
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    let body =
        json!({"status": word, "detail": "send Authorization: Bearer <token> for the components"});
    respond(status, "application/json", body.to_string())
}

fn route(app: &App, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/metrics" => respond(StatusCode::OK, "text/plain; version=0.0.4", metrics_text(app)),
        "/healthz" | "/health" => {
            let body = json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "environment": app.config.environment(),
                "uptime_seconds": app.started.elapsed().as_secs(),
            });
            respond(StatusCode::OK, "application/json", body.to_string())
        }
        "/readyz" | "/ready" => {
            let (ready, body) = readiness(app);
            let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            respond(status, "application/json", body.to_string())
        }
        other => respond(
            StatusCode::NOT_FOUND,
            "application/json",
            json!({"error": format!("no such endpoint {other}; try /metrics, /healthz or /readyz")}).to_string(),
        ),
    }
}

/// Serves until `shutdown` turns true; `token`, when set, guards
/// `/metrics` and `/readyz`.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    token: Option<Bearer>,
    mut shutdown: watch::Receiver<bool>,
) {
    let token = Arc::new(token);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let path = req.uri().path();
                    let presented = req.headers().get(header::AUTHORIZATION);
                    let resp = match token.as_ref() {
                        // A kubelet's probe sends no token: it gets the
                        // status code and word, the details stay guarded.
                        Some(_) if presented.is_none() && matches!(path, "/readyz" | "/ready") => {
                            bare_readiness(&app)
                        }
                        Some(t)
                            if guarded(path) && !t.authorizes(presented.map(|v| v.as_bytes())) =>
                        {
                            unauthorized()
                        }
                        _ => route(&app, path),
                    };
                    async move { Ok::<_, Infallible>(resp) }
                });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "http connection ended");
            }
        });
    }
}
