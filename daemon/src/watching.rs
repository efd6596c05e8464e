//! What every long-running watch of the daemon shares (the watch caches,
//! the metadata indexes): how long a watch lasts and how long silence is
//! tolerated on each protocol, how a failed request is judged, and the
//! backoff between restarts.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use backon::{BackoffBuilder, ExponentialBuilder};
use kube::core::WatchEvent;

/// Shortest watch over HTTP/2, in seconds (the API server's own
/// reflectors watch 5 to 10 minutes; a restart costs one request).
pub const LONG_WATCH_SECONDS: u32 = 240;

/// Watches over HTTP/2 last up to this many seconds longer, per watch.
pub const LONG_WATCH_SPREAD: u32 = 50;

/// What interrupted a list or watch.
#[derive(Debug)]
pub enum Setback {
    /// Try again after a backoff (the server is unreachable, the watch
    /// broke).
    Retry(String),
    /// Give up (refused by the server, too large, not a table); answers
    /// come from the API server until the watch is dropped.
    Refuse(String),
}

/// How long one watch request asks to last, and how long its stream may
/// stay silent before the watch counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `timeoutSeconds` of the watch request.
    pub seconds: u32,
    /// Longest wait for the next event.
    pub silence: Duration,
}

/// The timing of a watch over HTTP/2 (`h2`: its connection is pinged, so
/// a dead server is noticed without the watch: it lasts minutes, spread
/// by `key` so a fleet's watches do not restart together) or HTTP/1.1
/// (nothing but the watch notices a silent server: it ends a second
/// before the request `deadline`, and silence beyond the deadline is an
/// error).
pub fn timing(h2: bool, deadline: Duration, key: impl Hash) -> Timing {
    if h2 {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let seconds = LONG_WATCH_SECONDS + (h.finish() % u64::from(LONG_WATCH_SPREAD)) as u32;
        Timing {
            seconds,
            silence: Duration::from_secs(u64::from(seconds)) + deadline,
        }
    } else {
        Timing {
            seconds: deadline.as_secs().saturating_sub(1).clamp(1, 290) as u32,
            silence: deadline + Duration::from_secs(1),
        }
    }
}

/// A failed request: retried, unless the server refused the caller the
/// kind or does not serve it (401, 403, 404, 405, 406), which a retry
/// cannot change.
pub fn setback(e: kube::Error) -> Setback {
    match &e {
        kube::Error::Api(status) if matches!(status.code, 401 | 403 | 404 | 405 | 406) => {
            Setback::Refuse(format!(
                "the API server refused to list or watch it ({} {})",
                status.code, status.message
            ))
        }
        _ => Setback::Retry(crate::error::error_chain(&e)),
    }
}

/// Delays between restarts after errors: 200 ms doubling to 10 s, with
/// jitter, forever.
pub fn restart_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The life of one long-running watch: whether it may answer, why it gave
/// up or last failed, how often it restarted, when it was last used, and
/// its task.
#[derive(Debug)]
pub struct Life {
    in_sync: AtomicBool,
    refused: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
    restarts: AtomicU64,
    last_used_ms: AtomicU64,
    epoch: Instant,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Default for Life {
    fn default() -> Self {
        Self {
            in_sync: AtomicBool::new(false),
            refused: Mutex::new(None),
            last_error: Mutex::new(None),
            restarts: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            task: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Life {
    /// Runs `task` as this watch's (used now).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.touch();
        *lock(&self.task) = Some(tokio::spawn(task).abort_handle());
    }

    /// Stops its task; it answers no more.
    pub fn abort(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        self.set_in_sync(false);
    }

    /// Whether answers may come from it now: listed, watching, no error
    /// since.
    pub fn in_sync(&self) -> bool {
        self.in_sync.load(Ordering::SeqCst)
    }

    /// Marks it (not) in sync; in sync also clears the last error.
    pub fn set_in_sync(&self, in_sync: bool) {
        self.in_sync.store(in_sync, Ordering::SeqCst);
        if in_sync {
            *lock(&self.last_error) = None;
        }
    }

    /// Why it gave up, if it did.
    pub fn refused(&self) -> Option<String> {
        lock(&self.refused).clone()
    }

    /// Records that it gives up, and why.
    pub fn refuse(&self, reason: String) {
        *lock(&self.refused) = Some(reason);
    }

    /// The last error of its list or watch.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Records that it lost its watch (out of sync until it is back).
    pub fn lost(&self, error: String) {
        self.set_in_sync(false);
        self.restarts.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error);
    }

    /// Times the watch was re-established after an error.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Marks it used now.
    pub fn touch(&self) {
        self.last_used_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since it was last used.
    pub fn idle(&self) -> Duration {
        let used = Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(used)
    }
}

/// A watch that lists, then follows events from the listed version.
pub trait Follower: Watched + Send + Sync + 'static {
    /// Its cluster (logs, metrics).
    fn cluster(&self) -> &str;
    /// What it watches, as a metrics label.
    fn label(&self) -> String;
    /// Lists; returns the resource version to watch from.
    fn relist(&self, client: &kube::Client)
    -> impl Future<Output = Result<String, Setback>> + Send;
    /// Watches from `rv` (over HTTP/2 when `h2`) until the server ends the
    /// watch: `Ok(Some(rv))` continues from `rv`, `Ok(None)` relists.
    fn follow(
        &self,
        client: &kube::Client,
        rv: String,
        h2: bool,
    ) -> impl Future<Output = Result<Option<String>, Setback>> + Send;
    /// The version of the last event applied ("" before any).
    fn resource_version(&self) -> String;
}

/// Runs `w` until it gives up or is aborted: list, follow, and after an
/// error resume from the last version after a backoff; `h2` says whether
/// its client's last answer came over HTTP/2.
pub async fn run<W: Follower>(w: Arc<W>, client: kube::Client, h2: impl Fn() -> bool + Send) {
    let mut backoff = restart_backoff();
    let mut resource_version: Option<String> = None;
    loop {
        let step = match resource_version.take() {
            None => w.relist(&client).await.map(Some),
            Some(rv) => w.follow(&client, rv, h2()).await,
        };
        match step {
            Ok(next) => {
                resource_version = next;
                backoff = restart_backoff();
            }
            Err(Setback::Refuse(reason)) => {
                tracing::info!(cluster = %w.cluster(), watch = %w.describe(), %reason, "gave up watching; answers for it come from the API server");
                w.life().refuse(reason);
                w.stop();
                return;
            }
            Err(Setback::Retry(error)) => {
                crate::metrics::cache_watch_restart(w.cluster(), &w.label());
                tracing::debug!(cluster = %w.cluster(), watch = %w.describe(), %error, "lost a watch; answers come from the API server until it is back");
                w.life().lost(error);
                resource_version = Some(w.resource_version()).filter(|rv| !rv.is_empty());
                let delay = backoff.next().unwrap_or(Duration::from_secs(10));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The next event of a watch stream, `Ok(None)` once the server ended it.
/// A broken stream, or silence beyond `silence`, loses the watch (`life`
/// is out of sync until the next one starts).
pub async fn next_event<S>(
    life: &Life,
    events: &mut std::pin::Pin<&mut S>,
    silence: Duration,
) -> Result<Option<WatchEvent<serde_json::Value>>, Setback>
where
    S: futures::Stream<Item = Result<WatchEvent<serde_json::Value>, kube::Error>>,
{
    use futures::StreamExt;
    let Ok(next) = tokio::time::timeout(silence, events.next()).await else {
        life.set_in_sync(false);
        return Err(Setback::Retry(format!(
            "the API server sent nothing for {silence:?} on a watch that should have ended by then"
        )));
    };
    next.transpose().map_err(|e| {
        life.set_in_sync(false);
        Setback::Retry(crate::error::error_chain(&e))
    })
}

/// A long-running watch a [`Registry`] holds.
pub trait Watched {
    /// Its life.
    fn life(&self) -> &Life;
    /// Stops it and releases its memory.
    fn stop(&self);
    /// Objects and bytes it holds.
    fn size(&self) -> (usize, usize);
    /// What it watches, for statistics.
    fn describe(&self) -> String;
}

/// One cluster's watches, valid for one kubeconfig (`hash`), with the
/// memory they share (`usage`).
#[derive(Debug)]
pub struct ClusterWatches<K, W, U> {
    /// The kubeconfig content they were started with.
    pub hash: u64,
    /// Memory accounting of the cluster.
    pub usage: Arc<U>,
    /// The watches by scope.
    pub watches: HashMap<K, Arc<W>>,
}

impl<K, W, U: Default> Default for ClusterWatches<K, W, U> {
    fn default() -> Self {
        Self {
            hash: 0,
            usage: Arc::default(),
            watches: HashMap::new(),
        }
    }
}

impl<K, W: Watched, U> ClusterWatches<K, W, U> {
    /// Stops and drops them all.
    pub fn stop_all(&mut self) {
        for (_, w) in self.watches.drain() {
            w.stop();
        }
    }

    /// Keeps them only if they were started with the kubeconfig of `hash`:
    /// what came through an older one is stopped.
    pub fn renew(&mut self, hash: u64) {
        if self.hash != hash {
            self.stop_all();
            self.hash = hash;
        }
    }
}

/// A row of watch statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Cluster.
    pub cluster: String,
    /// What it watches.
    pub scope: String,
    /// Answering now.
    pub in_sync: bool,
    /// Objects held.
    pub objects: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Watch restarts after errors.
    pub restarts: u64,
    /// Why it gave up, if it did; else its last error.
    pub note: Option<String>,
}

/// Every cluster's watches of one kind (caches, indexes): dropped per
/// cluster, swept when idle, stopped when the registry goes.
#[derive(Debug)]
pub struct Registry<K, W: Watched, U> {
    clusters: Mutex<HashMap<String, ClusterWatches<K, W, U>>>,
}

impl<K, W: Watched, U> Default for Registry<K, W, U> {
    fn default() -> Self {
        Self {
            clusters: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, W: Watched, U> Registry<K, W, U> {
    /// The clusters' watches, locked.
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, ClusterWatches<K, W, U>>> {
        lock(&self.clusters)
    }

    /// Stops the watches of `names` (their kubeconfig changed or is gone).
    pub fn invalidate<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        let mut clusters = self.lock();
        for name in names {
            if let Some(mut c) = clusters.remove(name) {
                c.stop_all();
            }
        }
    }

    /// Stops the watches unused for longer than `idle`; returns how many.
    pub fn sweep(&self, idle: Duration) -> usize {
        let mut clusters = self.lock();
        let mut dropped = 0;
        for c in clusters.values_mut() {
            c.watches.retain(|_, w| {
                let keep = w.life().idle() < idle;
                if !keep {
                    w.stop();
                    dropped += 1;
                }
                keep
            });
        }
        clusters.retain(|_, c| !c.watches.is_empty());
        dropped
    }

    /// Sweeps watches idle for `idle` every half of it (at most every
    /// minute) until `shutdown`; `what` names them in the log.
    pub async fn sweep_until(
        &self,
        idle: Duration,
        what: &str,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = (idle / 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            let dropped = self.sweep(idle);
            if dropped > 0 {
                tracing::debug!(dropped, what, "dropped idle watches");
            }
        }
    }

    /// One row per watch, sorted by cluster and scope.
    pub fn stats(&self) -> Vec<Stat> {
        let clusters = self.lock();
        let mut rows: Vec<Stat> = clusters
            .iter()
            .flat_map(|(cluster, c)| {
                c.watches.values().map(move |w| {
                    let (objects, bytes) = w.size();
                    let life = w.life();
                    Stat {
                        cluster: cluster.clone(),
                        scope: w.describe(),
                        in_sync: life.in_sync(),
                        objects,
                        bytes,
                        restarts: life.restarts(),
                        note: life.refused().or_else(|| life.last_error()),
                    }
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.cluster, &a.scope).cmp(&(&b.cluster, &b.scope)));
        rows
    }
}

impl<K, W: Watched, U> Drop for Registry<K, W, U> {
    fn drop(&mut self) {
        for c in self.lock().values_mut() {
            c.stop_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_watches_last_minutes_and_http1_watches_end_before_the_deadline() {
        let deadline = Duration::from_secs(15);
        let h1 = timing(false, deadline, "c1/pods");
        assert_eq!(h1.seconds, 14);
        assert_eq!(h1.silence, Duration::from_secs(16));
        let h2 = timing(true, deadline, "c1/pods");
        assert!((LONG_WATCH_SECONDS..LONG_WATCH_SECONDS + LONG_WATCH_SPREAD).contains(&h2.seconds));
        assert_eq!(h2, timing(true, deadline, "c1/pods"), "fixed per watch");
        let spread: std::collections::BTreeSet<u32> = (0..100)
            .map(|i| timing(true, deadline, format!("c{i}/pods")).seconds)
            .collect();
        assert!(spread.len() > 10, "restarts are spread: {spread:?}");
    }
}
