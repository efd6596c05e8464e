//! One Kubernetes client per cluster, shared by every session: created on
//! first use, rebuilt when the cluster's kubeconfig changes, dropped when
//! idle. Each client carries its cluster's API discovery cache.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use kube::config::KubeConfigOptions;

mod multiplex;

pub use multiplex::Protocol;

use crate::{
    config::PoolConfig, error::OpError, impersonate::Caller, kinds::ApiDiscovery,
    registry::ClusterEntry, throttle::ThrottleLayer,
};

/// A cluster's client and what hangs off it.
pub struct ClusterClient {
    /// Cluster name.
    pub name: String,
    /// API server URL.
    pub server: String,
    /// Kubeconfig path (for error messages).
    pub path: String,
    /// The kubeconfig content this client was built from.
    pub hash: u64,
    /// The client (cheap to clone; shares one connection pool).
    pub client: kube::Client,
    /// The client watch caches stream through: HTTP/2 where the server
    /// offers it, every watch of the cluster on one connection
    /// ([`multiplex`]); same credentials and throttle as `client`.
    pub watch_client: kube::Client,
    /// The protocol `watch_client` last got an answer with.
    pub watch_protocol: Arc<Protocol>,
    /// Resolved kinds of this cluster (shared with its callers' clients).
    pub discovery: Arc<ApiDiscovery>,
    /// When the credential of its exec plugin expires: the client is
    /// rebuilt (the plugin run again) after that.
    pub expires: Option<SystemTime>,
    last_used_ms: AtomicU64,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Longest an exec credential plugin may run.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

impl ClusterClient {
    /// True when its exec credential has expired.
    fn expired(&self) -> bool {
        self.expires.is_some_and(|t| t <= SystemTime::now())
    }

    fn touch(&self, epoch: Instant) {
        self.last_used_ms
            .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// The pool.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    /// Connect deadline for new connections.
    connect_timeout: Duration,
    epoch: Instant,
    clients: Mutex<HashMap<String, Arc<ClusterClient>>>,
    /// Per caller: a client over a cluster's shared client that
    /// impersonates the caller, with the shared client it was made from.
    callers: Mutex<HashMap<(String, Arc<Caller>), CallerClient>>,
}

/// A caller's client and the shared client it sends through.
#[derive(Debug)]
struct CallerClient {
    base: Arc<ClusterClient>,
    client: Arc<ClusterClient>,
}

/// Most caller clients kept (beyond: all are dropped and made again).
pub const MAX_CALLER_CLIENTS: usize = 4096;

impl Pool {
    /// An empty pool.
    pub fn new(config: PoolConfig, connect_timeout: Duration) -> Self {
        Self {
            config,
            connect_timeout,
            epoch: Instant::now(),
            clients: Mutex::new(HashMap::new()),
            callers: Mutex::new(HashMap::new()),
        }
    }

    /// The pool's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The client for `entry`, built if absent or if its kubeconfig changed.
    pub async fn get(&self, entry: &ClusterEntry) -> Result<Arc<ClusterClient>, OpError> {
        if let Some(existing) = self.lookup(&entry.name, entry.hash) {
            existing.touch(self.epoch);
            return Ok(existing);
        }
        let built = Arc::new(self.build(entry).await?);
        built.touch(self.epoch);
        let mut clients = self.clients.lock().expect("pool lock poisoned");
        // Another task may have built one meanwhile: keep the first, so all
        // sessions share one connection pool and one discovery cache.
        let slot = clients
            .entry(entry.name.clone())
            .or_insert_with(|| built.clone());
        if slot.hash != entry.hash || slot.expired() {
            *slot = built.clone();
        }
        Ok(slot.clone())
    }

    /// `base`'s client for `caller`: the same connections, credentials,
    /// throttle and discovery, every request sent with `Impersonate-User`
    /// and `Impersonate-Group` ([`crate::impersonate`]). Made once per
    /// cluster and caller, again when `base` is rebuilt.
    pub fn for_caller(
        &self,
        base: &Arc<ClusterClient>,
        caller: &Arc<Caller>,
    ) -> Arc<ClusterClient> {
        let key = (base.name.clone(), caller.clone());
        let mut callers = self.callers.lock().expect("pool lock poisoned");
        if let Some(c) = callers.get(&key)
            && Arc::ptr_eq(&c.base, base)
        {
            c.client.touch(self.epoch);
            return c.client.clone();
        }
        if callers.len() >= MAX_CALLER_CLIENTS {
            callers.clear();
        }
        let client = Arc::new(ClusterClient {
            name: base.name.clone(),
            server: base.server.clone(),
            path: base.path.clone(),
            hash: base.hash,
            client: crate::impersonate::client_as(&base.client, caller),
            watch_client: crate::impersonate::client_as(&base.watch_client, caller),
            watch_protocol: base.watch_protocol.clone(),
            discovery: base.discovery.clone(),
            expires: base.expires,
            last_used_ms: AtomicU64::new(0),
        });
        client.touch(self.epoch);
        callers.insert(
            key,
            CallerClient {
                base: base.clone(),
                client: client.clone(),
            },
        );
        client
    }

    fn lookup(&self, name: &str, hash: u64) -> Option<Arc<ClusterClient>> {
        let clients = self.clients.lock().expect("pool lock poisoned");
        clients
            .get(name)
            .filter(|c| c.hash == hash && !c.expired())
            .cloned()
    }

    async fn build(&self, entry: &ClusterEntry) -> Result<ClusterClient, OpError> {
        let unusable = |reason: String| OpError::Unusable {
            cluster: entry.name.clone(),
            reason,
        };
        if let Some(error) = &entry.error {
            return Err(unusable(error.clone()));
        }
        let file = entry.file.as_ref().ok_or_else(|| {
            unusable(format!("kubeconfig {} is not loaded", entry.path.display()))
        })?;
        let options = KubeConfigOptions {
            context: Some(entry.context.clone()),
            ..Default::default()
        };
        let (kubeconfig, expires) = self.without_plugins(entry, file).await?;
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| {
                unusable(format!(
                    "kubeconfig {} (context {:?}) cannot be used: {}",
                    entry.path.display(),
                    entry.context,
                    crate::kubeconfig::one_line(&crate::error::error_chain(&e))
                ))
            })?;
        config.connect_timeout = Some(self.connect_timeout);
        // A little beyond the call's own deadline, so a server that stops
        // answering mid-call gets the call's "timed out after N s" message;
        // still bounded for watches whose server went silent.
        let silence = self.config.request_timeout + Duration::from_secs(1);
        config.read_timeout = Some(silence);
        config.write_timeout = Some(silence);
        // No silent retries of 429/503/504 inside the client: a 429 can be
        // an answer (an eviction a PodDisruptionBudget blocks, which a drain
        // reports and retries itself), and each call has its own deadline.
        config.default_retry = false;
        let throttle = ThrottleLayer::new(self.config.qps, self.config.burst);
        let watch_protocol = Arc::new(Protocol::default());
        let multiplex::Clients {
            calls: client,
            watches: watch_client,
        } = multiplex::clients(
            &config,
            self.connect_timeout,
            &throttle,
            watch_protocol.clone(),
        )
        .map_err(|e| {
            unusable(format!(
                "cannot build a client from {}: {}",
                entry.path.display(),
                crate::kubeconfig::one_line(&e)
            ))
        })?;
        Ok(ClusterClient {
            name: entry.name.clone(),
            server: entry.server.clone(),
            path: entry.path.display().to_string(),
            hash: entry.hash,
            client,
            watch_client,
            watch_protocol,
            discovery: Arc::default(),
            expires,
            last_used_ms: AtomicU64::new(0),
        })
    }

    /// The kubeconfig kube-rs gets: never one that runs code. An exec
    /// plugin (allowed by the scanner for the user's own files only) is run
    /// here by [`crate::kubeconfig::exec_plugin`] and replaced by its credential.
    async fn without_plugins(
        &self,
        entry: &ClusterEntry,
        file: &crate::kubeconfig::KubeconfigFile,
    ) -> Result<(kube::config::Kubeconfig, Option<SystemTime>), OpError> {
        use crate::{kubeconfig::exec_plugin, registry::EntrySource};
        let unusable = |reason: String| OpError::Unusable {
            cluster: entry.name.clone(),
            reason,
        };
        let uses_provider = file.config.contexts.iter().any(|c| {
            c.name == entry.context
                && c.context
                    .as_ref()
                    .and_then(|c| c.user.as_ref())
                    .is_some_and(|u| {
                        file.config.auth_infos.iter().any(|a| {
                            &a.name == u
                                && a.auth_info
                                    .as_ref()
                                    .is_some_and(|a| a.auth_provider.is_some())
                        })
                    })
        });
        if uses_provider {
            return Err(unusable(format!(
                "kubeconfig {} (context {:?}) uses an auth-provider, which nskd never runs",
                entry.path.display(),
                entry.context
            )));
        }
        let Some((user, exec)) = exec_plugin::plugin_user(&file.config, &entry.context) else {
            return Ok(((*file.config).clone(), None));
        };
        if matches!(entry.source, EntrySource::Nsk | EntrySource::Rancher) {
            return Err(unusable(format!(
                "kubeconfig {} was fetched and has an exec plugin (users[].user.exec of {user:?}), which nskd never runs",
                entry.path.display()
            )));
        }
        let timeout = self.config.request_timeout.min(EXEC_TIMEOUT);
        let origin = format!("kubeconfig {}", entry.path.display());
        let credential = exec_plugin::run(&exec, &user, &origin, timeout)
            .await
            .map_err(|e| unusable(e.to_string()))?;
        tracing::debug!(cluster = %entry.name, %user, expires = ?credential.expires, "exec plugin gave a credential");
        Ok((
            exec_plugin::with_credential(&file.config, &user, &credential),
            credential.expires,
        ))
    }

    /// Drops the clients of `names` (their kubeconfig changed or is gone).
    pub fn invalidate<'a>(&self, names: impl IntoIterator<Item = &'a String>) {
        let mut clients = self.clients.lock().expect("pool lock poisoned");
        let mut callers = self.callers.lock().expect("pool lock poisoned");
        for name in names {
            clients.remove(name);
            callers.retain(|(cluster, _), _| cluster != name);
        }
    }

    /// Drops clients unused for longer than the idle timeout; returns how
    /// many.
    pub fn evict_idle(&self) -> usize {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let idle_ms = self.config.idle_timeout.as_millis() as u64;
        let mut clients = self.clients.lock().expect("pool lock poisoned");
        let before = clients.len();
        clients
            .retain(|_, c| now_ms.saturating_sub(c.last_used_ms.load(Ordering::Relaxed)) < idle_ms);
        self.callers
            .lock()
            .expect("pool lock poisoned")
            .retain(|_, c| {
                now_ms.saturating_sub(c.client.last_used_ms.load(Ordering::Relaxed)) < idle_ms
            });
        before - clients.len()
    }

    /// Number of live clients.
    pub fn len(&self) -> usize {
        self.clients.lock().expect("pool lock poisoned").len()
    }

    /// True when no client is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
