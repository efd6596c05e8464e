//! Keeping the registry in step with disk: file events (auto_discovery)
//! trigger a rescan within about 150 ms; the kubeconfig TTL forces a full
//! re-read as a safety net for missed events.

use std::{sync::Arc, time::Duration};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::app::App;

/// How long events are gathered before one rescan.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Runs until `shutdown` flips.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::channel::<()>(16);
    let _watcher = if app.config.auto_discovery {
        start_watcher(&app, tx)
    } else {
        None
    };
    let ttl = app.config.pool.kubeconfig_ttl;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + ttl, ttl);
    loop {
        let reread = tokio::select! {
            Some(()) = rx.recv() => {
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
                false
            }
            _ = tick.tick() => true,
            _ = shutdown.changed() => return,
        };
        crate::blocking::run(|| app.rescan(reread));
    }
}

fn start_watcher(app: &App, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            // Reads (ours included) must not trigger rescans.
            if matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            ) {
                let _ = tx.try_send(());
            }
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch kubeconfig files; changes are picked up every kubeconfig_ttl");
            return None;
        }
    };
    for dir in app.scanner.plan().watch_dirs() {
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => tracing::debug!(dir = %dir.display(), "watching for kubeconfig changes"),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; changes are picked up every kubeconfig_ttl")
            }
        }
    }
    Some(watcher)
}
