//! Errors of cluster operations. Each message names what failed, on which
//! cluster, and what to try; none carries a credential.

use std::time::Duration;

/// A failed operation on a cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpError {
    /// No such cluster.
    #[error("unknown cluster {}; known clusters: {}", crate::request::names::shown(.name), known_list(.known))]
    UnknownCluster {
        /// Requested name.
        name: String,
        /// Known names.
        known: Vec<String>,
    },
    /// No cluster named and no default.
    #[error("no cluster selected: pass `cluster`, call cluster_use, or set default_cluster in the config; known clusters: {}", known_list(.known))]
    NoCluster {
        /// Known names.
        known: Vec<String>,
    },
    /// Its kubeconfig cannot be used.
    #[error("cluster {cluster}: {reason}")]
    Unusable {
        /// Cluster.
        cluster: String,
        /// Why (names the file).
        reason: String,
    },
    /// The call did not finish in time.
    #[error(
        "cluster {cluster}: {verb} {resource} timed out after {after:?} (server {server}); the cluster may be down or overloaded: check `nskctl status {cluster}`"
    )]
    Timeout {
        /// Cluster.
        cluster: String,
        /// HTTP-ish verb: list, get, ...
        verb: String,
        /// Resource.
        resource: String,
        /// Deadline.
        after: Duration,
        /// API server URL.
        server: String,
    },
    /// The API server could not be reached.
    #[error(
        "cluster {cluster}: cannot reach API server {server}: {reason}; check the cluster is up and its kubeconfig ({path}) is current (`nskctl refresh`)"
    )]
    Unreachable {
        /// Cluster.
        cluster: String,
        /// API server URL.
        server: String,
        /// Transport error, one line.
        reason: String,
        /// Kubeconfig path.
        path: String,
    },
    /// The API server answered with an error status.
    #[error("{0}")]
    Api(Box<ApiFailure>),
    /// A kind that discovery does not know.
    #[error("cluster {cluster}: no resource kind {kind:?}{} is served; check the spelling, or list kinds with resources_list-style discovery (`kubectl api-resources`)", api_version_suffix(.api_version))]
    UnknownKind {
        /// Cluster.
        cluster: String,
        /// Requested kind.
        kind: String,
        /// Requested apiVersion ("" = any).
        api_version: String,
    },
    /// Bad arguments from the caller.
    #[error("{0}")]
    InvalidArgument(String),
    /// An argument that breaks its rule (checked before anything is sent).
    #[error(transparent)]
    Invalid(#[from] crate::request::InvalidInput),
    /// The daemon's policy (read_only, disable_destructive,
    /// denied_resources) forbids the request.
    #[error("{0}")]
    Refused(String),
    /// An answer larger than the daemon reads.
    #[error(
        "cluster {cluster}: {what}: the answer is larger than {limit} bytes, more than nskd reads; {hint}"
    )]
    TooLarge {
        /// Cluster.
        cluster: String,
        /// What was being read.
        what: String,
        /// The cap, bytes.
        limit: usize,
        /// How to ask for less.
        hint: String,
    },
    /// The API server answered something other than what was asked (a
    /// different kind, a non-text log): refused, never relabelled.
    #[error(
        "cluster {cluster}: {what}: the API server answered {got} where {expected} was asked; the answer was discarded"
    )]
    UnexpectedAnswer {
        /// Cluster.
        cluster: String,
        /// What was being done.
        what: String,
        /// What was expected.
        expected: String,
        /// What came.
        got: String,
    },
    /// Anything else.
    #[error("cluster {cluster}: {message}")]
    Other {
        /// Cluster.
        cluster: String,
        /// What went wrong.
        message: String,
    },
}

fn known_list(known: &[String]) -> String {
    /// Names listed before "and N more".
    const SHOWN: usize = 20;
    if known.is_empty() {
        "none (no kubeconfig found: check kubeconfig_dir / kubeconfig, or run `nskctl refresh`)"
            .into()
    } else if known.len() > SHOWN {
        format!(
            "{} and {} more (clusters_list shows them all)",
            known[..SHOWN].join(", "),
            known.len() - SHOWN
        )
    } else {
        known.join(", ")
    }
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}

fn api_version_suffix(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!(" in {v}")
    }
}

/// An error status from an API server, with what was being done.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cluster {cluster}: {verb} {resource} failed: {message} (HTTP {code} {reason}){}", hint_suffix(.hint))]
pub struct ApiFailure {
    /// Cluster.
    pub cluster: String,
    /// Verb.
    pub verb: String,
    /// Resource.
    pub resource: String,
    /// HTTP status code.
    pub code: u16,
    /// Kubernetes reason (Forbidden, NotFound...).
    pub reason: String,
    /// The server's message (names the user for RBAC denials).
    pub message: String,
    /// What to try.
    pub hint: String,
}

impl OpError {
    /// Whether this failure says the cluster itself is unhealthy (as opposed
    /// to a bad request, RBAC denial or missing object).
    pub fn is_cluster_failure(&self) -> bool {
        match self {
            OpError::Timeout { .. } | OpError::Unreachable { .. } => true,
            OpError::Api(a) => a.code >= 500 || a.code == 401,
            _ => false,
        }
    }
}

/// Context of a call, used to turn a kube error into an [`OpError`].
#[derive(Debug, Clone)]
pub struct CallContext<'a> {
    /// Cluster name.
    pub cluster: &'a str,
    /// API server URL.
    pub server: &'a str,
    /// Kubeconfig path.
    pub path: &'a str,
    /// Verb.
    pub verb: &'a str,
    /// Resource, e.g. `pods in namespace shop`.
    pub resource: &'a str,
}

impl CallContext<'_> {
    /// Maps a kube client error.
    pub fn error(&self, err: kube::Error) -> OpError {
        match err {
            kube::Error::Api(status) => {
                let hint = match status.code {
                    401 => "the kubeconfig's credentials were rejected (expired token?): run `nskctl refresh --force` or renew the token".to_string(),
                    403 if status.message.contains("being terminated") => "the namespace is being deleted; use another namespace".to_string(),
                    403 => "the kubeconfig's user lacks RBAC permission for this (or an admission rule refused it; see the message); use a narrower namespace or ask for a role binding".to_string(),
                    404 => "check the name and namespace".to_string(),
                    429 => "the API server is throttling; retry in a moment".to_string(),
                    c if c >= 500 => "the API server failed; retry, and check `nskctl status`".to_string(),
                    _ => String::new(),
                };
                OpError::Api(Box::new(ApiFailure {
                    cluster: self.cluster.to_string(),
                    verb: self.verb.to_string(),
                    resource: self.resource.to_string(),
                    code: status.code,
                    reason: status.reason.clone(),
                    message: status.message.clone(),
                    hint,
                }))
            }
            other => OpError::Unreachable {
                cluster: self.cluster.to_string(),
                server: self.server.to_string(),
                reason: crate::kubeconfig::one_line(&error_chain(&other)),
                path: self.path.to_string(),
            },
        }
    }

    /// The deadline passed.
    pub fn timeout(&self, after: Duration) -> OpError {
        OpError::Timeout {
            cluster: self.cluster.to_string(),
            verb: self.verb.to_string(),
            resource: self.resource.to_string(),
            after,
            server: self.server.to_string(),
        }
    }
}

/// An error and all its sources, joined with ": " (deduplicated).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl From<OpError> for tonic::Status {
    fn from(e: OpError) -> Self {
        let message = crate::redact::redact(&e.to_string());
        match &e {
            OpError::UnknownCluster { .. } => tonic::Status::not_found(message),
            OpError::NoCluster { .. } | OpError::InvalidArgument(_) | OpError::Invalid(_) => {
                tonic::Status::invalid_argument(message)
            }
            OpError::Refused(_) => tonic::Status::permission_denied(message),
            OpError::TooLarge { .. } => tonic::Status::resource_exhausted(message),
            OpError::UnexpectedAnswer { .. } => tonic::Status::internal(message),
            OpError::UnknownKind { .. } => tonic::Status::not_found(message),
            OpError::Unusable { .. } => tonic::Status::failed_precondition(message),
            OpError::Timeout { .. } => tonic::Status::deadline_exceeded(message),
            OpError::Unreachable { .. } => {
                // Marked so clients do not mistake it for the daemon being gone.
                let mut status = tonic::Status::unavailable(message);
                status.metadata_mut().insert(
                    nskd_proto::ORIGIN_HEADER,
                    tonic::metadata::MetadataValue::from_static("nskd"),
                );
                status
            }
            OpError::Api(a) => match a.code {
                401 => tonic::Status::unauthenticated(message),
                403 => tonic::Status::permission_denied(message),
                404 => tonic::Status::not_found(message),
                409 => tonic::Status::already_exists(message),
                400 | 422 => tonic::Status::invalid_argument(message),
                _ => tonic::Status::internal(message),
            },
            OpError::Other { .. } => tonic::Status::internal(message),
        }
    }
}
