//! Where kubeconfigs come from: the `nsk` CLI or Rancher's v3 API. Both
//! list the environment's clusters and hand over one kubeconfig per
//! cluster; the daemon validates and stores every file itself.

pub mod contract;
pub mod nsk;
pub mod rancher;
pub mod runner;
pub mod token;

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
pub use contract::AuthInfo;

use crate::error::ErrorKind;

use crate::config::{Config, SourceKind};

/// A cluster as Rancher lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCluster {
    /// Rancher id (`c-m-xxxxxxxx`).
    pub id: String,
    /// Name (the kubeconfig file is `<name>.yaml`).
    pub name: String,
    /// Rancher state (`active`, `error`, `provisioning`...).
    pub state: String,
    /// Kubernetes version as Rancher reports it.
    pub version: String,
}

/// A failure of the source, already redacted, with what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// What kind of failure (transient kinds are retried).
    pub kind: ErrorKind,
    /// What failed, where, and what to do.
    pub message: String,
}

impl SourceError {
    /// An error of `kind`; the text is redacted here.
    pub fn new(kind: ErrorKind, message: impl AsRef<str>) -> Self {
        let mut message = crate::redact::redact(message.as_ref());
        let auth = matches!(kind, ErrorKind::Unauthorized | ErrorKind::Forbidden);
        if auth && !message.contains("renew") {
            message.push_str(" — the Rancher token is expired or invalid: renew it (RANCHER_TOKEN, [nsk] rancher_token or rancher_token_file), then check with `nsk auth verify`");
        }
        Self { kind, message }
    }
}

/// Retry policy for retryable failures: 3 retries, 1 s → 30 s, jittered.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Retries after the first attempt.
    pub retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            retries: 3,
        }
    }
}

impl RetryPolicy {
    /// Runs `op`, retrying retryable failures with exponential backoff.
    pub async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SourceError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.retries)
            .with_jitter();
        op.retry(backoff)
            .when(|e: &SourceError| nskd_proto::error_kind::is_transient(e.kind))
            .notify(|e: &SourceError, after: Duration| {
                tracing::warn!(operation = what, error = %e, retry_in = ?after, "retrying");
            })
            .await
    }
}

/// The configured source of kubeconfigs.
#[derive(Debug)]
pub enum Source {
    /// The `nsk` CLI.
    Nsk(nsk::NskSource),
    /// Rancher's v3 API.
    Rancher(Box<rancher::RancherSource>),
}

impl Source {
    /// The source of `config`, or `None` for the directory source.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        match config.nsk.source {
            SourceKind::Directory => Ok(None),
            SourceKind::Nsk => Ok(Some(Source::Nsk(nsk::NskSource::new(config)))),
            SourceKind::Rancher => {
                rancher::RancherSource::new(config).map(|r| Some(Source::Rancher(Box::new(r))))
            }
        }
    }

    /// Every cluster of the environment.
    pub async fn list(&self) -> Result<Vec<RemoteCluster>, SourceError> {
        match self {
            Source::Nsk(s) => s.list().await,
            Source::Rancher(s) => s.list().await,
        }
    }

    /// The kubeconfig (YAML) of one cluster.
    pub async fn kubeconfig(&self, cluster: &RemoteCluster) -> Result<String, SourceError> {
        match self {
            Source::Nsk(s) => s.kubeconfig(&cluster.name).await,
            Source::Rancher(s) => s.kubeconfig(cluster).await,
        }
    }

    /// Checks the token.
    pub async fn verify(&self) -> Result<AuthInfo, SourceError> {
        match self {
            Source::Nsk(s) => s.verify().await,
            Source::Rancher(s) => s.verify().await,
        }
    }

    /// How far its kubeconfigs are trusted: data only, every server on the
    /// Rancher URL (when nsk is given one; nsk on its own profile gets the
    /// field rules only).
    pub fn trust(&self) -> crate::kubeconfig::trust::Trust {
        use crate::kubeconfig::trust::{Pin, Trust};
        let url = match self {
            Source::Nsk(s) => s.rancher_url(),
            Source::Rancher(s) => Some(s.base()),
        };
        Trust::Fetched {
            pin: url.and_then(Pin::parse),
        }
    }

    /// The kubeconfig server a cluster must point at, when the source
    /// knows it (Rancher: `<url>/k8s/clusters/<id>`).
    pub fn expected_server_suffix(&self, cluster: &RemoteCluster) -> Option<String> {
        match self {
            Source::Nsk(_) => None,
            Source::Rancher(_) => Some(format!("/k8s/clusters/{}", cluster.id)),
        }
    }
}
