//! Metadata indexes: which objects of a kind a label selector picks, with
//! their uids, resourceVersions and labels, kept in memory per cluster by
//! a metadata watch (no object content is read). Helm's release records
//! are indexed this way, so a fleet-wide `helm_list` answers from memory.
//!
//! They behave like the watch caches ([`crate::cache`]): started by the
//! first call that could use one on a cluster (that call goes to the API
//! server), shared by every session, answering only while in sync, dropped
//! when idle (`[cache] idle_timeout`), when the cluster's kubeconfig
//! changes and on invalidation, and bounded by the `[cache]` caps. An
//! index the API server refuses (401, 403, 404) gives up with the reason,
//! and its calls go to the API server.

mod watch;

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use kube::discovery::ApiResource;

pub use watch::{Limits, MetaItem, MetaWatch, Usage};

use crate::{
    config::CacheConfig,
    pool::ClusterClient,
    watching::{ClusterWatches, Life, Registry, Watched},
};

/// What one index watches: every object of a kind, in every namespace,
/// that the selectors pick.
#[derive(Debug, Clone)]
pub struct IndexScope {
    /// The kind.
    pub resource: ApiResource,
    /// Label selector.
    pub labels: Option<String>,
    /// Field selector.
    pub fields: Option<String>,
    /// What the index is for, in statistics and metrics (`helm-releases`).
    pub purpose: &'static str,
}

impl IndexScope {
    fn key(&self) -> (&str, &str, &str, Option<&str>, Option<&str>) {
        (
            &self.resource.group,
            &self.resource.version,
            &self.resource.plural,
            self.labels.as_deref(),
            self.fields.as_deref(),
        )
    }

    /// `secrets (helm-releases)`, for metrics.
    pub fn label(&self) -> String {
        let r = &self.resource;
        if r.group.is_empty() {
            format!("{} ({})", r.plural, self.purpose)
        } else {
            format!("{}.{} ({})", r.plural, r.group, self.purpose)
        }
    }

    fn url(&self) -> String {
        crate::request::path::collection(&self.resource, None)
    }
}

impl PartialEq for IndexScope {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for IndexScope {}

impl Hash for IndexScope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for IndexScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())?;
        if let Some(l) = &self.labels {
            write!(f, " labels {l}")?;
        }
        if let Some(s) = &self.fields {
            write!(f, " fields {s}")?;
        }
        Ok(())
    }
}

/// Outcome of looking for an index that can answer.
#[derive(Debug)]
pub enum Lookup {
    /// This in-sync index answers.
    Hit(Arc<MetaWatch>),
    /// Go to the API server, for this reason (a metrics label).
    Miss(&'static str),
}

impl Lookup {
    /// The reason of a miss (`None` for a hit).
    pub fn miss(&self) -> Option<&'static str> {
        match self {
            Lookup::Hit(_) => None,
            Lookup::Miss(reason) => Some(reason),
        }
    }
}

/// One cluster's indexes, valid for one kubeconfig.
type ClusterIndexes = ClusterWatches<IndexScope, MetaWatch, Usage>;

/// A row of index statistics.
pub use crate::watching::Stat as IndexStat;

/// Every cluster's metadata indexes.
#[derive(Debug)]
pub struct MetaIndexes {
    config: CacheConfig,
    request_timeout: Duration,
    total: Arc<Usage>,
    registry: Registry<IndexScope, MetaWatch, Usage>,
}

impl MetaIndexes {
    /// No indexes yet.
    pub fn new(config: CacheConfig, request_timeout: Duration) -> Self {
        Self {
            config,
            request_timeout,
            total: Arc::new(Usage::default()),
            registry: Registry::default(),
        }
    }

    /// Whether indexes are kept at all (`[cache] enabled`).
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The in-sync index of `scope` on `cc`'s cluster. Without one, starts
    /// one (the call at hand goes to the API server) and says why it
    /// missed.
    pub fn lookup(&self, cc: &ClusterClient, scope: &IndexScope) -> Lookup {
        if !self.config.enabled {
            return Lookup::Miss("disabled");
        }
        let mut clusters = self.registry.lock();
        let indexes: &mut ClusterIndexes = clusters.entry(cc.name.clone()).or_default();
        indexes.renew(cc.hash);
        if let Some(w) = indexes.watches.get(scope) {
            w.life.touch();
            return if w.life.in_sync() {
                Lookup::Hit(w.clone())
            } else if w.life.refused().is_some() {
                Lookup::Miss("refused")
            } else {
                Lookup::Miss("out_of_sync")
            };
        }
        let limits = Limits {
            max_objects: self.config.max_objects,
            max_cluster_bytes: self.config.max_cluster_bytes,
            max_total_bytes: self.config.max_bytes,
            request_timeout: self.request_timeout,
        };
        let watch = Arc::new(MetaWatch::new(
            scope.clone(),
            cc.name.clone(),
            limits,
            indexes.usage.clone(),
            self.total.clone(),
        ));
        watch.start(cc.watch_client.clone(), cc.watch_protocol.clone());
        tracing::debug!(cluster = %cc.name, index = %scope, "started a metadata index");
        indexes.watches.insert(scope.clone(), watch);
        Lookup::Miss("starting")
    }

    /// Drops the indexes of `names` (their kubeconfig changed or is gone).
    pub fn invalidate<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        self.registry.invalidate(names);
    }

    /// Sweeps idle indexes every half idle timeout (at most every minute)
    /// until `shutdown`.
    pub async fn sweep_idle(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.registry
            .sweep_until(self.config.idle_timeout, "metadata indexes", shutdown)
            .await;
    }

    /// Drops indexes unused for longer than `[cache] idle_timeout`;
    /// returns how many.
    pub fn sweep(&self) -> usize {
        self.registry.sweep(self.config.idle_timeout)
    }

    /// Objects and bytes held by all indexes.
    pub fn total(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.total.objects.load(Relaxed),
            self.total.bytes.load(Relaxed),
        )
    }

    /// One row per index, sorted by cluster and scope.
    pub fn stats(&self) -> Vec<IndexStat> {
        self.registry.stats()
    }
}

impl Watched for MetaWatch {
    fn life(&self) -> &Life {
        &self.life
    }

    fn stop(&self) {
        MetaWatch::stop(self);
    }

    fn size(&self) -> (usize, usize) {
        MetaWatch::size(self)
    }

    fn describe(&self) -> String {
        self.scope.to_string()
    }
}
