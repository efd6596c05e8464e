//! The set of known clusters: what each one's kubeconfig says, without
//! credentials. Replaced as a whole by every scan; readers get snapshots.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::SystemTime,
};

use tokio::sync::watch;

use crate::kubeconfig::KubeconfigFile;

/// Where a cluster's kubeconfig came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySource {
    /// A file in kubeconfig_dir.
    Directory,
    /// A context of the single kubeconfig file.
    Kubeconfig,
    /// Written by the daemon from nsk.
    Nsk,
    /// Written by the daemon from the Rancher API.
    Rancher,
}

/// One cluster as the registry knows it.
#[derive(Debug, Clone)]
pub struct ClusterEntry {
    /// Cluster name.
    pub name: String,
    /// Where it came from.
    pub source: EntrySource,
    /// Kubeconfig file.
    pub path: PathBuf,
    /// Context within that file.
    pub context: String,
    /// API server URL ("" when the kubeconfig is unusable).
    pub server: String,
    /// File modification time.
    pub modified: SystemTime,
    /// Identity of the content (file hash and context): clients are rebuilt
    /// when it changes.
    pub hash: u64,
    /// The parsed file, when usable.
    pub file: Option<Arc<KubeconfigFile>>,
    /// Why it is unusable (names the file).
    pub error: Option<String>,
    /// Kind of credentials (never the credentials).
    pub auth: &'static str,
    /// Expiry of a JWT token, if known.
    pub token_expiry: Option<SystemTime>,
    /// Expiry of the client certificate (else the cluster CA), if known.
    pub cert_expiry: Option<SystemTime>,
}

/// A consistent view of all clusters.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases with every change.
    pub generation: u64,
    /// By name, sorted.
    pub clusters: BTreeMap<String, Arc<ClusterEntry>>,
    /// Problems found while scanning (each names a file).
    pub problems: Vec<String>,
    /// When the last scan finished (None before the first).
    pub scanned_at: Option<SystemTime>,
}

/// What a replacement changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New names.
    pub added: Vec<String>,
    /// Names whose kubeconfig content changed.
    pub changed: Vec<String>,
    /// Names gone.
    pub removed: Vec<String>,
}

impl Changes {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// The registry: a snapshot behind a lock, plus a change signal.
#[derive(Debug)]
pub struct Registry {
    state: RwLock<Arc<Snapshot>>,
    generation: watch::Sender<u64>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry (no scan yet).
    pub fn new() -> Self {
        Self {
            state: RwLock::new(Arc::new(Snapshot::default())),
            generation: watch::channel(0).0,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.state.read().expect("registry lock poisoned").clone()
    }

    /// One cluster by name.
    pub fn get(&self, name: &str) -> Option<Arc<ClusterEntry>> {
        self.snapshot().clusters.get(name).cloned()
    }

    /// Notified with the new generation after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Replaces all clusters with the result of a scan.
    pub fn replace(&self, entries: Vec<ClusterEntry>, problems: Vec<String>) -> Changes {
        let mut state = self.state.write().expect("registry lock poisoned");
        let old = state.clone();
        let clusters: BTreeMap<String, Arc<ClusterEntry>> = entries
            .into_iter()
            .map(|e| (e.name.clone(), Arc::new(e)))
            .collect();
        let mut changes = Changes::default();
        for (name, entry) in &clusters {
            match old.clusters.get(name) {
                None => changes.added.push(name.clone()),
                Some(prev) if prev.hash != entry.hash || prev.error != entry.error => {
                    changes.changed.push(name.clone())
                }
                Some(_) => {}
            }
        }
        changes.removed = old
            .clusters
            .keys()
            .filter(|n| !clusters.contains_key(*n))
            .cloned()
            .collect();
        let generation =
            old.generation + u64::from(!changes.is_empty() || old.problems != problems);
        *state = Arc::new(Snapshot {
            generation,
            clusters,
            problems,
            scanned_at: Some(SystemTime::now()),
        });
        drop(state);
        if generation != old.generation {
            self.generation.send_replace(generation);
        }
        changes
    }

    /// Known names, sorted (for "did you mean" style errors).
    pub fn names(&self) -> Vec<String> {
        self.snapshot().clusters.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, hash: u64) -> ClusterEntry {
        ClusterEntry {
            name: name.into(),
            source: EntrySource::Directory,
            path: PathBuf::from(format!("/k/{name}.yaml")),
            context: name.into(),
            server: "https://127.0.0.1:1".into(),
            modified: SystemTime::UNIX_EPOCH,
            hash,
            file: None,
            error: None,
            auth: "token",
            token_expiry: None,
            cert_expiry: None,
        }
    }

    #[test]
    fn replace_reports_added_changed_removed_and_bumps_generation() {
        let r = Registry::new();
        let mut rx = r.subscribe();
        let c = r.replace(vec![entry("a", 1), entry("b", 1)], vec![]);
        assert_eq!(c.added, ["a", "b"]);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        let c = r.replace(vec![entry("a", 2), entry("c", 1)], vec![]);
        assert_eq!(
            (c.added, c.changed, c.removed),
            (vec!["c".into()], vec!["a".into()], vec!["b".into()])
        );
        assert_eq!(r.snapshot().generation, 2);
        let c = r.replace(vec![entry("a", 2), entry("c", 1)], vec![]);
        assert!(c.is_empty());
        assert_eq!(r.snapshot().generation, 2);
        assert_eq!(r.names(), ["a", "c"]);
    }
}
