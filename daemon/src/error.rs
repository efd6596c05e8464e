//! Errors of cluster operations. Each message names what failed, on which
//! cluster, and what to try; none carries a credential.

use std::time::Duration;

pub use nskd_proto::error_kind::ErrorKind;

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
        /// Refused, timeout, TLS, DNS or unavailable: from the typed error.
        kind: ErrorKind,
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
    /// A failure of the kubeconfig source or store, of a known kind.
    #[error("{message}")]
    Kinded {
        /// What kind of failure.
        kind: ErrorKind,
        /// What failed, where, and what to do (redacted).
        message: String,
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
    /// The kind of this failure (decides the gRPC code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpError::UnknownCluster { .. } | OpError::UnknownKind { .. } => ErrorKind::NotFound,
            OpError::NoCluster { .. }
            | OpError::InvalidArgument(_)
            | OpError::Invalid(_)
            | OpError::Unusable { .. } => ErrorKind::Invalid,
            OpError::Refused(_) => ErrorKind::Policy,
            OpError::TooLarge { .. } => ErrorKind::TooLarge,
            OpError::UnexpectedAnswer { .. } | OpError::Other { .. } => ErrorKind::Internal,
            OpError::Timeout { .. } => ErrorKind::Timeout,
            OpError::Unreachable { kind, .. } | OpError::Kinded { kind, .. } => *kind,
            OpError::Api(a) => http_status_kind(a.code),
        }
    }

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
                    403 if status.message.contains("cannot impersonate") => "nskd acts for each HTTP caller through impersonation, and this cluster does not let the kubeconfig's user impersonate: bind it to a ClusterRole with verbs [impersonate] on resources [users, groups] (apiGroups [\"\"]), or set [http_auth] impersonate = false to act as nskd itself".to_string(),
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
                kind: transport_kind(&other),
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

/// The kind of an HTTP error status (Kubernetes or Rancher).
pub fn http_status_kind(code: u16) -> ErrorKind {
    match code {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 | 410 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        413 => ErrorKind::TooLarge,
        429 => ErrorKind::Throttled,
        400 | 405 | 406 | 415 | 422 => ErrorKind::Invalid,
        408 | 504 => ErrorKind::Timeout,
        c if c >= 500 => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// The kind of a transport failure, from the typed errors of its source
/// chain (the innermost one that says something wins): an I/O error's
/// kind, a rustls error, an elapsed deadline, a kube API status. A connect
/// failure whose cause is an I/O error without an OS error code is the
/// resolver's (getaddrinfo reports no errno): DNS. Unknown: unavailable.
pub fn transport_kind(err: &(dyn std::error::Error + 'static)) -> ErrorKind {
    let mut kind = None;
    let mut connecting = false;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(k) = single_kind(e, connecting) {
            kind = Some(k);
        }
        if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            connecting |= h.is_connect();
        }
        // io::Error::source() skips the error it wraps: look at it too.
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    kind.unwrap_or(ErrorKind::Unavailable)
}

/// What one error of a chain says, if anything.
fn single_kind(e: &(dyn std::error::Error + 'static), connecting: bool) -> Option<ErrorKind> {
    if e.is::<rustls::Error>() {
        return Some(ErrorKind::Tls);
    }
    if e.is::<tokio::time::error::Elapsed>() {
        return Some(ErrorKind::Timeout);
    }
    if let Some(kube::Error::Api(status)) = e.downcast_ref::<kube::Error>() {
        return Some(http_status_kind(status.code));
    }
    if let Some(kube::Error::Auth(_)) = e.downcast_ref::<kube::Error>() {
        return Some(ErrorKind::Unauthorized);
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_timeout() {
            return Some(ErrorKind::Timeout);
        }
        if h.is_closed() || h.is_incomplete_message() || h.is_canceled() {
            return Some(ErrorKind::Unavailable);
        }
    }
    let io = e.downcast_ref::<std::io::Error>()?;
    io_kind(io).or_else(|| {
        (connecting && io.raw_os_error().is_none() && io.get_ref().is_some())
            .then_some(ErrorKind::Dns)
    })
}

/// The kind of an I/O error, when its kind says one.
pub fn io_kind(e: &std::io::Error) -> Option<ErrorKind> {
    use std::io::ErrorKind as Io;
    Some(match e.kind() {
        Io::ConnectionRefused => ErrorKind::Refused,
        Io::TimedOut => ErrorKind::Timeout,
        Io::ConnectionReset
        | Io::ConnectionAborted
        | Io::NotConnected
        | Io::BrokenPipe
        | Io::UnexpectedEof
        | Io::NetworkUnreachable
        | Io::HostUnreachable
        | Io::NetworkDown
        | Io::AddrNotAvailable => ErrorKind::Unavailable,
        Io::StorageFull
        | Io::QuotaExceeded
        | Io::ReadOnlyFilesystem
        | Io::PermissionDenied
        | Io::FileTooLarge => ErrorKind::Storage,
        Io::NotFound => ErrorKind::NotFound,
        Io::InvalidInput | Io::InvalidData => ErrorKind::Invalid,
        _ => return None,
    })
}

impl From<OpError> for tonic::Status {
    fn from(e: OpError) -> Self {
        let message = crate::redact::redact(&e.to_string());
        nskd_proto::error_kind::status(e.kind(), message)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::{io::AsyncWriteExt, net::TcpListener};

    use super::*;

    const CTX: CallContext<'static> = CallContext {
        cluster: "c1",
        server: "https://x",
        path: "/k/c1.yaml",
        verb: "get",
        resource: "/version",
    };

    /// The kind a real kube client's failure against `url` maps to.
    async fn kind_of_call(url: &str) -> (ErrorKind, tonic::Code) {
        let mut config = kube::Config::new(url.parse().unwrap());
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_millis(300));
        let client = kube::Client::try_from(config).unwrap();
        let err = client.apiserver_version().await.unwrap_err();
        let op = CTX.error(err);
        let kind = op.kind();
        (kind, tonic::Status::from(op).code())
    }

    #[tokio::test]
    async fn a_refused_connection_is_refused_and_unavailable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let (kind, code) = kind_of_call(&format!("http://127.0.0.1:{port}")).await;
        assert_eq!((kind, code), (ErrorKind::Refused, tonic::Code::Unavailable));
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let hold = tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let (kind, code) = kind_of_call(&url).await;
        hold.abort();
        assert_eq!(
            (kind, code),
            (ErrorKind::Timeout, tonic::Code::DeadlineExceeded)
        );
    }

    #[tokio::test]
    async fn a_server_that_does_not_speak_tls_is_a_tls_failure() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", l.local_addr().unwrap());
        let serve = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let (kind, _) = kind_of_call(&url).await;
        serve.abort();
        assert_eq!(kind, ErrorKind::Tls);
    }

    #[tokio::test]
    async fn an_unresolvable_name_is_a_dns_failure() {
        let (kind, _) = kind_of_call("https://nskd-test.invalid:6443").await;
        assert_eq!(kind, ErrorKind::Dns);
    }

    #[test]
    fn api_statuses_map_to_kinds_and_codes() {
        for (http, kind, code) in [
            (401, ErrorKind::Unauthorized, tonic::Code::Unauthenticated),
            (403, ErrorKind::Forbidden, tonic::Code::PermissionDenied),
            (404, ErrorKind::NotFound, tonic::Code::NotFound),
            (409, ErrorKind::Conflict, tonic::Code::AlreadyExists),
            (429, ErrorKind::Throttled, tonic::Code::Unavailable),
            (503, ErrorKind::Unavailable, tonic::Code::Unavailable),
        ] {
            let status = kube::core::Status::failure("no", "Reason").with_code(http);
            let op = CTX.error(kube::Error::Api(status.boxed()));
            assert_eq!(op.kind(), kind, "HTTP {http}");
            let grpc = tonic::Status::from(op);
            assert_eq!(grpc.code(), code, "HTTP {http}");
            assert_eq!(nskd_proto::error_kind::kind_of(&grpc), kind);
        }
    }

    #[test]
    fn a_full_disk_is_a_storage_failure() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert_eq!(io_kind(&enospc), Some(ErrorKind::Storage));
        assert_eq!(transport_kind(&enospc), ErrorKind::Storage);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(transport_kind(&refused), ErrorKind::Refused);
    }
}
