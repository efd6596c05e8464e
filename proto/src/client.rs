//! Connecting to nskd: the Unix-socket transport, the API version check and
//! errors that say what to do.
//!
//! [`NskdClient`] connects eagerly and checks the version once (nskctl).
//! [`Link`] connects lazily, re-checks after every lost connection and so
//! survives daemon restarts (mcp-shim).

use std::{path::PathBuf, sync::Arc, time::Duration};

use hyper_util::rt::TokioIo;
use tokio::{net::UnixStream, sync::Mutex};
use tonic::{
    Code, Request, Status,
    metadata::MetadataValue,
    transport::{Channel, Endpoint, Uri},
};

use crate::{
    API_VERSION, CLIENT_HEADER, SESSION_HEADER,
    socket::{InvalidEnvironment, SocketLocation, start_hint},
    v1::{
        DaemonInfo, GetInfoRequest, clusters_client::ClustersClient, daemon_client::DaemonClient,
        kube_client::KubeClient,
    },
};

/// Largest gRPC message either side sends or accepts. Kube answers are
/// composed within `[output] max_bytes` (32 KiB by default) before they
/// are sent; status lists of a thousand clusters stay far below this.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Clients over a channel with the message limits set, one per service.
macro_rules! limited_clients {
    ($($(#[$doc:meta])* $name:ident => $client:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(channel: Channel) -> $client {
            <$client>::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        }
    )*};
}

limited_clients! {
    /// A Kube client over `channel` with the message limits set.
    kube_client => KubeClient<Channel>;
    /// A Clusters client over `channel` with the message limits set.
    clusters_client => ClustersClient<Channel>;
    /// A Changes client over `channel` with the message limits set.
    changes_client => crate::v1::changes_client::ChangesClient<Channel>;
    /// A Workload client over `channel` with the message limits set.
    workload_client => crate::v1::workload_client::WorkloadClient<Channel>;
    /// A Helm client over `channel` with the message limits set.
    helm_client => crate::v1::helm_client::HelmClient<Channel>;
    /// A Fleet client over `channel` with the message limits set.
    fleet_client => crate::v1::fleet_client::FleetClient<Channel>;
}

/// How long a client waits for the socket to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a client could not talk to the daemon. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No socket, or nobody listening on it.
    #[error("nskd is not running for environment '{environment}' (nothing listens on {path}); {hint}", hint = start_hint(environment))]
    NotRunning {
        /// Environment whose daemon is missing.
        environment: String,
        /// Socket path tried.
        path: PathBuf,
    },
    /// The socket or its directory is not ours, or the daemon refused our uid.
    #[error("permission denied talking to nskd at {path}: {detail}")]
    PermissionDenied {
        /// Socket path tried.
        path: PathBuf,
        /// What refused us and how to fix it.
        detail: String,
    },
    /// The socket, its directory or the process behind it is not ours:
    /// nothing was sent.
    #[error("refusing to talk to nskd at {path}: {detail}")]
    Untrusted {
        /// Socket path tried.
        path: PathBuf,
        /// What was found and how to fix it.
        detail: String,
    },
    /// Daemon and client were built from different API versions.
    #[error(
        "nskd {daemon_version} at {path} speaks API v{daemon_api}, but this {client} speaks v{client_api}: install both from the same release, then restart the daemon (`systemctl --user restart nskd@{environment}`)"
    )]
    VersionMismatch {
        /// Socket path.
        path: PathBuf,
        /// Environment served.
        environment: String,
        /// The daemon's package version.
        daemon_version: String,
        /// The daemon's API version.
        daemon_api: u32,
        /// Our API version.
        client_api: u32,
        /// Our name, e.g. "nskctl".
        client: String,
    },
    /// The daemon took too long to answer.
    #[error(
        "nskd at {path} did not answer within {timeout:?}; it may be overloaded or stuck: check `journalctl --user -u nskd@{environment}`"
    )]
    Timeout {
        /// Socket path.
        path: PathBuf,
        /// Environment served.
        environment: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// Any other failure, with the daemon's own message.
    #[error("talking to nskd at {path} failed: {detail}")]
    Other {
        /// Socket path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The environment name is unusable.
    #[error(transparent)]
    InvalidEnvironment(#[from] InvalidEnvironment),
}

/// Who is calling: sent as gRPC metadata on every request.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Session id (one per MCP session); empty for nskctl.
    pub session: String,
    /// Client name, e.g. "nskctl 0.1.0" or the MCP client's name.
    pub client: String,
    /// The MCP tool being served, if any.
    pub tool: String,
    /// The authenticated HTTP caller's username (empty: the daemon's own).
    pub user: String,
    /// That caller's groups.
    pub groups: Vec<String>,
}

impl Identity {
    /// Wraps `msg` in a request carrying this identity.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        let groups = self.groups.join(",");
        for (key, value) in [
            (SESSION_HEADER, &self.session),
            (CLIENT_HEADER, &self.client),
            (crate::TOOL_HEADER, &self.tool),
            (crate::USER_HEADER, &self.user),
            (crate::GROUPS_HEADER, &groups),
        ] {
            if let Ok(v) = MetadataValue::try_from(value.as_str())
                && !value.is_empty()
            {
                req.metadata_mut().insert(key, v);
            }
        }
        req
    }
}

/// A channel over the Unix socket at `location`, connecting on first use and
/// again after the connection is lost.
/// Every connection is checked first ([`connect_verified`]).
pub fn lazy_channel(location: &SocketLocation) -> Channel {
    let location = location.clone();
    // The URI is required by the HTTP/2 layer but never resolved.
    Endpoint::from_static("http://nskd.sock")
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let location = location.clone();
            async move { connect_verified(&location).await.map(TokioIo::new) }
        }))
}

/// A connected, version-checked client (nskctl's way: connect once).
#[derive(Debug, Clone)]
pub struct NskdClient {
    location: SocketLocation,
    channel: Channel,
    info: DaemonInfo,
    identity: Identity,
}

impl NskdClient {
    /// Connects, calls GetInfo and checks the API version.
    pub async fn connect(
        location: &SocketLocation,
        client_name: &str,
    ) -> Result<Self, ConnectError> {
        let identity = Identity {
            session: String::new(),
            client: client_name.to_string(),
            tool: String::new(),
            ..Default::default()
        };
        probe_socket(location).await?;
        let channel = lazy_channel(location);
        let info = check_version(location, &channel, &identity).await?;
        Ok(Self {
            location: location.clone(),
            channel,
            info,
            identity,
        })
    }

    /// What the daemon said about itself at connect time.
    pub fn info(&self) -> &DaemonInfo {
        &self.info
    }

    /// The socket this client talks to.
    pub fn location(&self) -> &SocketLocation {
        &self.location
    }

    /// Wraps `msg` in a request carrying our identity.
    pub fn request<T>(&self, msg: T) -> Request<T> {
        self.identity.request(msg)
    }

    /// The Clusters service.
    pub fn clusters(&self) -> ClustersClient<Channel> {
        clusters_client(self.channel.clone())
    }

    /// The Kube service.
    pub fn kube(&self) -> KubeClient<Channel> {
        kube_client(self.channel.clone())
    }

    /// The Daemon service.
    pub fn daemon(&self) -> DaemonClient<Channel> {
        DaemonClient::new(self.channel.clone())
    }

    /// The Helm service.
    pub fn helm(&self) -> crate::v1::helm_client::HelmClient<Channel> {
        helm_client(self.channel.clone())
    }

    /// Turns a failed call into an error that says what to do.
    pub fn explain(&self, status: &Status) -> String {
        explain_status(&self.location, status)
    }
}

/// A lazily connected, self-healing link to the daemon (mcp-shim's way).
///
/// The first call connects and checks the version; a call that finds the
/// daemon gone drops the channel, so the next call reconnects and checks the
/// version again (the daemon may have been upgraded meanwhile).
#[derive(Debug, Clone)]
pub struct Link {
    location: SocketLocation,
    identity: Identity,
    state: Arc<Mutex<Option<(Channel, DaemonInfo)>>>,
}

impl Link {
    /// A link that has not connected yet; nothing blocks here.
    pub fn new(location: SocketLocation, identity: Identity) -> Self {
        Self {
            location,
            identity,
            state: Arc::new(Mutex::new(None)),
        }
    }

    /// The socket this link talks to.
    pub fn location(&self) -> &SocketLocation {
        &self.location
    }

    /// Our identity (sent with every request).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// A version-checked channel, connecting if needed.
    pub async fn channel(&self) -> Result<(Channel, DaemonInfo), ConnectError> {
        let mut state = self.state.lock().await;
        if let Some((channel, info)) = state.as_ref() {
            return Ok((channel.clone(), info.clone()));
        }
        probe_socket(&self.location).await?;
        let channel = lazy_channel(&self.location);
        let info = check_version(&self.location, &channel, &self.identity).await?;
        *state = Some((channel.clone(), info.clone()));
        Ok((channel, info))
    }

    /// Forgets the connection after a call failed with `status`, if the
    /// failure means the daemon went away.
    pub async fn note_failure(&self, status: &Status) {
        if is_connection_lost(status) {
            *self.state.lock().await = None;
        }
    }

    /// Turns a failed call into an error that says what to do.
    pub fn explain(&self, status: &Status) -> String {
        explain_status(&self.location, status)
    }
}

/// True when `status` means the transport failed (daemon stopped or
/// restarting): a status the daemon did not mark as its own
/// ([`crate::ORIGIN_HEADER`]) with a code a broken transport gives
/// (`Unavailable`, or `Unknown` when the connection dies mid-call).
pub fn is_connection_lost(status: &Status) -> bool {
    let from_daemon = status.metadata().get(crate::ORIGIN_HEADER).is_some();
    !from_daemon && matches!(status.code(), Code::Unavailable | Code::Unknown)
}

/// Connects once to the raw socket so that a missing or foreign socket gives
/// a precise error before any HTTP/2 happens.
async fn probe_socket(location: &SocketLocation) -> Result<(), ConnectError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_verified(location)).await {
        Ok(result) => result.map(drop),
        Err(_) => Err(ConnectError::Timeout {
            path: location.path.clone(),
            environment: location.environment.clone(),
            timeout: CONNECT_TIMEOUT,
        }),
    }
}

/// Connects to the daemon's socket after checking, before anything is
/// sent, that the socket's directory is ours and closed to others (0700),
/// that the socket is a socket of ours, and that the process listening on
/// it runs as us (`SO_PEERCRED`). Another local user can then neither
/// plant a socket nor impersonate the daemon.
pub async fn connect_verified(location: &SocketLocation) -> Result<UnixStream, ConnectError> {
    verify_socket_path(location)?;
    let stream = UnixStream::connect(&location.path)
        .await
        .map_err(|e| io_error(location, &e))?;
    let uid = crate::private::own_uid();
    let peer = stream.peer_cred().map_err(|e| ConnectError::Other {
        path: location.path.clone(),
        detail: format!("cannot read the credentials of the process serving the socket: {e}"),
    })?;
    if peer.uid() != uid {
        return Err(ConnectError::Untrusted {
            path: location.path.clone(),
            detail: format!(
                "the process serving it (pid {}) runs as uid {}, not as you (uid {uid}); only a daemon of your own user is trusted: stop it or use a socket in a directory you own (--socket, or start your own with `nskd --env {}`)",
                peer.pid()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "?".into()),
                peer.uid(),
                location.environment
            ),
        });
    }
    Ok(stream)
}

/// The file-system half of [`connect_verified`]: two `stat` calls. A
/// missing socket is [`ConnectError::NotRunning`].
fn verify_socket_path(location: &SocketLocation) -> Result<(), ConnectError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let untrusted = |detail: String| ConnectError::Untrusted {
        path: location.path.clone(),
        detail,
    };
    // No socket: nothing to talk to (said first, whatever the directory).
    let meta = std::fs::symlink_metadata(&location.path).map_err(|e| io_error(location, &e))?;
    let dir = location.dir();
    // The directory's final target decides who can replace the socket.
    let dir_meta = std::fs::metadata(dir).map_err(|e| io_error(location, &e))?;
    if let Err(e) = crate::private::check_dir_meta(dir, &dir_meta) {
        return Err(untrusted(format!(
            "{e}; nskd creates its socket directory itself (mode 0700): remove this one and restart the daemon"
        )));
    }
    let uid = crate::private::own_uid();
    if !meta.file_type().is_socket() {
        let kind = if meta.file_type().is_symlink() {
            "a symlink"
        } else if meta.is_dir() {
            "a directory"
        } else {
            "a regular file or device"
        };
        return Err(untrusted(format!(
            "it is {kind}, not a socket; move it away and restart the daemon"
        )));
    }
    if meta.uid() != uid {
        return Err(untrusted(format!(
            "the socket belongs to uid {}, not to you (uid {uid}); only a daemon of your own user is trusted: remove it or use another --socket",
            meta.uid()
        )));
    }
    Ok(())
}

fn io_error(location: &SocketLocation, err: &std::io::Error) -> ConnectError {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => ConnectError::NotRunning {
            environment: location.environment.clone(),
            path: location.path.clone(),
        },
        ErrorKind::PermissionDenied => ConnectError::PermissionDenied {
            path: location.path.clone(),
            detail: format!(
                "{err}; the socket and its directory belong to the user running nskd: run this as that user, or start your own daemon with `nskd --env {}`",
                location.environment
            ),
        },
        _ => ConnectError::Other {
            path: location.path.clone(),
            detail: err.to_string(),
        },
    }
}

async fn check_version(
    location: &SocketLocation,
    channel: &Channel,
    identity: &Identity,
) -> Result<DaemonInfo, ConnectError> {
    let mut daemon = DaemonClient::new(channel.clone());
    let request = identity.request(GetInfoRequest {
        client_api_version: API_VERSION,
        client_name: identity.client.clone(),
    });
    let call = daemon.get_info(request);
    let info = match tokio::time::timeout(CONNECT_TIMEOUT * 2, call).await {
        Err(_) => {
            return Err(ConnectError::Timeout {
                path: location.path.clone(),
                environment: location.environment.clone(),
                timeout: CONNECT_TIMEOUT * 2,
            });
        }
        Ok(Err(status)) => return Err(status_error(location, &status)),
        Ok(Ok(resp)) => resp.into_inner(),
    };
    if info.api_version != API_VERSION {
        return Err(ConnectError::VersionMismatch {
            path: location.path.clone(),
            environment: location.environment.clone(),
            daemon_version: info.version,
            daemon_api: info.api_version,
            client_api: API_VERSION,
            client: identity
                .client
                .split_whitespace()
                .next()
                .unwrap_or("client")
                .to_string(),
        });
    }
    Ok(info)
}

fn status_error(location: &SocketLocation, status: &Status) -> ConnectError {
    match status.code() {
        Code::PermissionDenied => ConnectError::PermissionDenied {
            path: location.path.clone(),
            detail: status.message().to_string(),
        },
        _ if is_connection_lost(status) => ConnectError::NotRunning {
            environment: location.environment.clone(),
            path: location.path.clone(),
        },
        _ => ConnectError::Other {
            path: location.path.clone(),
            detail: status.message().to_string(),
        },
    }
}

/// A failed call as one message: the daemon's own words, or, when the
/// daemon is gone, how to start it.
pub fn explain_status(location: &SocketLocation, status: &Status) -> String {
    if is_connection_lost(status) && status.code() == Code::Unavailable {
        return ConnectError::NotRunning {
            environment: location.environment.clone(),
            path: location.path.clone(),
        }
        .to_string();
    }
    status.message().to_string()
}
