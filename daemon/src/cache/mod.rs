//! Watch caches: what agents list and get often, kept in memory per
//! cluster and answered without a round trip.
//!
//! A cache is keyed by (cluster, kind, namespace scope) and started by the
//! first list or get of that kind there; every session shares it. It holds
//! the API server's own table rows, so cached answers render exactly like
//! live ones, and answers only while its watch is in sync; otherwise (and
//! with `live: true`) calls go to the API server. Caches are dropped when
//! idle, when the cluster's kubeconfig changes, or when they would pass a
//! memory cap.

pub mod age;
mod packed;
pub mod select;
mod serve;
mod watch;

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use kube::discovery::ApiResource;

pub use serve::{Query, RowCells};
pub use watch::{Limits, Usage, Watch};

use crate::{
    config::CacheConfig,
    kinds::ResolvedKind,
    pool::ClusterClient,
    request::names::Namespace,
    safety::Masking,
    watching::{ClusterWatches, Life, Registry, Watched},
};

/// What one cache watches: a kind, everywhere or in one namespace.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The kind.
    pub resource: ApiResource,
    /// One namespace, or every namespace (and cluster-scoped kinds).
    pub namespace: Option<Namespace>,
}

impl Scope {
    fn key(&self) -> (&str, &str, &str, Option<&str>) {
        (
            &self.resource.group,
            &self.resource.version,
            &self.resource.plural,
            self.namespace.as_ref().map(Namespace::as_str),
        )
    }

    /// `pods` or `deployments.apps`, for metrics.
    pub fn resource_label(&self) -> String {
        resource_label(&self.resource)
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} in namespace {ns}", self.resource_label()),
            None => f.write_str(&self.resource_label()),
        }
    }
}

fn resource_label(r: &ApiResource) -> String {
    if r.group.is_empty() {
        r.plural.clone()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

/// Outcome of looking for a cache that can answer.
#[derive(Debug)]
pub enum Lookup {
    /// This in-sync cache answers.
    Hit(Arc<Watch>),
    /// Go to the API server, for this reason (a metrics label).
    Miss(&'static str),
}

/// One cluster's caches, valid for one kubeconfig.
type ClusterCaches = ClusterWatches<Scope, Watch, Usage>;

/// Stops the least recently used caches of a cluster until one more fits
/// under `max` (`[cache] max_cluster_caches`).
fn make_room(caches: &mut ClusterCaches, max: usize) {
    while caches.watches.len() >= max.max(1) {
        let Some(oldest) = caches
            .watches
            .iter()
            .max_by_key(|(_, w)| w.life.idle())
            .map(|(scope, _)| scope.clone())
        else {
            return;
        };
        if let Some(w) = caches.watches.remove(&oldest) {
            tracing::debug!(scope = %oldest, "dropped the least recently used watch cache of its cluster");
            w.stop();
        }
    }
}

/// A row of `nskctl`-style cache statistics.
pub use crate::watching::Stat as CacheStat;

/// Every cluster's watch caches.
#[derive(Debug)]
pub struct WatchCaches {
    config: CacheConfig,
    masking: Masking,
    request_timeout: Duration,
    total: Arc<Usage>,
    registry: Registry<Scope, Watch, Usage>,
    relists: Arc<tokio::sync::Semaphore>,
}

/// Most caches listing their kind at once (see [`Limits::relists`]).
pub const CONCURRENT_RELISTS: usize = 16;

impl WatchCaches {
    /// No caches yet.
    pub fn new(config: CacheConfig, masking: Masking, request_timeout: Duration) -> Self {
        Self {
            config,
            masking,
            request_timeout,
            total: Arc::new(Usage::default()),
            registry: Registry::default(),
            relists: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_RELISTS)),
        }
    }

    /// Whether `kind` is one this daemon caches.
    pub fn caches_kind(&self, kind: &ResolvedKind) -> bool {
        let verbs = |v: &str| kind.verbs.iter().any(|k| k == v);
        if !self.config.enabled || !verbs("list") || !verbs("watch") {
            return false;
        }
        let label = resource_label(&kind.resource);
        let plural = &kind.resource.plural;
        self.config
            .kinds
            .iter()
            .any(|k| k == "*" || k == &label || (kind.resource.group.is_empty() && k == plural))
    }

    /// A cache that can answer for `kind` in `namespace` (`None` = every
    /// namespace) on `cc`'s cluster. Without one, starts one (the call at
    /// hand goes to the API server) and says why it missed.
    pub fn lookup(
        &self,
        cc: &ClusterClient,
        kind: &ResolvedKind,
        namespace: Option<&Namespace>,
    ) -> Lookup {
        if !self.caches_kind(kind) {
            return Lookup::Miss("not_cached_kind");
        }
        let exact = Scope {
            resource: kind.resource.clone(),
            namespace: namespace.filter(|_| kind.namespaced).cloned(),
        };
        let everywhere = Scope {
            namespace: None,
            ..exact.clone()
        };
        let mut clusters = self.registry.lock();
        let caches = clusters.entry(cc.name.clone()).or_default();
        caches.renew(cc.hash);
        let mut refused = false;
        for scope in [&exact, &everywhere] {
            if let Some(w) = caches.watches.get(scope) {
                w.life.touch();
                if w.life.in_sync() {
                    return Lookup::Hit(w.clone());
                }
                refused |= w.life.refused().is_some();
            }
        }
        if refused {
            return Lookup::Miss("refused");
        }
        if caches.watches.contains_key(&exact) {
            return Lookup::Miss("out_of_sync");
        }
        let limits = Limits {
            max_objects: self.config.max_objects,
            max_cluster_bytes: self.config.max_cluster_bytes,
            max_total_bytes: self.config.max_bytes,
            masking: self.masking.clone(),
            request_timeout: self.request_timeout,
            relists: self.relists.clone(),
        };
        let watch = Arc::new(Watch::new(
            exact.clone(),
            cc.name.clone(),
            limits,
            caches.usage.clone(),
            self.total.clone(),
        ));
        make_room(caches, self.config.max_cluster_caches);
        watch.start(cc.watch_client.clone(), cc.watch_protocol.clone());
        tracing::debug!(cluster = %cc.name, resource = %exact, "started a watch cache");
        caches.watches.insert(exact, watch);
        Lookup::Miss("starting")
    }

    /// The in-sync cache that can answer for `kind` in `namespace`, if
    /// any; a miss is counted (by reason) and may start a cache for the
    /// next call. The caller counts the hit when it answers.
    pub fn answering(
        &self,
        cc: &ClusterClient,
        kind: &ResolvedKind,
        namespace: Option<&Namespace>,
    ) -> Option<Arc<Watch>> {
        if !self.caches_kind(kind) {
            return None;
        }
        match self.lookup(cc, kind, namespace) {
            Lookup::Hit(w) => Some(w),
            Lookup::Miss(reason) => {
                crate::metrics::cache_miss(&cc.name, &kind.display_name(), reason);
                None
            }
        }
    }

    /// Drops the caches of `names` (their kubeconfig changed or is gone).
    pub fn invalidate<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        self.registry.invalidate(names);
    }

    /// Sweeps idle caches every half idle timeout (at most every minute)
    /// until `shutdown`.
    pub async fn sweep_idle(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.registry
            .sweep_until(self.config.idle_timeout, "watch caches", shutdown)
            .await;
    }

    /// Drops caches unused for longer than `[cache] idle_timeout`; returns
    /// how many.
    pub fn sweep(&self) -> usize {
        self.registry.sweep(self.config.idle_timeout)
    }

    /// Objects and bytes held by all caches.
    pub fn total(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.total.objects.load(Relaxed),
            self.total.bytes.load(Relaxed),
        )
    }

    /// One row per cache, sorted by cluster and scope.
    pub fn stats(&self) -> Vec<CacheStat> {
        self.registry.stats()
    }
}

impl Watched for Watch {
    fn life(&self) -> &Life {
        &self.life
    }

    fn stop(&self) {
        Watch::stop(self);
    }

    fn size(&self) -> (usize, usize) {
        Watch::size(self)
    }

    fn describe(&self) -> String {
        self.scope.to_string()
    }
}
