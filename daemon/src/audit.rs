//! The audit trail: one JSON line per agent action (every mutating call,
//! reads when `[server] audit_reads` is on), file 0600, rotated by size.

use std::{
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use serde::Serialize;

/// Rotate when the file would grow past this.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept (`audit.jsonl.1` … `.5`).
pub const KEEP: usize = 5;

/// One audited action. Never holds a credential.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEntry {
    /// RFC 3339 time.
    pub time: String,
    /// MCP session id ("" for nskctl).
    pub session: String,
    /// Client name (MCP client, or "nskctl x.y").
    pub client: String,
    /// Peer uid of the connection.
    pub peer_uid: Option<u32>,
    /// The authenticated HTTP caller nskd acted for (`user (group, ...)`);
    /// empty: the daemon's own identity.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    /// Cluster(s) acted on.
    pub cluster: String,
    /// MCP tool, when a shim says.
    pub tool: String,
    /// Verb: list, refresh, get-kubeconfig, ...
    pub verb: String,
    /// API version of the object, when known (`apps/v1`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Resource kind.
    pub resource: String,
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// What else identifies the action: the command of an exec (argv as a
    /// JSON array), the kubelet path of a node read; redacted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The plan a change made (dry-run) or applied.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub plan: String,
    /// sha256 of the change's diff (masked values masked).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff_sha256: String,
    /// The user's answer where a confirm rule asked: accepted, declined,
    /// cancelled, unavailable, fallback-allow, requested.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub confirmation: String,
    /// Whether the change was only a dry-run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// "ok" or the error, one line, redacted.
    pub outcome: String,
    /// Milliseconds taken.
    pub duration_ms: u64,
}

/// The audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    reads: bool,
    max_bytes: u64,
    file: Mutex<Option<File>>,
}

/// The default path: `$XDG_STATE_HOME/nskd/<env>-audit.jsonl`, else
/// `$HOME/.local/state/nskd/<env>-audit.jsonl`. Never a shared temporary
/// directory: with neither variable set (or not absolute) the path is empty,
/// and [`AuditLog::open`] refuses it, asking for `[server] audit_log`.
pub fn default_path(environment: &str) -> PathBuf {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        });
    match base {
        Some(base) => base.join("nskd").join(format!("{environment}-audit.jsonl")),
        None => PathBuf::new(),
    }
}

/// Opens the log file: its directory created 0700 when missing, the file
/// 0600, never through a symlink and never a file of another user.
fn open_private(path: &Path) -> Result<File, nskd_proto::private::PrivateError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        nskd_proto::private::ensure_dir(dir)?;
    }
    nskd_proto::private::open_append(path)
}

impl AuditLog {
    /// Opens (creating 0600) the log at `path`.
    pub fn open(path: PathBuf, reads: bool) -> Result<Self, String> {
        Self::with_limit(path, reads, MAX_BYTES)
    }

    /// Same, rotating at `max_bytes`.
    pub fn with_limit(path: PathBuf, reads: bool, max_bytes: u64) -> Result<Self, String> {
        if path.as_os_str().is_empty() {
            return Err("no private place for the audit log: neither $XDG_STATE_HOME nor $HOME is set to an absolute path (a shared temporary directory is never used); set [server] audit_log = \"/a/directory/you/own/audit.jsonl\"".into());
        }
        let file = open_private(&path).map_err(|e| {
            format!(
                "cannot open the audit log: {e}; or set [server] audit_log to another path you own"
            )
        })?;
        Ok(Self {
            path,
            reads,
            max_bytes,
            file: Mutex::new(Some(file)),
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `entry`: always when `mutating`, reads only when enabled.
    pub fn record(&self, mut entry: AuditEntry, mutating: bool) {
        if !mutating && !self.reads {
            return;
        }
        entry.time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        entry.outcome = crate::redact::redact(&entry.outcome);
        entry.detail = crate::redact::redact(&entry.detail);
        let Ok(mut line) = serde_json::to_string(&entry) else {
            return;
        };
        line.push('\n');
        crate::blocking::run(|| {
            let mut guard = self.file.lock().expect("audit lock");
            if let Err(e) = self.write(&mut guard, line.as_bytes()) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot write the audit log");
            }
        });
    }

    fn write(&self, file: &mut Option<File>, line: &[u8]) -> std::io::Result<()> {
        let size = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            *file = None;
            self.rotate();
        }
        if file.is_none() {
            *file = Some(open_private(&self.path).map_err(std::io::Error::other)?);
        }
        file.as_mut().expect("opened above").write_all(line)
    }

    fn rotate(&self) {
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = fs::remove_file(numbered(KEEP));
        for n in (1..KEEP).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        let _ = fs::rename(&self.path, numbered(1));
    }
}

/// Who called (from a request's metadata): for logs and audit.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// MCP session id (empty for nskctl).
    pub session: String,
    /// Client name.
    pub client: String,
    /// Peer uid.
    pub uid: Option<u32>,
    /// MCP tool served (shims say).
    pub tool: String,
}

/// Builds an entry from a call's facts.
pub fn entry(
    caller: &Caller,
    verb: &str,
    cluster: &str,
    outcome: &str,
    took: Duration,
) -> AuditEntry {
    AuditEntry {
        session: caller.session.clone(),
        client: caller.client.clone(),
        peer_uid: caller.uid,
        subject: crate::impersonate::current()
            .map(|c| c.subject())
            .unwrap_or_default(),
        cluster: cluster.to_string(),
        tool: caller.tool.clone(),
        verb: verb.to_string(),
        outcome: outcome.to_string(),
        duration_ms: took.as_millis() as u64,
        ..AuditEntry::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_a_planted_symlink_and_an_empty_default() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "keep").unwrap();
        let path = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = AuditLog::open(path, false).unwrap_err();
        assert!(
            e.contains("is a symlink") && e.contains("audit.jsonl") && e.contains("audit_log"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        let e = AuditLog::open(PathBuf::new(), false).unwrap_err();
        assert!(
            e.contains("[server] audit_log") && e.contains("XDG_STATE_HOME"),
            "{e}"
        );
    }

    #[test]
    fn writes_private_json_lines_rotates_and_skips_reads_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/audit.jsonl");
        let log = AuditLog::with_limit(path.clone(), false, 400).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        log.record(
            AuditEntry {
                verb: "list".into(),
                ..Default::default()
            },
            false,
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "", "reads are off");
        for i in 0..10 {
            let e = AuditEntry {
                verb: "refresh".into(),
                outcome: format!("failed: token-abcde:SECRETSECRETSECRETSECRET {i}"),
                ..Default::default()
            };
            log.record(e, true);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("SECRETSECRET"), "{text}");
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["verb"], "refresh");
        assert!(
            PathBuf::from(format!("{}.1", path.display())).exists(),
            "rotated at 400 bytes"
        );
        assert!(fs::metadata(&path).unwrap().len() <= 400);
    }
}
