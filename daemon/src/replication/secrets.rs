//! Kubeconfigs as Secrets in nskd's namespace: one per cluster, type
//! [`SECRET_TYPE`], written by the leader only (with resourceVersion
//! preconditions), watched by every replica. What a replica reads passes
//! the same checks as a fetched file (name, size, YAML, contexts, trust)
//! before it reaches the store; a refused Secret is logged with its reason
//! and counted, never used. Secret data never reaches a log.

use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

use futures::StreamExt;
use k8s_openapi::{
    ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    api::{Api, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::Replication;
use crate::{kubeconfig::trust::Trust, refresh::Host, store};

/// The Secrets' type.
pub const SECRET_TYPE: &str = "nskd.io/kubeconfig";
/// The data key holding the kubeconfig.
pub const DATA_KEY: &str = "kubeconfig";
/// Annotation naming the cluster.
pub const CLUSTER_ANNOTATION: &str = "nskd.io/cluster";
/// Label naming the environment.
pub const ENVIRONMENT_LABEL: &str = "nskd.io/environment";
/// Label of a cluster that left the source (kept for inspection, not used).
pub const REMOVED_LABEL: &str = "nskd.io/removed";
/// `app.kubernetes.io/managed-by` value.
pub const MANAGED_BY: &str = "nskd";
/// The largest kubeconfig accepted from a Secret.
pub const MAX_KUBECONFIG_BYTES: usize = 256 * 1024;

/// Whether `s` may be a label value.
pub fn label_value_ok(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && edge(s.chars().next())
        && edge(s.chars().last())
}

/// The Secret name of `cluster` in `environment`: readable, and unique by
/// a hash of both (cluster names allow what Secret names do not).
pub fn secret_name(environment: &str, cluster: &str) -> String {
    let readable: String = cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let readable = readable.trim_matches('-');
    let hash = Sha256::digest(format!("{environment}/{cluster}").as_bytes());
    let hash: String = hash[..5].iter().map(|b| format!("{b:02x}")).collect();
    if readable.is_empty() {
        format!("nskd-kubeconfig-{hash}")
    } else {
        format!("nskd-kubeconfig-{readable}-{hash}")
    }
}

/// The label selector of this environment's Secrets.
pub fn selector(environment: &str) -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY},{ENVIRONMENT_LABEL}={environment}")
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A Secret as last seen by this replica.
#[derive(Debug, Clone)]
pub struct SeenSecret {
    /// Its resourceVersion (the precondition of the next write).
    pub version: String,
    /// The cluster, when it was accepted.
    pub cluster: Option<String>,
    /// Hash of the accepted kubeconfig.
    pub digest: [u8; 32],
    /// Marked removed.
    pub removed: bool,
}

/// Every Secret of this environment as last seen, by Secret name.
pub type Seen = BTreeMap<String, SeenSecret>;

/// A Secret that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The cluster.
    pub cluster: String,
    /// The kubeconfig text.
    pub text: String,
    /// The cluster left the source.
    pub removed: bool,
}

/// Why a Secret is not used (`reason` is the metric label).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// `name`, `size`, `content` or `untrusted`.
    pub reason: &'static str,
    /// What is wrong with it and what to do.
    pub message: String,
}

fn refuse(reason: &'static str, message: String) -> Refusal {
    Refusal { reason, message }
}

/// Checks a Secret before its kubeconfig may be used: the cluster it names
/// is a valid, selected name, the Secret carries the name nskd gives that
/// cluster, the kubeconfig is small, UTF-8, and passes
/// [`store::validate_kubeconfig`] with `trust`.
pub fn accept(
    secret: &Secret,
    environment: &str,
    trust: &Trust,
    selected: impl Fn(&str) -> bool,
) -> Result<Accepted, Refusal> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return Err(refuse(
            "name",
            format!("Secret {name} is not of type {SECRET_TYPE}"),
        ));
    }
    let cluster = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLUSTER_ANNOTATION))
        .ok_or_else(|| {
            refuse(
                "name",
                format!("Secret {name} has no {CLUSTER_ANNOTATION} annotation"),
            )
        })?;
    store::validate_name(cluster).map_err(|e| {
        refuse(
            "name",
            format!(
                "Secret {name}: {}",
                crate::redact::redact(&crate::kubeconfig::one_line(&e.message))
            ),
        )
    })?;
    if !selected(cluster) {
        return Err(refuse(
            "name",
            format!(
                "Secret {name}: cluster {cluster:?} is not selected by this daemon's cluster_pattern, exclude_clusters or allowed_clusters"
            ),
        ));
    }
    let expected = secret_name(environment, cluster);
    if name != expected {
        return Err(refuse(
            "name",
            format!(
                "Secret {name} names cluster {cluster:?}, whose Secret nskd calls {expected}; it was not written by nskd: delete it"
            ),
        ));
    }
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(DATA_KEY))
        .map(|b| b.0.as_slice())
        .ok_or_else(|| refuse("content", format!("Secret {name} has no data.{DATA_KEY}")))?;
    if bytes.len() > MAX_KUBECONFIG_BYTES {
        return Err(refuse(
            "size",
            format!(
                "Secret {name}: its kubeconfig has {} bytes, more than the {MAX_KUBECONFIG_BYTES} nskd reads",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        refuse(
            "content",
            format!("Secret {name}: its kubeconfig is not UTF-8"),
        )
    })?;
    store::validate_kubeconfig(cluster, text, None, trust).map_err(|e| {
        let reason = match e {
            store::Rejected::Untrusted(_) => "untrusted",
            store::Rejected::Invalid(_) => "content",
        };
        refuse(
            reason,
            format!("Secret {name}: {}", crate::redact::redact(&e.to_string())),
        )
    })?;
    let removed = secret
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.get(REMOVED_LABEL).is_some_and(|v| v == "true"));
    Ok(Accepted {
        cluster: cluster.clone(),
        text: text.to_string(),
        removed,
    })
}

/// The Secret holding `text` for `cluster` (`version`: the precondition).
pub fn build(
    repl: &Replication,
    cluster: &str,
    text: &str,
    removed: bool,
    version: Option<String>,
) -> Secret {
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
        (ENVIRONMENT_LABEL.to_string(), repl.environment.clone()),
    ]);
    if removed {
        labels.insert(REMOVED_LABEL.to_string(), "true".to_string());
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&repl.environment, cluster)),
            namespace: Some(repl.namespace.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                CLUSTER_ANNOTATION.to_string(),
                cluster.to_string(),
            )])),
            resource_version: version,
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.to_string()),
        data: Some(BTreeMap::from([(
            DATA_KEY.to_string(),
            ByteString(text.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

fn trust_of(app: &impl Host) -> Trust {
    app.refresher()
        .source
        .as_ref()
        .map(|s| s.trust())
        .unwrap_or(Trust::Fetched { pin: None })
}

/// Writes what the store holds to the Secrets (leader only, each write
/// checked against the resourceVersion last seen): a new or changed
/// kubeconfig is created or replaced; a cluster in `.removed/` is marked
/// removed. A Secret is never deleted.
pub async fn publish(app: &Arc<impl Host>, repl: &Replication) {
    let Some(store) = app.refresher().store.as_ref() else {
        return;
    };
    let (files, removed) = crate::blocking::run(|| {
        let files: Vec<(String, String)> = store
            .names()
            .into_iter()
            .filter_map(|n| {
                let text = std::fs::read_to_string(store.path(&n)).ok()?;
                Some((n, text))
            })
            .collect();
        let removed: Vec<(String, String)> = store
            .removed()
            .into_iter()
            .filter_map(|(n, _)| {
                let path = store
                    .dir()
                    .join(store::REMOVED_DIR)
                    .join(format!("{n}.yaml"));
                Some((n, std::fs::read_to_string(path).ok()?))
            })
            .collect();
        (files, removed)
    });
    let api: Api<Secret> = Api::namespaced(repl.client.clone(), &repl.namespace);
    let writes = files
        .into_iter()
        .map(|(c, t)| (c, t, false))
        .chain(removed.into_iter().map(|(c, t)| (c, t, true)));
    let mut failed = None;
    for (cluster, text, removed) in writes {
        let name = secret_name(&repl.environment, &cluster);
        let seen = repl.seen.lock().expect("seen lock").get(&name).cloned();
        let up_to_date = seen.as_ref().is_some_and(|s| {
            s.cluster.as_deref() == Some(cluster.as_str())
                && (removed || s.digest == digest(&text))
                && s.removed == removed
        });
        // A removed cluster nobody published needs no Secret.
        if up_to_date || (removed && seen.is_none()) {
            continue;
        }
        if !repl.is_leader() {
            return;
        }
        let version = seen.map(|s| s.version);
        let secret = build(repl, &cluster, &text, removed, version.clone());
        let pp = PostParams::default();
        let result = match version {
            Some(_) => api.replace(&name, &pp, &secret).await,
            None => api.create(&pp, &secret).await,
        };
        match result {
            Ok(written) => {
                tracing::info!(cluster = %cluster, secret = %name, removed, "kubeconfig published");
                crate::metrics::replication_published();
                repl.seen.lock().expect("seen lock").insert(
                    name,
                    SeenSecret {
                        version: written.metadata.resource_version.unwrap_or_default(),
                        cluster: Some(cluster),
                        digest: digest(&text),
                        removed,
                    },
                );
            }
            Err(e) => {
                let why = write_error(repl, &name, &e);
                tracing::warn!(cluster = %cluster, error = %why, "kubeconfig not published; retried after the next change or within lease_duration");
                failed = Some(why);
            }
        }
    }
    repl.sync.lock().expect("sync lock").error = failed;
}

fn write_error(repl: &Replication, name: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 409 => format!(
            "Secret {}/{name} changed since it was read (conflict); the next publish uses the new version",
            repl.namespace
        ),
        kube::Error::Api(s) if s.code == 403 => format!(
            "Secret {}/{name}: forbidden ({}); grant nskd's service account get, list, watch, create and update on secrets in {}",
            repl.namespace, s.message, repl.namespace
        ),
        other => format!("Secret {}/{name}: {other}", repl.namespace),
    }
}

/// Watches this environment's Secrets until `shutdown`: each one is
/// checked ([`accept`]); a follower writes what passes to its store and
/// re-reads it, retires what is marked removed or deleted. The leader's
/// store comes from the source: it only fills gaps ([`store_accepted`]).
pub async fn watch(
    app: Arc<impl Host>,
    repl: Arc<Replication>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Secret> = Api::namespaced(repl.client.clone(), &repl.namespace);
    let config = watcher::Config::default()
        .labels(&selector(&repl.environment))
        .fields(&format!("type={SECRET_TYPE}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut initial: Vec<Secret> = Vec::new();
    loop {
        let event = tokio::select! {
            e = events.next() => match e { Some(e) => e, None => return },
            _ = shutdown.changed() => return,
        };
        match event {
            Ok(watcher::Event::Init) => initial.clear(),
            Ok(watcher::Event::InitApply(s)) => initial.push(s),
            Ok(watcher::Event::InitDone) => {
                let all = std::mem::take(&mut initial);
                let names: std::collections::BTreeSet<String> =
                    all.iter().filter_map(|s| s.metadata.name.clone()).collect();
                repl.seen
                    .lock()
                    .expect("seen lock")
                    .retain(|n, _| names.contains(n));
                apply(&app, &repl, all);
                repl.synced.send_replace(true);
            }
            Ok(watcher::Event::Apply(s)) => apply(&app, &repl, vec![s]),
            Ok(watcher::Event::Delete(s)) => deleted(&app, &repl, &s),
            Err(e) => {
                let why = match &e {
                    watcher::Error::InitialListFailed(kube::Error::Api(s))
                    | watcher::Error::WatchStartFailed(kube::Error::Api(s))
                        if s.code == 403 =>
                    {
                        format!(
                            "Secrets in {}: forbidden ({}); grant nskd's service account get, list and watch on secrets in {}",
                            repl.namespace, s.message, repl.namespace
                        )
                    }
                    other => format!("watching Secrets in {}: {other}", repl.namespace),
                };
                tracing::warn!(error = %why, "Secrets watch failed; retrying");
                repl.sync.lock().expect("sync lock").error = Some(why);
            }
        }
    }
}

/// Checks `secrets`, remembers them, and (follower) stores what passed.
fn apply(app: &Arc<impl Host>, repl: &Replication, secrets: Vec<Secret>) {
    let trust = trust_of(&**app);
    let config = app.config();
    let leader = repl.is_leader();
    let mut changed = false;
    for secret in secrets {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        let already = repl
            .seen
            .lock()
            .expect("seen lock")
            .get(&name)
            .is_some_and(|s| s.version == version);
        if already {
            continue;
        }
        match accept(&secret, &repl.environment, &trust, |c| {
            config.cluster_selected(c)
        }) {
            Ok(a) => {
                repl.seen.lock().expect("seen lock").insert(
                    name.clone(),
                    SeenSecret {
                        version,
                        cluster: Some(a.cluster.clone()),
                        digest: digest(&a.text),
                        removed: a.removed,
                    },
                );
                changed |= store_accepted(app, &name, &a, leader);
            }
            Err(refusal) => {
                tracing::warn!(secret = %name, namespace = %repl.namespace, reason = refusal.reason, error = %refusal, "refused a kubeconfig Secret; it is not used");
                crate::metrics::replication_refused(refusal.reason);
                repl.seen.lock().expect("seen lock").insert(
                    name,
                    SeenSecret {
                        version,
                        cluster: None,
                        digest: [0; 32],
                        removed: false,
                    },
                );
            }
        }
    }
    note_sync(repl);
    if changed {
        crate::blocking::run(|| app.rescan(true));
    }
}

/// Writes (or retires) an accepted kubeconfig in the store; true when the
/// store changed. The leader's store comes from the source: it only fills
/// a gap (a cluster it has neither stored nor retired), so that a new
/// leader serves what the Secrets hold while its first refresh runs.
fn store_accepted(app: &impl Host, secret: &str, a: &Accepted, leader: bool) -> bool {
    let Some(store) = app.refresher().store.as_ref() else {
        return false;
    };
    crate::blocking::run(|| {
        if leader {
            let retired = store
                .dir()
                .join(store::REMOVED_DIR)
                .join(format!("{}.yaml", a.cluster));
            if a.removed || store.path(&a.cluster).exists() || retired.exists() {
                return false;
            }
        }
        if a.removed {
            return store.path(&a.cluster).exists() && retire(store, &a.cluster);
        }
        match store.write(&a.cluster, &a.text) {
            Ok(store::WriteOutcome::Unchanged) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(cluster = %a.cluster, %secret, error = %e, "cannot store the kubeconfig of a Secret");
                false
            }
        }
    })
}

fn retire(store: &store::Store, cluster: &str) -> bool {
    match store.retire(cluster) {
        Ok(to) => {
            tracing::info!(cluster = %cluster, moved_to = %to.display(), "cluster left the source; kubeconfig retired");
            true
        }
        Err(e) => {
            tracing::warn!(cluster = %cluster, error = %e, "cannot retire a kubeconfig");
            false
        }
    }
}

/// A deleted Secret: a follower retires the cluster it had accepted.
fn deleted(app: &Arc<impl Host>, repl: &Replication, secret: &Secret) {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let was = repl.seen.lock().expect("seen lock").remove(&name);
    note_sync(repl);
    let Some(cluster) = was.and_then(|s| s.cluster) else {
        return;
    };
    tracing::info!(secret = %name, cluster = %cluster, "kubeconfig Secret deleted");
    if repl.is_leader() {
        return;
    }
    if let Some(store) = app.refresher().store.as_ref()
        && crate::blocking::run(|| store.path(&cluster).exists() && retire(store, &cluster))
    {
        crate::blocking::run(|| app.rescan(true));
    }
}

fn note_sync(repl: &Replication) {
    let seen = repl.seen.lock().expect("seen lock");
    let accepted = seen.values().filter(|s| s.cluster.is_some()).count();
    let refused = seen.len() - accepted;
    drop(seen);
    let mut sync = repl.sync.lock().expect("sync lock");
    sync.last_sync = Some(SystemTime::now());
    sync.accepted = accepted;
    sync.refused = refused;
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://r.example.com/k8s/clusters/c-1\ncontexts:\n- name: a\n  context:\n    cluster: a\n    user: a\nusers:\n- name: a\n  user:\n    token: t\ncurrent-context: a\n";

    fn secret(name: &str, cluster: &str, text: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some(BTreeMap::from([(
                    CLUSTER_ANNOTATION.to_string(),
                    cluster.to_string(),
                )])),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(BTreeMap::from([(
                DATA_KEY.to_string(),
                ByteString(text.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    fn check(s: &Secret) -> Result<Accepted, Refusal> {
        accept(s, "prod", &Trust::Fetched { pin: None }, |c| {
            c != "excluded"
        })
    }

    #[test]
    fn secret_names_are_valid_kubernetes_names_unique_per_environment_and_cluster() {
        let a = secret_name("prod", "Prod_Cluster.EU");
        assert!(a.starts_with("nskd-kubeconfig-prod-cluster-eu-"), "{a}");
        assert!(a.len() <= 253);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_ne!(a, secret_name("staging", "Prod_Cluster.EU"));
        assert_ne!(a, secret_name("prod", "prod-cluster-eu"));
        assert!(secret_name("prod", "___").starts_with("nskd-kubeconfig-"));
        assert!(!secret_name("prod", "___").contains("--"));
    }

    #[test]
    fn a_secret_nskd_wrote_is_accepted() {
        let s = secret(&secret_name("prod", "a"), "a", GOOD);
        assert_eq!(
            check(&s),
            Ok(Accepted {
                cluster: "a".into(),
                text: GOOD.into(),
                removed: false
            })
        );
    }

    #[test]
    fn planted_secrets_are_refused_with_a_reason() {
        let wrong_name = secret("innocent-looking", "a", GOOD);
        assert_eq!(check(&wrong_name).unwrap_err().reason, "name");
        let traversal = secret(&secret_name("prod", "../etc"), "../etc", GOOD);
        assert_eq!(check(&traversal).unwrap_err().reason, "name");
        let excluded = secret(&secret_name("prod", "excluded"), "excluded", GOOD);
        assert_eq!(check(&excluded).unwrap_err().reason, "name");
        let exec = GOOD.replace(
            "    token: t\n",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n",
        );
        let exec = secret(&secret_name("prod", "a"), "a", &exec);
        let refusal = check(&exec).unwrap_err();
        assert_eq!(refusal.reason, "untrusted", "{refusal}");
        let huge = format!("{GOOD}# {}\n", "x".repeat(MAX_KUBECONFIG_BYTES));
        let huge = secret(&secret_name("prod", "a"), "a", &huge);
        assert_eq!(check(&huge).unwrap_err().reason, "size");
        let torn = secret(&secret_name("prod", "a"), "a", &GOOD[..GOOD.len() / 2]);
        assert_eq!(check(&torn).unwrap_err().reason, "content");
        let mut untyped = secret(&secret_name("prod", "a"), "a", GOOD);
        untyped.type_ = Some("Opaque".into());
        assert!(check(&untyped).is_err());
    }

    #[test]
    fn a_refusal_never_carries_the_secret_data() {
        let text = "apiVersion: v1\nclusters: {token: SECRETVALUE123456789}\n";
        let s = secret(&secret_name("prod", "a"), "a", text);
        let refusal = check(&s).unwrap_err();
        assert!(!refusal.message.contains("SECRETVALUE"), "{refusal}");
    }
}
