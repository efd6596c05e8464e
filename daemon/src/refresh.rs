//! Keeping kubeconfigs fresh: one refresh run (list, fetch in bounded
//! parallel with retries, validate, store, retire), single-flight, the
//! recent-refresh guard, per-cluster staleness, bounded history, and the
//! schedule (interval with jitter, earlier when a credential expires).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use futures::{FutureExt, StreamExt, future::BoxFuture, future::Shared};

use crate::{
    config::Config,
    discovery::Scanner,
    error::{ErrorKind, OpError},
    metrics::RefreshFailed,
    registry::{Changes, Registry},
    source::{AuthInfo, RemoteCluster, RetryPolicy, Source, SourceError},
    store::{self, Store, WriteOutcome},
};

/// How many refresh records are kept.
pub const HISTORY_LIMIT: usize = 50;
/// A non-forced refresh this soon after a successful one is skipped.
pub const RECENT_GUARD: Duration = Duration::from_secs(60);
/// Kubeconfigs fetched at once.
pub const FETCH_CONCURRENCY: usize = 8;
/// Refresh this long before a kubeconfig credential expires.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(15 * 60);

/// Outcome of a refresh run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Every cluster refreshed.
    Success,
    /// Some clusters failed; their cached kubeconfigs stay in use.
    Partial,
    /// Nothing refreshed.
    Failed,
    /// Directory source: files re-read.
    Rescanned,
}

impl RefreshOutcome {
    /// The word shown in the refresh history (`Success`, ...).
    pub fn word(self) -> &'static str {
        match self {
            RefreshOutcome::Success => "Success",
            RefreshOutcome::Partial => "Partial",
            RefreshOutcome::Failed => "Failed",
            RefreshOutcome::Rescanned => "Rescanned",
        }
    }
}

/// One refresh run, for the history.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// Outcome.
    pub outcome: RefreshOutcome,
    /// Start time.
    pub started: SystemTime,
    /// Duration.
    pub duration: Duration,
    /// Trigger ("manual", "schedule", "startup", "discover", "expiry"...).
    pub trigger: String,
    /// What changed.
    pub changes: Changes,
    /// Clusters listed by the source.
    pub listed: usize,
    /// Failed clusters with reasons, sorted by cluster.
    pub failed: Vec<ClusterFailure>,
    /// Whole-run error.
    pub error: Option<Failure>,
    /// Why nothing ran (recent-refresh guard), if so.
    pub note: Option<String>,
}

/// Why a refresh (or one cluster's part of it) failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
#[error("{reason}")]
pub struct Failure {
    /// What kind of failure (metrics label, gRPC code).
    pub kind: ErrorKind,
    /// What failed and what to do.
    pub reason: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            reason: reason.into(),
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Self::new(e.kind, e.message)
    }
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        Self::new(e.kind, e.message)
    }
}

/// A cluster whose kubeconfig was not refreshed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClusterFailure {
    /// Cluster.
    pub cluster: String,
    /// Why.
    pub failure: Failure,
}

/// How a refresh was asked for.
#[derive(Debug, Clone, Default)]
pub struct RefreshOptions {
    /// Bypass the recent-refresh guard.
    pub force: bool,
    /// Only clusters whose name matches (regex); nothing is retired.
    pub pattern: Option<String>,
    /// Who asked.
    pub trigger: String,
    /// Asked for by a client (not the schedule): a forced run obeys
    /// `[nsk] min_force_interval`.
    pub from_client: bool,
}

/// Refresh facts about one cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterRefresh {
    /// Rancher id.
    pub id: String,
    /// Rancher state.
    pub rancher_state: String,
    /// Last time its kubeconfig was fetched and validated.
    pub last_refreshed: Option<SystemTime>,
    /// Last failure and when; cleared by a success.
    pub failure: Option<(String, SystemTime)>,
}

/// What refreshing needs of the daemon; `App` provides it, so this module
/// never reaches up to it.
pub trait Host: Send + Sync + 'static {
    /// The configuration.
    fn config(&self) -> &Config;
    /// The refresh state (source, store, history).
    fn refresher(&self) -> &Refresher;
    /// The known clusters.
    fn registry(&self) -> &Registry;
    /// The kubeconfig scanner.
    fn scanner(&self) -> &Scanner;
    /// Re-reads kubeconfigs into the registry, dropping what changed.
    fn rescan(&self, reread: bool) -> Changes;
    /// With `[replication]`: true while this replica holds the Lease (only
    /// then may it refresh) and who does; `None`: it refreshes by itself.
    fn leadership(&self) -> Option<(tokio::sync::watch::Receiver<bool>, Option<String>)> {
        None
    }
}

impl<H: Host> Host for Arc<H> {
    fn config(&self) -> &Config {
        (**self).config()
    }
    fn refresher(&self) -> &Refresher {
        (**self).refresher()
    }
    fn registry(&self) -> &Registry {
        (**self).registry()
    }
    fn scanner(&self) -> &Scanner {
        (**self).scanner()
    }
    fn rescan(&self, reread: bool) -> Changes {
        (**self).rescan(reread)
    }
    fn leadership(&self) -> Option<(tokio::sync::watch::Receiver<bool>, Option<String>)> {
        (**self).leadership()
    }
}

/// Refresh state shared by the API and the scheduler.
#[derive(Debug)]
pub struct Refresher {
    /// The source (`None`: directory).
    pub source: Option<Source>,
    /// The store (`None`: directory source).
    pub store: Option<Store>,
    retry: RetryPolicy,
    history: Mutex<VecDeque<RefreshRecord>>,
    clusters: Mutex<BTreeMap<String, ClusterRefresh>>,
    next_due: Mutex<Option<SystemTime>>,
    auth: Mutex<Option<Result<AuthInfo, SourceError>>>,
    running: tokio::sync::Mutex<Option<Shared<BoxFuture<'static, RefreshRecord>>>>,
    last_forced: Mutex<Option<Instant>>,
}

impl Refresher {
    /// For a source and store (both `None` for the directory source).
    pub fn new(source: Option<Source>, store: Option<Store>, retry: RetryPolicy) -> Self {
        Self {
            source,
            store,
            retry,
            history: Mutex::new(VecDeque::new()),
            clusters: Mutex::new(BTreeMap::new()),
            next_due: Mutex::new(None),
            auth: Mutex::new(None),
            running: tokio::sync::Mutex::new(None),
            last_forced: Mutex::new(None),
        }
    }

    /// History, newest first.
    pub fn history(&self) -> Vec<RefreshRecord> {
        self.history
            .lock()
            .expect("history lock")
            .iter()
            .cloned()
            .collect()
    }

    /// Records a run.
    pub fn push(&self, record: RefreshRecord) {
        let mut h = self.history.lock().expect("history lock");
        h.push_front(record);
        h.truncate(HISTORY_LIMIT);
    }

    /// Per-cluster refresh facts.
    pub fn clusters(&self) -> BTreeMap<String, ClusterRefresh> {
        self.clusters.lock().expect("clusters lock").clone()
    }

    /// When the next scheduled refresh runs.
    pub fn next_due(&self) -> Option<SystemTime> {
        *self.next_due.lock().expect("next_due lock")
    }

    /// Sets the next scheduled refresh.
    pub fn set_next_due(&self, at: Option<SystemTime>) {
        *self.next_due.lock().expect("next_due lock") = at;
    }

    /// The last token check.
    pub fn auth(&self) -> Option<Result<AuthInfo, SourceError>> {
        self.auth.lock().expect("auth lock").clone()
    }

    /// Refresh facts of one cluster (no copy of the others).
    pub fn cluster(&self, name: &str) -> Option<ClusterRefresh> {
        self.clusters
            .lock()
            .expect("clusters lock")
            .get(name)
            .cloned()
    }

    /// Checks the token now and remembers the answer.
    pub async fn verify(&self) -> Option<Result<AuthInfo, SourceError>> {
        let source = self.source.as_ref()?;
        let result = self.retry.run("verify token", || source.verify()).await;
        *self.auth.lock().expect("auth lock") = Some(result.clone());
        Some(result)
    }
}

/// Runs a refresh, joining one already running (single-flight).
pub async fn refresh(
    app: &Arc<impl Host>,
    opts: RefreshOptions,
) -> Result<(RefreshRecord, bool), OpError> {
    let r = &app.refresher();
    if r.source.is_none() {
        let record = rescan_record(app, &opts.trigger);
        record_metrics(&record);
        r.push(record.clone());
        return Ok((record, false));
    }
    if let Some(p) = &opts.pattern {
        regex::Regex::new(p).map_err(|e| {
            OpError::InvalidArgument(format!(
                "pattern {p:?} is not a valid regular expression: {e}"
            ))
        })?;
    }
    let leading = match app.leadership() {
        Some((leading, holder)) if !*leading.borrow() => {
            return Err(OpError::Refused(format!(
                "this replica does not refresh: {} holds the refresher Lease and refreshes for every replica ([replication]); ask it, or wait: its kubeconfigs reach this replica through the Secrets",
                holder.as_deref().unwrap_or("no replica yet")
            )));
        }
        Some((leading, _)) => Some(leading),
        None => None,
    };
    let mut running = r.running.lock().await;
    if let Some(shared) = running.clone() {
        drop(running);
        return Ok((shared.await, true));
    }
    if opts.force
        && opts.from_client
        && let Some(limited) = force_limited(app, &opts)
    {
        return Ok((limited, false));
    }
    if !opts.force
        && opts.pattern.is_none()
        && let Some(last) = r.history().into_iter().find(|h| h.note.is_none())
        && last.outcome == RefreshOutcome::Success
        && let Ok(age) = last.started.elapsed()
        && age < RECENT_GUARD
    {
        let mut skipped = last.clone();
        skipped.trigger = opts.trigger.clone();
        skipped.note = Some(format!(
            "skipped: the last refresh succeeded {}s ago; use force to refresh anyway",
            age.as_secs()
        ));
        return Ok((skipped, false));
    }
    // The run is a task of its own: a caller that goes away (a killed
    // nskctl drops its request) neither stops it nor leaves it in `running`.
    let task_app = app.clone();
    let shared = async move {
        // Leadership lost: the run stops at once (each stored file and
        // Secret is written whole, so nothing is left torn).
        let trigger = opts.trigger.clone();
        let (started, t0) = (SystemTime::now(), Instant::now());
        let record = match leading {
            None => run(&task_app, opts).await,
            Some(mut leading) => tokio::select! {
                record = run(&task_app, opts) => record,
                _ = leading.wait_for(|l| !*l) => {
                    let record = failed_record(started, t0, &trigger, Failure::new(
                        ErrorKind::Unavailable,
                        "this replica lost the refresher Lease during the refresh; it stopped, and the new holder refreshes",
                    ));
                    log_record(&record);
                    record
                }
            },
        };
        record_metrics(&record);
        let r = &task_app.refresher();
        r.push(record.clone());
        *r.running.lock().await = None;
        record
    }
    .boxed()
    .shared();
    *running = Some(shared.clone());
    drop(running);
    tokio::spawn(shared.clone());
    Ok((shared.await, false))
}

/// A client's forced refresh sooner than `[nsk] min_force_interval` after
/// the previous one: the last record, with a note saying when the next is
/// allowed. Otherwise `None`, and this one counts as the latest. Called
/// with the single-flight lock held, so a running refresh is joined instead.
fn force_limited(app: &impl Host, opts: &RefreshOptions) -> Option<RefreshRecord> {
    let r = &app.refresher();
    let min = app.config().nsk.min_force_interval;
    let mut last = r.last_forced.lock().expect("last_forced lock");
    if let Some(ago) = last.map(|at| at.elapsed())
        && ago < min
    {
        let wait = (min - ago).as_secs_f64().ceil() as u64;
        let mut record = r
            .history()
            .into_iter()
            .find(|h| h.note.is_none())
            .unwrap_or_else(|| {
                let none = Failure::default();
                let mut empty = failed_record(SystemTime::now(), Instant::now(), "", none);
                empty.error = None;
                empty
            });
        record.trigger = opts.trigger.clone();
        record.note = Some(format!(
            "skipped: a forced refresh ran {}s ago; next allowed in {wait}s ([nsk] min_force_interval = {})",
            ago.as_secs(),
            humantime::format_duration(min)
        ));
        return Some(record);
    }
    *last = Some(Instant::now());
    None
}

fn rescan_record(app: &impl Host, trigger: &str) -> RefreshRecord {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let changes = crate::blocking::run(|| app.rescan(true));
    let snapshot = app.registry().snapshot();
    RefreshRecord {
        outcome: RefreshOutcome::Rescanned,
        started,
        duration: t0.elapsed(),
        trigger: trigger.to_string(),
        changes,
        listed: snapshot.clusters.len(),
        failed: snapshot
            .clusters
            .values()
            .filter_map(|e| {
                e.error.clone().map(|err| ClusterFailure {
                    cluster: e.name.clone(),
                    failure: Failure::new(ErrorKind::Invalid, err),
                })
            })
            .collect(),
        error: None,
        note: None,
    }
}

fn failed_record(started: SystemTime, t0: Instant, trigger: &str, error: Failure) -> RefreshRecord {
    RefreshRecord {
        outcome: RefreshOutcome::Failed,
        started,
        duration: t0.elapsed(),
        trigger: trigger.to_string(),
        changes: Changes::default(),
        listed: 0,
        failed: Vec::new(),
        error: Some(error),
        note: None,
    }
}

/// One refresh run (no single-flight here).
async fn run(app: &Arc<impl Host>, opts: RefreshOptions) -> RefreshRecord {
    let started = SystemTime::now();
    let t0 = Instant::now();
    let r = &app.refresher();
    let (Some(source), Some(store)) = (&r.source, &r.store) else {
        return rescan_record(app, &opts.trigger);
    };
    tracing::info!(trigger = %opts.trigger, force = opts.force, pattern = ?opts.pattern, "refresh started");
    let listed = match r.retry.run("list clusters", || source.list()).await {
        Ok(l) => l,
        Err(e) => return source_failed(app, (started, t0), &opts.trigger, "listing clusters", &e),
    };
    let pattern = opts
        .pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok());
    let wanted: Vec<RemoteCluster> = listed
        .iter()
        .filter(|c| app.config().cluster_selected(&c.name))
        .filter(|c| pattern.as_ref().is_none_or(|p| p.is_match(&c.name)))
        .cloned()
        .collect();
    let stored = crate::blocking::run(|| store.names());
    if listed.is_empty() && !stored.is_empty() {
        let record = failed_record(
            started,
            t0,
            &opts.trigger,
            Failure::new(
                ErrorKind::NotFound,
                format!(
                    "the source listed no clusters at all; keeping the {} stored kubeconfigs (a Rancher or permission problem is more likely than every cluster being deleted)",
                    stored.len()
                ),
            ),
        );
        log_record(&record);
        return record;
    }
    let outcomes = match source {
        Source::Nsk(nsk) if app.config().nsk.bulk_refresh => {
            let pattern = opts.pattern.clone().or_else(|| {
                app.config()
                    .nsk
                    .cluster_pattern
                    .as_ref()
                    .map(|p| p.as_str().to_string())
            });
            match r
                .retry
                .run("bulk kubeconfig", || nsk.bulk(pattern.as_deref()))
                .await
            {
                Ok(lines) => crate::blocking::run(|| {
                    store_bulk(app.scanner(), nsk, store, wanted, &lines, &source.trust())
                }),
                Err(e) => {
                    return source_failed(
                        app,
                        (started, t0),
                        &opts.trigger,
                        "bulk kubeconfig refresh",
                        &e,
                    );
                }
            }
        }
        _ => {
            futures::stream::iter(wanted)
                .map(|c| async move {
                    let result = fetch_one(r, app.scanner(), source, store, &c).await;
                    (c, result)
                })
                .buffer_unordered(FETCH_CONCURRENCY)
                .collect()
                .await
        }
    };

    // Clusters gone from the source: their files move to .removed/ (file
    // I/O, done before the state lock is taken).
    let retired: Vec<(String, Result<std::path::PathBuf, store::StoreError>)> = if pattern.is_none()
    {
        let present: std::collections::HashSet<&str> =
            listed.iter().map(|c| c.name.as_str()).collect();
        app.scanner().retain_refused(|n| present.contains(n));
        crate::blocking::run(|| {
            stored
                .iter()
                .filter(|n| !present.contains(n.as_str()))
                .map(|n| (n.clone(), store.retire(n)))
                .collect()
        })
    } else {
        Vec::new()
    };
    let mut changes = Changes::default();
    let mut failed = Vec::new();
    let now = SystemTime::now();
    {
        let mut clusters = r.clusters.lock().expect("clusters lock");
        for (c, result) in &outcomes {
            let entry = clusters.entry(c.name.clone()).or_default();
            entry.id = c.id.clone();
            entry.rancher_state = c.state.clone();
            match result {
                Ok(outcome) => {
                    entry.last_refreshed = Some(now);
                    entry.failure = None;
                    match outcome {
                        WriteOutcome::Added => changes.added.push(c.name.clone()),
                        WriteOutcome::Updated => changes.changed.push(c.name.clone()),
                        WriteOutcome::Unchanged => {}
                    }
                }
                Err(failure) => {
                    let since = entry.failure.as_ref().map(|(_, t)| *t).unwrap_or(now);
                    entry.failure = Some((failure.reason.clone(), since));
                    failed.push(ClusterFailure {
                        cluster: c.name.clone(),
                        failure: failure.clone(),
                    });
                }
            }
        }
        for (name, result) in retired {
            match result {
                Ok(to) => {
                    tracing::info!(cluster = %name, moved_to = %to.display(), "cluster left Rancher; kubeconfig retired");
                    clusters.remove(&name);
                    changes.removed.push(name);
                }
                Err(e) => failed.push(ClusterFailure {
                    cluster: name,
                    failure: e.into(),
                }),
            }
        }
    }
    crate::blocking::run(|| app.rescan(true));
    failed.sort();
    changes.added.sort();
    changes.changed.sort();
    let ok = outcomes.len() - failed.len().min(outcomes.len());
    let outcome = if failed.is_empty() {
        RefreshOutcome::Success
    } else if ok > 0 {
        RefreshOutcome::Partial
    } else {
        RefreshOutcome::Failed
    };
    let record = RefreshRecord {
        outcome,
        started,
        duration: t0.elapsed(),
        trigger: opts.trigger,
        changes,
        listed: outcomes.len(),
        failed,
        error: None,
        note: None,
    };
    log_record(&record);
    record
}

async fn fetch_one(
    r: &Refresher,
    scanner: &crate::discovery::Scanner,
    source: &Source,
    store: &Store,
    c: &RemoteCluster,
) -> Result<WriteOutcome, Failure> {
    store::validate_name(&c.name)?;
    let text = r
        .retry
        .run("fetch kubeconfig", || source.kubeconfig(c))
        .await?;
    let suffix = source.expected_server_suffix(c);
    crate::blocking::run(|| {
        validate_and_write(
            scanner,
            store,
            &c.name,
            &text,
            suffix.as_deref(),
            &source.trust(),
        )
    })
}

/// Validates fetched text and stores it. A refusal of the trust check is
/// remembered by the scanner, so a cluster with no stored file still shows
/// (unusable, naming the refused field); an accepted file clears it.
fn validate_and_write(
    scanner: &crate::discovery::Scanner,
    store: &Store,
    name: &str,
    text: &str,
    suffix: Option<&str>,
    trust: &crate::kubeconfig::trust::Trust,
) -> Result<WriteOutcome, Failure> {
    match store::validate_kubeconfig(name, text, suffix, trust) {
        Ok(()) => {}
        Err(e @ store::Rejected::Untrusted(_)) => {
            let reason = e.to_string();
            tracing::warn!(cluster = %name, %reason, "refused a fetched kubeconfig");
            scanner.set_refused(name, reason.clone());
            return Err(Failure::new(ErrorKind::Policy, reason));
        }
        Err(e) => return Err(Failure::new(ErrorKind::Invalid, e.to_string())),
    }
    let outcome = store.write(name, text)?;
    scanner.retain_refused(|n| n != name);
    Ok(outcome)
}

/// Bulk mode: nsk wrote the files; read back, validate and store each
/// wanted cluster's file. A wanted cluster nsk did not write is a failure.
fn store_bulk(
    scanner: &crate::discovery::Scanner,
    nsk: &crate::source::nsk::NskSource,
    store: &Store,
    wanted: Vec<RemoteCluster>,
    lines: &[crate::source::contract::BulkLine],
    trust: &crate::kubeconfig::trust::Trust,
) -> Vec<(RemoteCluster, Result<WriteOutcome, Failure>)> {
    use crate::source::contract::BulkLine;
    wanted
        .into_iter()
        .map(|c| {
            let line = lines.iter().find(|l| match l {
                BulkLine::Saved { name, .. } | BulkLine::Failed { name, .. } => *name == c.name,
            });
            let result = match line {
                Some(BulkLine::Saved { path, .. }) => nsk
                    .read_saved(path)
                    .map_err(Failure::from)
                    .and_then(|text| {
                        store::validate_name(&c.name)?;
                        validate_and_write(scanner, store, &c.name, &text, None, trust)
                    }),
                Some(BulkLine::Failed { reason, kind, .. }) => {
                    Err(Failure::new(*kind, crate::redact::redact(reason)))
                }
                None => Err(Failure::new(
                    ErrorKind::Internal,
                    "nsk's bulk kubeconfig run did not mention this cluster",
                )),
            };
            (c, result)
        })
        .collect()
}

/// The whole run failed at the source: every cluster's kubeconfig is now
/// stale (and kept); the run is recorded as Failed.
fn source_failed(
    app: &impl Host,
    (started, t0): (SystemTime, Instant),
    trigger: &str,
    what: &str,
    e: &SourceError,
) -> RefreshRecord {
    mark_all_stale(app, &e.message);
    let record = failed_record(
        started,
        t0,
        trigger,
        Failure::new(e.kind, format!("{what} failed: {}", e.message)),
    );
    log_record(&record);
    record
}

fn mark_all_stale(app: &impl Host, reason: &str) {
    let now = SystemTime::now();
    let mut clusters = app.refresher().clusters.lock().expect("clusters lock");
    for name in app.registry().names() {
        let entry = clusters.entry(name).or_default();
        let since = entry.failure.as_ref().map(|(_, t)| *t).unwrap_or(now);
        entry.failure = Some((reason.to_string(), since));
    }
}

fn log_record(r: &RefreshRecord) {
    tracing::info!(
        outcome = r.outcome.word(),
        trigger = %r.trigger,
        duration_ms = r.duration.as_millis() as u64,
        listed = r.listed,
        added = r.changes.added.len(),
        updated = r.changes.changed.len(),
        removed = r.changes.removed.len(),
        failed = r.failed.len(),
        error = r.error.as_ref().map_or("", |e| e.reason.as_str()),
        "refresh finished"
    );
    for ClusterFailure {
        cluster,
        failure: Failure { reason, .. },
    } in &r.failed
    {
        tracing::warn!(%cluster, %reason, "kubeconfig refresh failed; the cached kubeconfig stays in use");
    }
}

/// The next scheduled time: `interval` ± 10 % after now, earlier when a
/// stored credential expires sooner (minus a margin).
pub fn next_time(app: &impl Host, interval: Duration) -> SystemTime {
    let jitter = interval.as_secs_f64() * 0.1 * (fastrand::f64() * 2.0 - 1.0);
    let mut next =
        SystemTime::now() + Duration::from_secs_f64((interval.as_secs_f64() + jitter).max(1.0));
    let soonest = app
        .registry()
        .snapshot()
        .clusters
        .values()
        .flat_map(|e| [e.token_expiry, e.cert_expiry])
        .flatten()
        .filter(|t| *t > SystemTime::now())
        .min();
    if let Some(expiry) = soonest {
        let ahead = expiry.checked_sub(EXPIRY_MARGIN).unwrap_or(expiry);
        let floor = SystemTime::now() + Duration::from_secs(30);
        if ahead < next {
            next = ahead.max(floor);
        }
    }
    next
}

/// One scheduled run: the token check, a forced refresh, and the time of
/// the next one (remembered for status).
pub async fn scheduled_run(app: &Arc<impl Host>, trigger: &str) -> SystemTime {
    if let Some(Err(e)) = app.refresher().verify().await {
        tracing::warn!(error = %e, "Rancher token check failed");
    }
    let opts = RefreshOptions {
        force: true,
        pattern: None,
        trigger: trigger.into(),
        from_client: false,
    };
    if let Err(e) = refresh(app, opts).await {
        tracing::warn!(error = %e, "scheduled refresh could not run");
    }
    let next = next_time(app, app.config().nsk.refresh_interval);
    app.refresher().set_next_due(Some(next));
    next
}

/// The schedule: a refresh at start, then at every `next_time`. Runs only
/// with `auto_refresh` and a fetching source.
pub async fn schedule(app: Arc<impl Host>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if app.refresher().source.is_none() || !app.config().nsk.auto_refresh {
        return;
    }
    let mut trigger = "startup";
    loop {
        let next = scheduled_run(&app, trigger).await;
        let wait = next.duration_since(SystemTime::now()).unwrap_or_default();
        tracing::debug!(in_secs = wait.as_secs(), "next refresh scheduled");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        trigger = "schedule";
    }
}

/// Why a refresh failed, for its metric (`None`: it did not): the kind of
/// the whole-run error, or which clusters failed.
fn failure_of(r: &RefreshRecord) -> Option<RefreshFailed> {
    match r.outcome {
        RefreshOutcome::Success | RefreshOutcome::Rescanned => None,
        RefreshOutcome::Partial if r.error.is_none() => Some(RefreshFailed::Partial),
        _ => Some(match &r.error {
            Some(e) => RefreshFailed::Run(e.kind),
            None => RefreshFailed::ClustersFailed,
        }),
    }
}

/// Counts a finished run (not a note-only record).
fn record_metrics(r: &RefreshRecord) {
    if r.note.is_none() {
        crate::metrics::refresh_done(failure_of(r), r.duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: RefreshOutcome, error: Option<Failure>) -> RefreshRecord {
        let mut r = failed_record(
            SystemTime::now(),
            Instant::now(),
            "test",
            Failure::default(),
        );
        r.outcome = outcome;
        r.error = error;
        r
    }

    #[test]
    fn the_failure_metric_label_is_the_kind_of_the_recorded_error() {
        // The text says "timed out"; the kind says refused: the kind wins.
        let refused = Failure::new(ErrorKind::Refused, "listing clusters failed: timed out");
        let label = |r: &RefreshRecord| failure_of(r).map(RefreshFailed::label);
        assert_eq!(
            label(&record(RefreshOutcome::Failed, Some(refused))),
            Some("refused")
        );
        let full = Failure::new(ErrorKind::Storage, "cannot write");
        assert_eq!(
            label(&record(RefreshOutcome::Failed, Some(full))),
            Some("storage")
        );
        assert_eq!(
            label(&record(RefreshOutcome::Partial, None)),
            Some("partial")
        );
        assert_eq!(
            label(&record(RefreshOutcome::Failed, None)),
            Some("clusters_failed")
        );
        assert_eq!(label(&record(RefreshOutcome::Success, None)), None);
    }
}
