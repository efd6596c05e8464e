//! The rig apiserver's own audit log: an independent witness of what a
//! daemon sent to a cluster.
//!
//! `tests/rig/start.sh` runs every kube-apiserver with an audit policy that
//! logs every request at level `Metadata` (who, verb, URI, objectRef,
//! response code; never a body, so never a Secret value) as JSON lines in
//! `DIR/<cluster>/audit.log` (rotated at 50 MB, one backup kept).
//!
//! **Telling nskd's requests from the test's own.** A daemon started on
//! kubeconfigs written by [`crate::rig::Rig::write_nskd_kubeconfigs`]
//! authenticates as the static-token user [`NSKD_USER`] (`nskd`, group
//! `system:masters`); the test's direct calls ([`crate::kubeapi`]) use the
//! `admin` user, and the apiserver's own loopback requests
//! `system:apiserver`. So `user.username == "nskd"` selects exactly the
//! daemon's requests, whatever user agent it sends.
//!
//! **Windows.** Events are written when a request completes (a watch also
//! when its response starts), so a reader marks the log's end
//! ([`AuditLog::mark`]), lets the daemon work, then [`AuditLog::fence`]s: a
//! direct request with a unique name whose event, once seen, proves that
//! everything received before it is in the log. Events carry the
//! apiserver's `requestReceivedTimestamp`, comparable as a string with
//! [`now_stamp`], to attribute them to one call of a batch.

use std::{
    io::{Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;

use crate::rig::{Rig, RigCluster};

/// The user name a daemon on [`Rig::write_nskd_kubeconfigs`] kubeconfigs
/// has in the audit log.
pub const NSKD_USER: &str = "nskd";

/// A position in a cluster's audit log.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    inode: u64,
    offset: u64,
}

/// What one audit event says about one request (level `Metadata`).
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// Unique per request.
    pub audit_id: String,
    /// `ResponseComplete`, `ResponseStarted` (watches), `Panic`.
    pub stage: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, ...
    pub verb: String,
    /// Path and query as received.
    pub request_uri: String,
    /// `user.username`.
    pub username: String,
    /// `impersonatedUser.username` (empty: none).
    pub impersonated_user: String,
    /// `impersonatedUser.groups`.
    pub impersonated_groups: Vec<String>,
    /// `userAgent`.
    pub user_agent: String,
    /// `objectRef`; `None` for non-resource URLs (discovery, /version).
    pub object_ref: Option<ObjectRef>,
    /// `responseStatus.code`.
    pub code: Option<u16>,
    /// `requestReceivedTimestamp` (RFC 3339, UTC, microseconds).
    pub received: String,
}

/// The object a request was about, as the apiserver understood the URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    /// Plural resource, e.g. `configmaps`.
    pub resource: String,
    /// e.g. `log`, `proxy`, `exec`, `status`; empty for none.
    pub subresource: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
    /// Empty for collections.
    pub name: String,
    /// Empty for the core group.
    pub api_group: String,
}

impl Event {
    fn parse(v: &Value) -> Event {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Event {
            audit_id: s(&v["auditID"]),
            stage: s(&v["stage"]),
            verb: s(&v["verb"]),
            request_uri: s(&v["requestURI"]),
            username: s(&v["user"]["username"]),
            impersonated_user: s(&v["impersonatedUser"]["username"]),
            impersonated_groups: v["impersonatedUser"]["groups"]
                .as_array()
                .map(|g| g.iter().map(s).collect())
                .unwrap_or_default(),
            user_agent: s(&v["userAgent"]),
            object_ref: v.get("objectRef").map(|o| ObjectRef {
                resource: s(&o["resource"]),
                subresource: s(&o["subresource"]),
                namespace: s(&o["namespace"]),
                name: s(&o["name"]),
                api_group: s(&o["apiGroup"]),
            }),
            code: v["responseStatus"]["code"].as_u64().map(|c| c as u16),
            received: s(&v["requestReceivedTimestamp"]),
        }
    }

    /// The request path without its query.
    pub fn path(&self) -> &str {
        self.request_uri
            .split_once('?')
            .map_or(self.request_uri.as_str(), |(p, _)| p)
    }

    /// A GET of a non-resource URL that only describes the server:
    /// discovery (`/api`, `/apis`, `/api/v1`, `/apis/apps/v1`, ...),
    /// `/version` (the health probe), `/openapi/...`.
    pub fn is_discovery(&self) -> bool {
        let p = self.path();
        self.verb == "get"
            && self.object_ref.is_none()
            && (p == "/version"
                || p == "/api"
                || p == "/apis"
                || p.starts_with("/api/")
                || p.starts_with("/apis/")
                || p.starts_with("/openapi/"))
    }

    /// The request may change something (everything but get, list, watch).
    pub fn is_mutating(&self) -> bool {
        !matches!(self.verb.as_str(), "get" | "list" | "watch")
    }

    /// Whether the request was sent by a daemon as [`NSKD_USER`].
    pub fn is_nskd(&self) -> bool {
        self.username == NSKD_USER
    }

    /// Received at or after `from` and before `to` (both [`now_stamp`]s).
    pub fn received_within(&self, from: &str, to: &str) -> bool {
        self.received.as_str() >= from && self.received.as_str() < to
    }

    /// One line for a failure message.
    pub fn describe(&self) -> String {
        let o = self.object_ref.clone().unwrap_or_default();
        format!(
            "{} {} (user {}, resource {:?} subresource {:?} namespace {:?} name {:?} group {:?}, code {:?}, at {})",
            self.verb,
            self.request_uri,
            self.username,
            o.resource,
            o.subresource,
            o.namespace,
            o.name,
            o.api_group,
            self.code,
            self.received
        )
    }
}

/// The current wall-clock time formatted as the audit log's timestamps
/// (`2026-01-01T00:00:00.000000Z`), so that the two compare as strings.
pub fn now_stamp() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

/// One cluster's audit log.
#[derive(Debug, Clone)]
pub struct AuditLog {
    cluster: RigCluster,
    path: PathBuf,
}

impl AuditLog {
    /// The audit log of the rig cluster `name`. Panics when the rig was
    /// started without one (an older start.sh).
    pub fn for_cluster(rig: &Rig, name: &str) -> AuditLog {
        let cluster = rig.cluster(name).clone();
        let path = cluster.audit_log.clone();
        assert!(
            path.exists(),
            "no apiserver audit log at {}: start the rig again with the current tests/rig/start.sh",
            path.display()
        );
        AuditLog { cluster, path }
    }

    /// The end of the log now: [`AuditLog::events_since`] this mark returns
    /// only later events.
    pub fn mark(&self) -> Mark {
        let meta = std::fs::metadata(&self.path)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", self.path.display()));
        Mark {
            inode: meta.ino(),
            offset: meta.len(),
        }
    }

    /// Every event written after `mark` (also across one rotation), each
    /// request once (a watch's `ResponseStarted` and `ResponseComplete`
    /// count as one), in log order.
    pub fn events_since(&self, mark: &Mark) -> Vec<Event> {
        let mut text = String::new();
        let current = std::fs::metadata(&self.path)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", self.path.display()));
        if current.ino() == mark.inode {
            read_from(&self.path, mark.offset, &mut text);
        } else {
            // Rotated since the mark: the rest of the old file, then the new one.
            if let Some(old) = self.rotated_with_inode(mark.inode) {
                read_from(&old, mark.offset, &mut text);
            }
            read_from(&self.path, 0, &mut text);
        }
        let mut seen = std::collections::HashSet::new();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| Event::parse(&v))
            .filter(|e| seen.insert(e.audit_id.clone()))
            .collect()
    }

    fn rotated_with_inode(&self, inode: u64) -> Option<PathBuf> {
        let dir = self.path.parent()?;
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".log"))
            })
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == inode))
    }

    /// Sends a direct request (as admin) with a unique name and waits until
    /// its event is in the log; returns every event since `mark` and the
    /// fence's `requestReceivedTimestamp`: whatever a daemon sent before the
    /// fence was received is among those events.
    pub fn fence(&self, mark: &Mark) -> (Vec<Event>, String) {
        let id = format!(
            "nskd-e2e-audit-fence-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        );
        let path = format!("/api/v1/namespaces/default/configmaps/{id}");
        // A 404 is still audited, and changes nothing.
        let _ = crate::kubeapi::try_call(&self.cluster, "GET", &path, None);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events_since(mark);
            if let Some(f) = events.iter().find(|e| e.request_uri == path) {
                let at = f.received.clone();
                return (events, at);
            }
            assert!(
                Instant::now() < deadline,
                "the audit fence {path} did not reach {} within 15s",
                self.path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The requests [`NSKD_USER`] sent that were received in `[from, fence)`
    /// (waits for the fence; `from` is a [`now_stamp`] taken before the
    /// call, `mark` a mark taken before it too).
    pub fn nskd_requests_since(&self, mark: &Mark, from: &str) -> Vec<Event> {
        let (events, fence) = self.fence(mark);
        events
            .into_iter()
            .filter(|e| e.is_nskd() && e.received_within(from, &fence))
            .collect()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Appends the complete lines of `path` from `offset` to `out` (a line
/// still being written is left for the next read).
fn read_from(path: &Path, offset: u64, out: &mut String) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return;
    }
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    out.push_str(&String::from_utf8_lossy(&buf[..end]));
}
