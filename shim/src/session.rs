//! One agent session: its link to the daemon and its active cluster.
//! Nothing here blocks start-up: the daemon is contacted on the first call.

use std::{future::Future, sync::Arc};

use nskd_proto::{
    autostart::Starter,
    client::{ConnectError, Identity, Link, is_connection_lost},
    socket::SocketLocation,
    v1::DaemonInfo,
};
use tokio::sync::{Mutex, OnceCell};
use tonic::{Response, Status, transport::Channel};

tokio::task_local! {
    /// The MCP tool being served by the current task (sent to the daemon
    /// for metrics and the audit log).
    pub static CURRENT_TOOL: String;
    /// The authenticated HTTP caller of the current task (`--http` with
    /// OIDC), named to the daemon on every call.
    pub static CURRENT_CALLER: Option<Caller>;
}

/// An authenticated HTTP caller, as the daemon accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Username (the `[http_auth] username_claim`).
    pub user: String,
    /// Groups (the `[http_auth] groups_claim`).
    pub groups: Vec<String>,
}

/// The caller of an MCP request, if the HTTP layer authenticated one
/// (never over stdio).
pub fn caller_of(ctx: &rmcp::service::RequestContext<rmcp::RoleServer>) -> Option<Caller> {
    #[cfg(feature = "http")]
    return ctx
        .extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .cloned();
    #[cfg(not(feature = "http"))]
    {
        let _ = ctx;
        None
    }
}

/// An agent session.
#[derive(Debug, Clone)]
pub struct Session {
    location: SocketLocation,
    session_id: String,
    link: Arc<OnceCell<Link>>,
    /// `None` until the agent picks a cluster or the daemon's default is known.
    active: Arc<Mutex<Option<String>>>,
    /// Starts the daemon when it is not running (opt-in).
    starter: Option<Starter>,
    /// Toolsets this session narrows to (`mcp-shim --toolsets`; empty: all
    /// the daemon offers).
    toolsets: Arc<Vec<String>>,
    /// The tools the daemon hid when the tool list was last sent, and
    /// whether a later answer said otherwise (tools/list_changed is due).
    offered: Arc<std::sync::Mutex<Offered>>,
    /// Served statelessly (`mcp-shim --http --stateless`): every request is
    /// a session of its own, so no active cluster is kept between calls.
    stateless: bool,
}

/// What the session last told its client about the tool list.
#[derive(Debug, Default)]
struct Offered {
    listed: Option<Vec<String>>,
    changed: bool,
    /// When the daemon was last asked what it offers.
    checked: Option<std::time::Instant>,
}

/// How often a busy session asks the daemon whether what it offers changed
/// (a restarted daemon is reconnected to transparently).
const OFFER_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Session {
    /// A new session talking to the daemon at `location`.
    pub fn new(location: SocketLocation) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            location,
            session_id: format!("{:x}-{:x}", std::process::id(), nanos),
            link: Arc::new(OnceCell::new()),
            active: Arc::new(Mutex::new(None)),
            starter: None,
            toolsets: Arc::new(Vec::new()),
            offered: Arc::default(),
            stateless: false,
        }
    }

    /// The session every stateless HTTP request starts from: one link to
    /// the daemon and one session id per shim process (plans made through
    /// this shim apply through it, on this replica).
    #[cfg(feature = "http")]
    pub fn stateless(mut self) -> Self {
        self.session_id = format!("http-stateless-{}", self.session_id);
        self.stateless = true;
        self
    }

    /// Whether this session keeps nothing between calls.
    pub fn is_stateless(&self) -> bool {
        self.stateless
    }

    /// The session of the next HTTP client with this one's settings: a new
    /// one (own id, link and active cluster); stateless, one request's,
    /// sharing the link and id but never an active cluster.
    #[cfg(feature = "http")]
    pub fn for_client(&self) -> Self {
        if self.stateless {
            Self {
                active: Arc::new(Mutex::new(None)),
                offered: Arc::default(),
                ..self.clone()
            }
        } else {
            Self::new(self.location.clone())
                .with_starter(self.starter.clone())
                .with_toolsets(self.toolsets.to_vec())
        }
    }

    /// Narrows the session to `toolsets` (empty: no narrowing).
    pub fn with_toolsets(mut self, toolsets: Vec<String>) -> Self {
        self.toolsets = Arc::new(toolsets);
        self
    }

    /// Whether this session offers `tool` (its `--toolsets`; the daemon
    /// decides the rest).
    pub fn narrows_out(&self, tool: &str) -> bool {
        !self.toolsets.is_empty()
            && nskd_proto::tools::toolset(tool)
                .is_none_or(|set| !self.toolsets.iter().any(|s| s == set))
    }

    /// The toolsets this session narrows to.
    pub fn toolsets(&self) -> &[String] {
        &self.toolsets
    }

    /// Records the hidden tools a tool list was built with.
    pub fn listed(&self, hidden: &[String]) {
        let mut o = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        o.listed = Some(hidden.to_vec());
        o.changed = false;
        o.checked = Some(std::time::Instant::now());
    }

    /// Whether the daemon now hides other tools than the list the client
    /// holds (once per change).
    pub fn take_list_changed(&self) -> bool {
        let mut o = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut o.changed)
    }

    /// Asks the daemon what it offers now, at most once per [`OFFER_CHECK`]
    /// and only once a tool list was sent; true when it changed.
    pub async fn offer_changed(&self, client_name: &str) -> bool {
        {
            let mut o = self.offered.lock().unwrap_or_else(|e| e.into_inner());
            let due = o.listed.is_some() && o.checked.is_none_or(|t| t.elapsed() >= OFFER_CHECK);
            if !due {
                return std::mem::take(&mut o.changed);
            }
            o.checked = Some(std::time::Instant::now());
        }
        let asked = self
            .call(client_name, |ch, id| {
                let mut client = nskd_proto::v1::daemon_client::DaemonClient::new(ch);
                let req = id.request(nskd_proto::v1::GetInfoRequest {
                    client_api_version: nskd_proto::API_VERSION,
                    client_name: format!("mcp-shim {}", env!("CARGO_PKG_VERSION")),
                });
                async move { client.get_info(req).await }
            })
            .await;
        if let Ok((info, _)) = asked {
            self.note_hidden(&info.hidden_tools);
        }
        self.take_list_changed()
    }

    /// Notes the hidden tools of a daemon answer.
    fn note_hidden(&self, hidden: &[String]) {
        let mut o = self.offered.lock().unwrap_or_else(|e| e.into_inner());
        if o.listed.as_deref().is_some_and(|l| l != hidden) {
            o.listed = Some(hidden.to_vec());
            o.changed = true;
        }
    }

    /// Starts the daemon on demand with `starter`, if given.
    pub fn with_starter(mut self, starter: Option<Starter>) -> Self {
        self.starter = starter;
        self
    }

    /// The link's channel, starting the daemon first when allowed and needed.
    async fn channel(&self, link: &Link) -> Result<(Channel, DaemonInfo), String> {
        match link.channel().await {
            Err(ConnectError::NotRunning { .. }) if self.starter.is_some() => {
                let starter = self.starter.clone().expect("checked above");
                let location = self.location.clone();
                tokio::task::spawn_blocking(move || starter.ensure_running(&location))
                    .await
                    .map_err(|e| format!("starting nskd failed: {e}"))??;
                link.channel().await.map_err(|e| e.to_string())
            }
            other => other.map_err(|e| e.to_string()),
        }
    }

    /// Session id sent to the daemon (logs, audit).
    pub fn id(&self) -> &str {
        &self.session_id
    }

    async fn link(&self, client_name: &str) -> &Link {
        self.link
            .get_or_init(|| async {
                Link::new(
                    self.location.clone(),
                    Identity {
                        session: self.session_id.clone(),
                        client: client_name.to_string(),
                        tool: String::new(),
                        ..Default::default()
                    },
                )
            })
            .await
    }

    /// Runs one gRPC call, reconnecting once if the daemon restarted since
    /// the last call. Errors come back as text an agent can act on.
    pub async fn call<T, F, Fut>(&self, client_name: &str, f: F) -> Result<(T, DaemonInfo), String>
    where
        F: Fn(Channel, &Identity) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        self.call_response(client_name, f)
            .await
            .map(|(r, info)| (r.into_inner(), info))
    }

    /// Same as [`Session::call`], keeping the response's metadata.
    pub async fn call_response<T, F, Fut>(
        &self,
        client_name: &str,
        f: F,
    ) -> Result<(Response<T>, DaemonInfo), String>
    where
        F: Fn(Channel, &Identity) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let link = self.link(client_name).await;
        let mut attempt = 0;
        loop {
            let (channel, info) = self.channel(link).await?;
            let mut identity = link.identity().clone();
            identity.tool = CURRENT_TOOL.try_with(Clone::clone).unwrap_or_default();
            if let Ok(Some(caller)) = CURRENT_CALLER.try_with(Clone::clone) {
                identity.user = caller.user;
                identity.groups = caller.groups;
            }
            match f(channel, &identity).await {
                Ok(resp) => {
                    self.adopt_default(&info).await;
                    return Ok((resp, info));
                }
                Err(status) => {
                    link.note_failure(&status).await;
                    if attempt == 0 && is_connection_lost(&status) {
                        attempt += 1;
                        continue;
                    }
                    return Err(link.explain(&status));
                }
            }
        }
    }

    /// The session starts on the daemon's default cluster.
    async fn adopt_default(&self, info: &DaemonInfo) {
        self.note_hidden(&info.hidden_tools);
        let mut active = self.active.lock().await;
        if active.is_none() && !info.default_cluster.is_empty() {
            *active = Some(info.default_cluster.clone());
        }
    }

    /// This session's active cluster, if any.
    pub async fn active(&self) -> Option<String> {
        self.active.lock().await.clone()
    }

    /// Switches this session (only) to `cluster`.
    pub async fn set_active(&self, cluster: String) {
        *self.active.lock().await = Some(cluster);
    }
}

/// What HTTP sessions share (the stdio-only build has no HTTP sessions).
#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    fn location() -> SocketLocation {
        SocketLocation::resolve(
            Some(std::path::Path::new("/nonexistent/nskd.sock")),
            Some("unit"),
        )
        .expect("a socket path")
    }

    /// Stateless requests share the link and session id (plans made through
    /// this shim apply through it), never an active cluster.
    #[tokio::test]
    async fn stateless_requests_share_the_link_not_the_active_cluster() {
        let base = Session::new(location()).stateless();
        assert!(base.is_stateless() && base.id().starts_with("http-stateless-"));
        let one = base.for_client();
        one.set_active("c1-sv5".into()).await;
        let two = base.for_client();
        assert_eq!(two.active().await, None);
        assert_eq!(one.id(), two.id());
        assert!(Arc::ptr_eq(&one.link, &two.link));
        assert!(two.is_stateless());
        // Stateful: each HTTP session its own.
        let stateful = Session::new(location());
        let (x, y) = (stateful.for_client(), stateful.for_client());
        assert!(!x.is_stateless() && x.id() != y.id() && !Arc::ptr_eq(&x.link, &y.link));
    }
}
