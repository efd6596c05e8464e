//! The daemon's shared state and the operations the API calls: everything
//! a request needs, in one place, so the gRPC layer stays thin and tests
//! can drive it in-process.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use nskd_proto::socket::SocketLocation;

use crate::{
    audit::AuditLog,
    config::Config,
    discovery::{ScanPlan, Scanner},
    error::OpError,
    health::{Health, Tracker},
    ops::{
        OpOptions, Rendered,
        list::{ListArgs, list},
    },
    pool::Pool,
    probe::Prober,
    refresh::Refresher,
    registry::{Changes, ClusterEntry, Registry},
    request::InvalidInput,
    source::{RetryPolicy, Source},
    store::Store,
};

/// Clusters one call works on at once.
pub const FAN_OUT: usize = 64;

/// The clusters a call runs on, and those `"*"` left out (`name: reason`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Clusters to run on, in order.
    pub names: Vec<String>,
    /// Left out by `"*"`, one line each.
    pub skipped: Vec<String>,
}

impl Targets {
    /// Exactly `names`, nothing skipped.
    pub fn of(names: Vec<String>) -> Self {
        Self {
            names,
            skipped: Vec::new(),
        }
    }
}

/// What an operation answers, as the fan-out sees it.
pub trait Answered {
    /// Answered from a watch cache (says nothing about latency).
    fn cached(&self) -> bool;
    /// What the audit log records of a change; `None` for reads.
    fn change(&self) -> Option<&crate::ops::change::ChangeFacts> {
        None
    }
}

impl Answered for Rendered {
    fn cached(&self) -> bool {
        self.from_cache
    }
    fn change(&self) -> Option<&crate::ops::change::ChangeFacts> {
        self.change.as_ref()
    }
}

impl Answered for crate::ops::list::Listing {
    fn cached(&self) -> bool {
        self.from_cache
    }
}

/// The answer of one cluster to a Kube call.
#[derive(Debug, Clone)]
pub struct ClusterAnswer<T = Rendered> {
    /// Cluster.
    pub cluster: String,
    /// Rendered text (or rows) or the error.
    pub result: Result<T, OpError>,
    /// Time taken.
    pub elapsed: std::time::Duration,
}

/// The daemon.
#[derive(Debug)]
pub struct App {
    /// Resolved configuration.
    pub config: Arc<Config>,
    /// Where it serves.
    pub location: SocketLocation,
    /// Known clusters.
    pub registry: Arc<Registry>,
    /// Clients.
    pub pool: Arc<Pool>,
    /// Watch caches, beside the clients they read through.
    pub caches: Arc<crate::cache::WatchCaches>,
    /// Health.
    pub tracker: Arc<Tracker>,
    /// Probes.
    pub prober: Arc<Prober>,
    /// Disk scanner.
    pub scanner: Scanner,
    /// Start time.
    pub started: Instant,
    /// Kubeconfig refresh (source, store, history).
    pub refresher: Refresher,
    /// The socket is accepting calls.
    pub serving: std::sync::atomic::AtomicBool,
    /// The audit trail.
    pub audit: AuditLog,
    /// Safety switches, read once from the configuration.
    pub policy: Arc<crate::safety::Policy>,
    /// Plans of changes and the rules on them.
    pub changes: Arc<crate::ops::change::Engine>,
    /// `[replication]`: the Lease and the kubeconfig Secrets.
    pub replication: Option<Arc<crate::replication::Replication>>,
    /// `[[access]]` rules and per-user rate limits for OIDC callers.
    pub access: Arc<crate::access::Access>,
    /// What `helm_list` decoded of each release record version.
    pub helm_rows: Arc<crate::helm::cache::RowCache>,
    /// Metadata indexes (Helm's release records), beside the watch caches.
    pub indexes: Arc<crate::metaindex::MetaIndexes>,
}

impl App {
    /// Builds the daemon's state with `retry` for its source, setting up the
    /// source and its store, and runs the first scan (local files only: no
    /// cluster is contacted); fails with a clear message when they cannot be set up.
    pub fn with_retry(
        config: Config,
        location: SocketLocation,
        retry: RetryPolicy,
    ) -> Result<Arc<Self>, String> {
        Self::with_replication(config, location, retry, None)
    }

    /// [`App::with_retry`], one of several replicas when `replication` is set.
    pub fn with_replication(
        config: Config,
        location: SocketLocation,
        retry: RetryPolicy,
        replication: Option<Arc<crate::replication::Replication>>,
    ) -> Result<Arc<Self>, String> {
        let source = Source::from_config(&config)?;
        let store = match (&source, &config.kubeconfig_dir) {
            (None, _) => None,
            (Some(_), Some(dir)) => Some(Store::open(dir).map_err(|e| e.message)?),
            (Some(_), None) => {
                return Err("the nsk and rancher sources need a kubeconfig_dir (or [nsk] config_dir) to store kubeconfigs in".into());
            }
        };
        let refresher = Refresher::new(source, store, retry);
        let audit_path = config
            .server
            .audit_log
            .clone()
            .unwrap_or_else(|| crate::audit::default_path(config.environment()));
        let audit = AuditLog::open(audit_path, config.server.audit_reads)?;
        let policy = Arc::new(crate::safety::Policy::of(&config)?);
        let access = Arc::new(crate::access::Access::new(
            &config.access,
            &config.http_auth,
        ));
        let changes = Arc::new(crate::ops::change::Engine::new(&config.safety));
        let registry = Arc::new(Registry::new());
        let connect_timeout = config.health.probe_timeout.min(config.pool.request_timeout);
        let caches = Arc::new(crate::cache::WatchCaches::new(
            config.cache.clone(),
            policy.masking.clone(),
            config.pool.request_timeout,
        ));
        let indexes = Arc::new(crate::metaindex::MetaIndexes::new(
            config.cache.clone(),
            config.pool.request_timeout,
        ));
        let pool = Arc::new(Pool::new(config.pool.clone(), connect_timeout));
        let tracker = Arc::new(Tracker::new(config.health.clone()));
        let prober = Arc::new(Prober::new(registry.clone(), pool.clone(), tracker.clone()));
        let scanner = Scanner::new(ScanPlan::from_config(&config));
        let app = Arc::new(Self {
            config: Arc::new(config),
            location,
            registry,
            pool,
            caches,
            tracker,
            prober,
            scanner,
            started: Instant::now(),
            refresher,
            serving: std::sync::atomic::AtomicBool::new(false),
            audit,
            policy,
            access,
            changes,
            replication,
            helm_rows: Arc::default(),
            indexes,
        });
        app.rescan(false);
        Ok(app)
    }

    /// Re-reads kubeconfigs into the registry; drops clients and health of
    /// clusters that changed or left.
    pub fn rescan(&self, reread: bool) -> Changes {
        let result = self.scanner.scan(&self.config, reread);
        for problem in &result.problems {
            tracing::warn!(problem = %crate::redact::redact(problem), "kubeconfig discovery");
        }
        for entry in result.entries.iter().filter(|e| e.error.is_some()) {
            tracing::warn!(cluster = %entry.name, error = %entry.error.as_deref().unwrap_or_default(), "unusable kubeconfig");
        }
        let changes = self.registry.replace(result.entries, result.problems);
        if !changes.is_empty() {
            tracing::info!(added = ?changes.added, changed = ?changes.changed, removed = ?changes.removed, "clusters changed");
            let gone = || changes.changed.iter().chain(&changes.removed);
            self.pool.invalidate(gone());
            // What was cached came through the old kubeconfig.
            self.caches.invalidate(gone());
            self.indexes.invalidate(gone());
            self.tracker
                .forget(changes.changed.iter().chain(&changes.removed));
        }
        changes
    }

    /// The entry of `name`, or an error listing the known clusters.
    pub fn cluster(&self, name: &str) -> Result<Arc<ClusterEntry>, OpError> {
        self.registry
            .get(name)
            .ok_or_else(|| OpError::UnknownCluster {
                name: name.to_string(),
                known: self.registry.names(),
            })
    }

    /// The cluster used when a call names none: `default_cluster` from the
    /// config, else the only cluster when there is exactly one.
    pub fn default_cluster(&self) -> Option<String> {
        if let Some(d) = &self.config.default_cluster {
            return Some(d.clone());
        }
        let snapshot = self.registry.snapshot();
        match snapshot.clusters.len() {
            1 => snapshot.clusters.keys().next().cloned(),
            _ => None,
        }
    }

    /// Which clusters a call targets: `clusters` (with `"*"` for every
    /// cluster not known to be down), else `cluster`, else the default.
    /// Also returns what `"*"` skipped, as `name: reason`.
    pub fn targets(&self, cluster: &str, clusters: &[String]) -> Result<Targets, OpError> {
        let mut targets = self.all_targets(cluster, clusters)?;
        let Some(caller) = crate::impersonate::current() else {
            return Ok(targets);
        };
        let named = !clusters.iter().any(|c| c == "*");
        let (open, closed): (Vec<String>, Vec<String>) = targets
            .names
            .into_iter()
            .partition(|n| self.access.allows_cluster(&caller, n));
        if let Some(first) = closed.first()
            && (named || open.is_empty())
        {
            return Err(OpError::Refused(
                self.access.cluster_refusal(&caller, first),
            ));
        }
        targets.names = open;
        Ok(targets)
    }

    /// [`App::targets`] before the caller's `[[access]]` clusters.
    fn all_targets(&self, cluster: &str, clusters: &[String]) -> Result<Targets, OpError> {
        if !cluster.is_empty() {
            crate::request::names::check_cluster("cluster", cluster)?;
        }
        for c in clusters.iter().filter(|c| c.as_str() != "*") {
            crate::request::names::check_cluster("clusters", c)?;
        }
        if clusters.iter().any(|c| c == "*") {
            let snapshot = self.registry.snapshot();
            let mut targets = Targets::default();
            for e in snapshot.clusters.values() {
                let health = self.tracker.get(&e.name);
                if let Some(err) = &e.error {
                    targets.skipped.push(format!(
                        "{}: kubeconfig unusable: {}",
                        e.name,
                        crate::redact::redact(&err.to_string())
                    ));
                } else if health.state == Health::NotReady {
                    let why = health.error.as_deref().unwrap_or("not answering");
                    targets.skipped.push(format!("{}: NotReady: {why}", e.name));
                } else {
                    targets.names.push(e.name.clone());
                }
            }
            return Ok(targets);
        }
        if !clusters.is_empty() {
            // Each cluster once, in the order first named; never more
            // names than there are clusters.
            let known = self.registry.names().len();
            if clusters.len() > known.max(1) {
                let mut unique: Vec<&String> = clusters.iter().collect();
                unique.sort();
                unique.dedup();
                if unique.len() > known.max(1) {
                    return Err(InvalidInput::new(
                        "clusters",
                        &clusters.join(","),
                        format!(
                            "names {} different clusters but this environment has {known}; name each at most once, or use [\"*\"] for all",
                            unique.len()
                        ),
                    )
                    .into());
                }
            }
            let mut names: Vec<String> = Vec::new();
            for c in clusters {
                if !names.contains(c) {
                    self.cluster(c)?;
                    names.push(c.clone());
                }
            }
            return Ok(Targets::of(names));
        }
        let name = if cluster.is_empty() {
            self.default_cluster().ok_or_else(|| OpError::NoCluster {
                known: self.registry.names(),
            })?
        } else {
            cluster.to_string()
        };
        self.cluster(&name)?;
        Ok(Targets::of(vec![name]))
    }

    /// Options every operation runs with.
    pub fn op_options(&self) -> OpOptions {
        OpOptions {
            timeout: self.config.pool.request_timeout,
            max_bytes: self.config.output.max_bytes,
            max_read_bytes: self.config.pool.max_response_bytes,
            policy: self.policy.clone(),
            caches: self.caches.clone(),
            use_cache: true,
            changes: self.changes.clone(),
        }
    }

    /// Runs `op` on every target cluster in parallel, each within its
    /// deadline, feeding the health tracker and the latency metric.
    pub async fn each<T, F, Fut>(
        &self,
        targets: Vec<String>,
        operation: &'static str,
        op: F,
    ) -> Vec<ClusterAnswer<T>>
    where
        T: Answered,
        F: Fn(Arc<crate::pool::ClusterClient>, OpOptions) -> Fut,
        Fut: std::future::Future<Output = Result<T, OpError>>,
    {
        self.each_with(targets, operation, self.op_options(), op)
            .await
    }

    /// [`App::each`] with these options (a share of the answer budget).
    pub async fn each_with<T, F, Fut>(
        &self,
        targets: Vec<String>,
        operation: &'static str,
        opts: OpOptions,
        op: F,
    ) -> Vec<ClusterAnswer<T>>
    where
        T: Answered,
        F: Fn(Arc<crate::pool::ClusterClient>, OpOptions) -> Fut,
        Fut: std::future::Future<Output = Result<T, OpError>>,
    {
        let op = &op;
        // An impersonated caller is answered live: the watch caches hold
        // what the daemon's identity may see, not what the caller may.
        let caller = crate::impersonate::current();
        let caller = &caller;
        let impersonate = caller.is_some() && self.config.http_auth.impersonate;
        // Bounded fan-out, answers in the order the clusters were named.
        futures::stream::iter(targets.into_iter().map(|name| {
            let mut opts = opts.clone();
            opts.use_cache = !self.tracker.failing(&name) && !impersonate;
            async move {
                let started = Instant::now();
                let result = async {
                    if let Some(caller) = caller
                        && !self.access.allows_cluster(caller, &name)
                    {
                        return Err(OpError::Refused(self.access.cluster_refusal(caller, &name)));
                    }
                    let entry = self.cluster(&name)?;
                    let mut cc = self.pool.get(&entry).await?;
                    if let Some(caller) = caller.as_ref().filter(|_| impersonate) {
                        cc = self.pool.for_caller(&cc, caller);
                    }
                    op(cc, opts).await
                }
                .await;
                let elapsed = started.elapsed();
                // A cached answer says nothing about the cluster's latency.
                if !result.as_ref().is_ok_and(|r| r.cached()) {
                    self.note_call(&name, operation, &result, elapsed);
                }
                ClusterAnswer {
                    cluster: name,
                    result,
                    elapsed,
                }
            }
        }))
        .buffered(FAN_OUT)
        .collect()
        .await
    }

    /// Lists on every target cluster.
    pub async fn list(&self, targets: Vec<String>, args: &ListArgs) -> Vec<ClusterAnswer> {
        self.each(targets, "list", |cc, opts| async move {
            list(&cc, args, &opts).await
        })
        .await
    }

    /// Gets one object on every target cluster.
    pub async fn get(
        &self,
        targets: Vec<String>,
        args: &crate::ops::get::GetArgs,
    ) -> Vec<ClusterAnswer> {
        self.each(targets, "get", |cc, opts| async move {
            crate::ops::get::get(&cc, args, &opts).await
        })
        .await
    }

    /// Feeds a real call's outcome to the health tracker.
    fn note_call<T>(
        &self,
        cluster: &str,
        operation: &'static str,
        result: &Result<T, OpError>,
        elapsed: std::time::Duration,
    ) {
        crate::metrics::api_latency(cluster, operation, elapsed);
        match result {
            Ok(_) => self.tracker.record_call(cluster, Ok(elapsed)),
            Err(e) if e.is_cluster_failure() => self.tracker.record_call(cluster, Err(e)),
            Err(_) => {}
        }
    }
}

impl crate::refresh::Host for App {
    fn config(&self) -> &Config {
        &self.config
    }

    fn refresher(&self) -> &Refresher {
        &self.refresher
    }

    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    fn rescan(&self, reread: bool) -> Changes {
        App::rescan(self, reread)
    }

    fn leadership(&self) -> Option<(tokio::sync::watch::Receiver<bool>, Option<String>)> {
        let r = self.replication.as_ref()?;
        Some((r.leading(), r.role().holder))
    }
}
