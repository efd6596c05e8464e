//! Several replicas, one refresher (`[replication]`): the replicas share a
//! `coordination.k8s.io/v1` Lease in their home cluster ([`lease`]); only
//! its holder fetches kubeconfigs, and it publishes them as Secrets that
//! every replica watches and checks like fetched files ([`secrets`]).
//! Kubernetes is the only coordination: no peer talks to another.

pub mod lease;
pub mod secrets;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use tokio::sync::watch;

use crate::{
    config::{Config, ReplicationConfig},
    refresh::Host,
};

/// Where a Pod's service account names its namespace.
pub const SERVICE_ACCOUNT_NAMESPACE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Why replication cannot start (names the key or file, and what to do).
#[derive(Debug, thiserror::Error)]
#[error("[replication]: {0}")]
pub struct SetupError(String);

/// What this replica knows of the Lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Role {
    /// This replica holds the Lease.
    pub leader: bool,
    /// Who holds it (`None`: nobody, or not read yet).
    pub holder: Option<String>,
}

/// What this replica knows of the Secrets.
#[derive(Debug, Clone, Default)]
pub struct SyncState {
    /// When the Secrets were last listed or an event applied.
    pub last_sync: Option<SystemTime>,
    /// Kubeconfig Secrets accepted (removed ones included).
    pub accepted: usize,
    /// Secrets refused (each logged with its reason).
    pub refused: usize,
    /// The last watch or publish error, cleared by a success.
    pub error: Option<String>,
}

/// One replica's replication state.
pub struct Replication {
    /// nskd's own namespace (Lease and Secrets).
    pub namespace: String,
    /// Name of the Lease.
    pub lease: String,
    /// Lease duration.
    pub lease_duration: Duration,
    /// This replica's holder identity.
    pub identity: String,
    /// `nskd.io/environment` label value of the Secrets.
    pub environment: String,
    client: kube::Client,
    role: watch::Sender<Role>,
    leading: watch::Sender<bool>,
    /// Until when this replica's hold is surely valid (fencing for writes).
    valid_until: Mutex<Option<Instant>>,
    sync: Mutex<SyncState>,
    seen: Mutex<secrets::Seen>,
    synced: watch::Sender<bool>,
}

impl Replication {
    /// Resolves the namespace and identity and builds the home cluster client.
    pub async fn connect(config: &Config, r: &ReplicationConfig) -> Result<Arc<Self>, SetupError> {
        let namespace = match &r.namespace {
            Some(ns) => ns.clone(),
            None => std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    SetupError(format!(
                        "no namespace set and {SERVICE_ACCOUNT_NAMESPACE} cannot be read ({e}); set [replication] namespace"
                    ))
                })?,
        };
        let environment = config.environment().to_string();
        if !secrets::label_value_ok(&environment) {
            return Err(SetupError(format!(
                "the environment {environment:?} cannot be a label value (letters, digits, '-', '_', '.', at most 63); choose another [server] environment"
            )));
        }
        let kube_config = match &r.kubeconfig {
            None => kube::Config::incluster().map_err(|e| {
                SetupError(format!(
                    "not in a Pod with a service account ({e}); set [replication] kubeconfig to a kubeconfig reaching the cluster that holds the Lease"
                ))
            })?,
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    SetupError(format!("cannot read kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(|e| {
                        SetupError(format!("kubeconfig {} is not usable: {e}", path.display()))
                    })?
            }
        };
        let client = kube::Client::try_from(kube_config)
            .map_err(|e| SetupError(format!("cannot build a client for the home cluster: {e}")))?;
        Ok(Arc::new(Self {
            namespace,
            lease: r.lease.clone(),
            lease_duration: r.lease_duration,
            identity: identity(),
            environment,
            client,
            role: watch::channel(Role::default()).0,
            leading: watch::channel(false).0,
            valid_until: Mutex::new(None),
            sync: Mutex::new(SyncState::default()),
            seen: Mutex::new(secrets::Seen::default()),
            synced: watch::channel(false).0,
        }))
    }

    /// What this replica knows of the Lease now.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// True while this replica holds the Lease (changes at once when lost).
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// True when this replica holds the Lease and its last renewal is
    /// recent enough that nobody else can have taken it over.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
            && self
                .valid_until
                .lock()
                .expect("valid_until lock")
                .is_some_and(|t| Instant::now() < t)
    }

    /// What this replica knows of the Secrets.
    pub fn sync_state(&self) -> SyncState {
        self.sync.lock().expect("sync lock").clone()
    }

    /// True once the Secrets were listed at least once.
    pub fn synced(&self) -> bool {
        *self.synced.borrow()
    }

    fn set_role(&self, role: Role, valid_until: Option<Instant>) {
        *self.valid_until.lock().expect("valid_until lock") = valid_until;
        let leader = role.leader;
        self.role.send_if_modified(|r| {
            let changed = *r != role;
            *r = role;
            changed
        });
        self.leading.send_if_modified(|l| {
            let changed = *l != leader;
            *l = leader;
            changed
        });
        crate::metrics::replication_leader(leader);
    }
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("namespace", &self.namespace)
            .field("lease", &self.lease)
            .field("identity", &self.identity)
            .field("role", &self.role())
            .finish_non_exhaustive()
    }
}

/// This replica's holder identity: `POD_NAME` (set by the manifests), else
/// `<host>-<pid>`.
fn identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "nskd".to_string());
    format!("{host}-{}", std::process::id())
}

/// Runs replication until `shutdown`: the Lease, the Secrets watch, and
/// (while leading) the refresh schedule and publishing. Replaces
/// [`crate::refresh::schedule`] when `[replication]` is set.
pub async fn run(app: Arc<impl Host>, repl: Arc<Replication>, shutdown: watch::Receiver<bool>) {
    let elector = tokio::spawn(lease::run(repl.clone(), shutdown.clone()));
    let watcher = tokio::spawn(secrets::watch(app.clone(), repl.clone(), shutdown.clone()));
    lead(app, repl.clone(), shutdown.clone()).await;
    watcher.abort();
    // Let the elector release the Lease, so another replica takes over now.
    let _ = tokio::time::timeout(Duration::from_secs(5), elector).await;
}

/// Whenever this replica leads: refresh on the schedule (at once on taking
/// over) and publish what the store holds; stop the moment the Lease is lost.
async fn lead(app: Arc<impl Host>, repl: Arc<Replication>, mut shutdown: watch::Receiver<bool>) {
    let mut leading = repl.leading();
    loop {
        while !*leading.borrow_and_update() {
            tokio::select! {
                r = leading.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
        tracing::info!(lease = %repl.lease, identity = %repl.identity, "this replica leads: it refreshes and publishes kubeconfigs");
        tokio::select! {
            _ = lead_once(&app, &repl) => {}
            _ = async { while *leading.borrow_and_update() { if leading.changed().await.is_err() { break } } } => {
                tracing::warn!(lease = %repl.lease, "leadership lost: refreshing and publishing stopped");
            }
            _ = shutdown.changed() => return,
        }
    }
}

async fn lead_once(app: &Arc<impl Host>, repl: &Arc<Replication>) {
    let mut synced = repl.synced.subscribe();
    while !*synced.borrow_and_update() {
        if synced.changed().await.is_err() {
            return;
        }
    }
    secrets::publish(app, repl).await;
    let auto = app.refresher().source.is_some() && app.config().nsk.auto_refresh;
    let mut changes = app.registry().subscribe();
    let mut trigger = "takeover";
    loop {
        let next = if auto {
            let next = crate::refresh::scheduled_run(app, trigger).await;
            secrets::publish(app, repl).await;
            Some(next)
        } else {
            None
        };
        // Until the next refresh: publish whenever the store changed (a
        // refresh asked for by a client), and retry failed writes.
        loop {
            let wait = next
                .map(|n| n.duration_since(SystemTime::now()).unwrap_or_default())
                .unwrap_or(Duration::from_secs(3600));
            if wait.is_zero() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait.min(repl.lease_duration)) => {
                    secrets::publish(app, repl).await;
                }
                r = changes.changed() => {
                    if r.is_err() { return }
                    secrets::publish(app, repl).await;
                }
            }
        }
        trigger = "schedule";
    }
}

impl Replication {
    /// `"leader"` or `"follower"`.
    pub fn role_word(&self) -> &'static str {
        if self.role().leader {
            "leader"
        } else {
            "follower"
        }
    }

    /// What `/readyz` shows: ready once the Secrets were listed.
    pub fn readiness(&self) -> (bool, serde_json::Value) {
        let role = self.role();
        let sync = self.sync_state();
        let synced = self.synced();
        let last_sync = sync
            .last_sync
            .map(|t| humantime::format_rfc3339_seconds(t).to_string());
        let detail = if synced {
            format!(
                "{} of {}/{}; {} kubeconfig Secrets used, {} refused",
                self.role_word(),
                self.namespace,
                self.lease,
                sync.accepted,
                sync.refused
            )
        } else {
            format!(
                "kubeconfig Secrets in {} not listed yet{}",
                self.namespace,
                sync.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        };
        let body = serde_json::json!({
            "ready": synced,
            "detail": detail,
            "role": self.role_word(),
            "identity": self.identity,
            "lease": self.lease,
            "namespace": self.namespace,
            "holder": role.holder,
            "last_secrets_sync": last_sync,
            "secrets_accepted": sync.accepted,
            "secrets_refused": sync.refused,
            "error": sync.error,
        });
        (synced, body)
    }
}
