//! The kubeconfig store: `<dir>/<cluster>.yaml`, dir 0700, files 0600,
//! atomic replacement of validated content only, and `.removed/` for
//! clusters that left Rancher. Nothing here ever deletes a good file.

use std::{
    fs,
    io::Write,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

use crate::error::ErrorKind;

/// Subdirectory for kubeconfigs of clusters gone from Rancher.
pub const REMOVED_DIR: &str = ".removed";

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new cluster.
    Added,
    /// Content changed.
    Updated,
    /// Same bytes as before (the file is left alone).
    Unchanged,
}

/// A store failure, naming the file and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// `Invalid` for a refused name or file, else from the I/O error
    /// (`Storage` for a full disk or a permission problem).
    pub kind: ErrorKind,
    /// What failed, on which path, and what to do.
    pub message: String,
}

impl StoreError {
    /// A refused name or content.
    fn invalid(message: String) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            message,
        }
    }

    /// A failed file operation: the kind comes from the I/O error.
    fn io(e: &std::io::Error, message: String) -> Self {
        Self {
            kind: crate::error::io_kind(e).unwrap_or(ErrorKind::Storage),
            message,
        }
    }
}

/// Why fetched kubeconfig text may not replace a file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Rejected {
    /// Not a usable kubeconfig (YAML, contexts, servers, Rancher path).
    #[error("{0}")]
    Invalid(StoreError),
    /// It carries code, file paths or a foreign server.
    #[error("{0}; the previous file, if any, is kept")]
    Untrusted(crate::kubeconfig::trust::TrustError),
}

/// The store.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// Checks a cluster name is usable as a file name.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.contains("..")
        || name.len() > 200;
    if bad {
        return Err(StoreError::invalid(format!(
            "refusing cluster name {name:?}: it cannot be a file name (no '/', '..', NUL or leading '.'); rename the cluster in Rancher or exclude it with [nsk] exclude_clusters"
        )));
    }
    Ok(())
}

/// Parses and checks kubeconfig text before it may replace a file: valid
/// YAML, at least one context whose cluster has a server, nothing `trust`
/// refuses (a fetched kubeconfig is data only, on the Rancher URL). When
/// `server_suffix` is set, every server must end with it (a Rancher
/// kubeconfig points at its own `/k8s/clusters/<id>`).
pub fn validate_kubeconfig(
    name: &str,
    text: &str,
    server_suffix: Option<&str>,
    trust: &crate::kubeconfig::trust::Trust,
) -> Result<(), Rejected> {
    let bad = |why: String| {
        Rejected::Invalid(StoreError::invalid(format!(
            "the kubeconfig fetched for {name} is invalid ({why}); the previous file, if any, is kept"
        )))
    };
    let config = kube::config::Kubeconfig::from_yaml(text)
        .map_err(|e| bad(crate::kubeconfig::one_line(&e.to_string())))?;
    if config.contexts.is_empty() {
        return Err(bad("it defines no contexts".into()));
    }
    let servers: Vec<String> = config
        .clusters
        .iter()
        .filter_map(|c| c.cluster.as_ref().and_then(|c| c.server.clone()))
        .collect();
    if servers.is_empty() {
        return Err(bad("no cluster in it has a server URL".into()));
    }
    crate::kubeconfig::trust::check_fetched(name, &config, trust).map_err(Rejected::Untrusted)?;
    if let Some(suffix) = server_suffix
        && let Some(wrong) = servers
            .iter()
            .find(|s| !s.trim_end_matches('/').ends_with(suffix))
    {
        return Err(bad(format!(
            "its server {wrong} is not this cluster's {suffix}"
        )));
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `dir`, making it 0700 and
    /// every kubeconfig in it 0600.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|e| {
            StoreError::io(
                &e,
                format!("cannot create kubeconfig directory {}: {e}", dir.display()),
            )
        })?;
        let meta = fs::symlink_metadata(dir)
            .map_err(|e| StoreError::io(&e, format!("cannot read {}: {e}", dir.display())))?;
        let uid = rustix::process::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(StoreError::invalid(format!(
                "kubeconfig directory {} belongs to uid {}, not to this user (uid {uid}); use a directory you own (kubeconfig_dir)",
                dir.display(),
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
                StoreError::io(
                    &e,
                    format!("cannot make {} private (chmod 700): {e}", dir.display()),
                )
            })?;
            tracing::warn!(dir = %dir.display(), old_mode = format!("{:04o}", meta.mode() & 0o777), "kubeconfig directory was open to other users; set to 0700");
        }
        let store = Self {
            dir: dir.to_path_buf(),
        };
        store.sweep_temp_files();
        for path in store.files() {
            if let Ok(m) = fs::metadata(&path)
                && m.mode() & 0o077 != 0
            {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|e| {
                    StoreError::io(
                        &e,
                        format!("cannot make {} private (chmod 600): {e}", path.display()),
                    )
                })?;
                tracing::warn!(file = %path.display(), "kubeconfig was readable by other users; set to 0600");
            }
        }
        Ok(store)
    }

    /// Removes temp files of writes cut short by a crash (`.NAME.yaml.tmp-PID`
    /// whose PID is gone); those of a live process are left alone.
    fn sweep_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((_, pid)) = name
                .strip_prefix('.')
                .and_then(|n| n.rsplit_once(".yaml.tmp-"))
            else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            if fs::remove_file(entry.path()).is_ok() {
                tracing::info!(file = %entry.path().display(), "removed the temp file of an interrupted kubeconfig write");
            }
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of `name`'s kubeconfig.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.yaml"))
    }

    /// Kubeconfig files in the store.
    pub fn files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
            .collect();
        files.sort();
        files
    }

    /// Names of the clusters stored.
    pub fn names(&self) -> Vec<String> {
        self.files()
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect()
    }

    /// Atomically writes `text` as `name`'s kubeconfig (temp file, fsync,
    /// rename, fsync dir). Callers validate first.
    pub fn write(&self, name: &str, text: &str) -> Result<WriteOutcome, StoreError> {
        validate_name(name)?;
        let path = self.path(name);
        let outcome = match fs::read(&path) {
            Ok(old) if old == text.as_bytes() => return Ok(WriteOutcome::Unchanged),
            Ok(_) => WriteOutcome::Updated,
            Err(_) => WriteOutcome::Added,
        };
        let tmp = self
            .dir
            .join(format!(".{name}.yaml.tmp-{}", std::process::id()));
        let fail = |e: std::io::Error, what: &str| {
            let full = matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            );
            let hint = if full {
                format!(
                    "; the file system of {} is full: free space there (`df -h {}`) and refresh again",
                    self.dir.display(),
                    self.dir.display()
                )
            } else {
                String::new()
            };
            StoreError::io(
                &e,
                format!(
                    "cannot {what} {}: {e}{hint}; the previous kubeconfig is kept",
                    path.display()
                ),
            )
        };
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| fail(e, "write a temp file for"))?;
            f.write_all(text.as_bytes()).map_err(|e| fail(e, "write"))?;
            f.sync_all().map_err(|e| fail(e, "fsync"))?;
            fs::rename(&tmp, &path).map_err(|e| fail(e, "replace"))?;
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(outcome)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Moves `name`'s kubeconfig to `.removed/` (kept for inspection).
    pub fn retire(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_name(name)?;
        let removed = self.dir.join(REMOVED_DIR);
        fs::create_dir_all(&removed)
            .map_err(|e| StoreError::io(&e, format!("cannot create {}: {e}", removed.display())))?;
        let _ = fs::set_permissions(&removed, fs::Permissions::from_mode(0o700));
        let to = removed.join(format!("{name}.yaml"));
        fs::rename(self.path(name), &to).map_err(|e| {
            StoreError::io(
                &e,
                format!(
                    "cannot move {} to {}: {e}",
                    self.path(name).display(),
                    to.display()
                ),
            )
        })?;
        Ok(to)
    }

    /// Clusters in `.removed/`, with when they were moved there.
    pub fn removed(&self) -> Vec<(String, SystemTime)> {
        let Ok(entries) = fs::read_dir(self.dir.join(REMOVED_DIR)) else {
            return Vec::new();
        };
        let mut out: Vec<(String, SystemTime)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                let name = p.file_stem()?.to_string_lossy().into_owned();
                (p.extension()? == "yaml").then_some(())?;
                let when = e.metadata().ok()?.modified().ok()?;
                Some((name, when))
            })
            .filter(|(name, _)| !self.path(name).exists())
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::kubeconfig::trust::{Pin, Trust};
    use proptest::prelude::*;

    use super::*;

    const GOOD: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster:\n    server: https://r.example.com/k8s/clusters/c-1\ncontexts:\n- name: a\n  context:\n    cluster: a\n    user: a\nusers:\n- name: a\n  user:\n    token: t\ncurrent-context: a\n";

    /// Names built mostly from the characters that matter for paths.
    fn name_like() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => "[a-z0-9-]{1,4}",
                2 => Just(".".to_string()),
                1 => Just("/".to_string()),
                1 => Just("\\".to_string()),
                1 => Just("\0".to_string()),
                1 => "\\PC{1,3}",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    /// Names the rules accept: no '/', '\', NUL, "..", or leading '.'.
    fn valid_name() -> impl Strategy<Value = String> {
        r"[^/\\.\x00]{1,6}(\.[^/\\.\x00]{1,6}){0,4}\.?"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn names_are_accepted_exactly_as_documented(name in prop_oneof![name_like(), "\\PC{0,210}"]) {
            let documented = !name.is_empty()
                && name.len() <= 200
                && !name.starts_with('.')
                && !name.contains(['/', '\\', '\0'])
                && !name.contains("..");
            prop_assert_eq!(validate_name(&name).is_ok(), documented, "{:?}", name);
        }

        #[test]
        fn an_accepted_name_stays_one_file_in_the_store(name in valid_name()) {
            validate_name(&name).unwrap();
            let dir = Path::new("/store");
            let path = Store { dir: dir.to_path_buf() }.path(&name);
            prop_assert_eq!(path.parent(), Some(dir));
            let components: Vec<_> = path.strip_prefix(dir).unwrap().components().collect();
            prop_assert_eq!(components.len(), 1);
            prop_assert!(matches!(components[0], std::path::Component::Normal(_)));
        }

        #[test]
        fn traversal_pieces_are_always_refused(
            before in "\\PC{0,20}",
            piece in prop_oneof![Just("/"), Just(".."), Just("\0"), Just("\\"), Just("../"), Just("/..")],
            after in "\\PC{0,20}",
            leading_dot in any::<bool>(),
        ) {
            let name = format!("{}{before}{piece}{after}", if leading_dot { "." } else { "" });
            prop_assert!(validate_name(&name).is_err(), "{:?}", name);
            let hidden = format!(".{before}");
            prop_assert!(validate_name(&hidden).is_err(), "{:?}", hidden);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn an_accepted_name_is_written_and_listed_back(name in valid_name()) {
            validate_name(&name).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            prop_assert_eq!(store.write(&name, GOOD).unwrap(), WriteOutcome::Added);
            prop_assert_eq!(store.names(), vec![name.clone()]);
            prop_assert!(store.path(&name).starts_with(dir.path()));
        }
    }

    #[test]
    fn temp_files_of_dead_writers_are_swept_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = tmp.path().join(".a.yaml.tmp-999999999");
        let alive = tmp.path().join(".b.yaml.tmp-1");
        let other = tmp.path().join(".notes.tmp-5");
        for p in [&dead, &alive, &other] {
            fs::write(p, "partial").unwrap();
        }
        Store::open(tmp.path()).unwrap();
        assert!(!dead.exists(), "a dead writer's temp file is removed");
        assert!(alive.exists() && other.exists(), "anything else stays");
    }

    #[test]
    fn names_that_escape_the_directory_are_refused() {
        for bad in ["", "..", "../x", "a/b", "a\0b", ".hidden", "x..y"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        validate_name("c1-sv5").unwrap();
    }

    #[test]
    fn validation_checks_yaml_contexts_and_own_server() {
        let any = Trust::Fetched { pin: None };
        validate_kubeconfig("a", GOOD, Some("/k8s/clusters/c-1"), &any).unwrap();
        let e = validate_kubeconfig("a", GOOD, Some("/k8s/clusters/c-2"), &any)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not this cluster's /k8s/clusters/c-2"), "{e}");
        assert!(validate_kubeconfig("a", "{{{{", None, &any).is_err());
        assert!(validate_kubeconfig("a", "apiVersion: v1\nkind: Config\n", None, &any).is_err());
    }

    #[test]
    fn validation_refuses_code_and_foreign_servers_naming_the_field() {
        let pinned = Trust::Fetched {
            pin: Pin::parse("https://127.0.0.1:1"),
        };
        let e = validate_kubeconfig("a", GOOD, None, &pinned).unwrap_err();
        assert!(matches!(e, Rejected::Untrusted(_)));
        let e = e.to_string();
        assert!(
            e.contains("the kubeconfig fetched for a")
                && e.contains("clusters[0].cluster.server")
                && e.contains("previous file, if any, is kept"),
            "{e}"
        );
        let exec = GOOD.replace("token: t", "exec: {command: /bin/sh}");
        let e = validate_kubeconfig("a", &exec, None, &Trust::Fetched { pin: None })
            .unwrap_err()
            .to_string();
        assert!(e.contains("users[0].user.exec"), "{e}");
    }

    #[test]
    fn writes_are_private_atomic_and_retire_keeps_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("kc");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("old.yaml"), GOOD).unwrap();
        fs::set_permissions(dir.join("old.yaml"), fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(dir.join("old.yaml")).unwrap().mode() & 0o777,
            0o600
        );

        assert_eq!(store.write("a", GOOD).unwrap(), WriteOutcome::Added);
        assert_eq!(store.write("a", GOOD).unwrap(), WriteOutcome::Unchanged);
        assert_eq!(
            store
                .write("a", &GOOD.replace("token: t", "token: u"))
                .unwrap(),
            WriteOutcome::Updated
        );
        assert_eq!(fs::metadata(store.path("a")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(store.names(), ["a", "old"]);

        let moved = store.retire("old").unwrap();
        assert!(moved.exists() && !store.path("old").exists());
        assert_eq!(
            store
                .removed()
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            ["old"]
        );
        assert!(
            fs::read_dir(&dir).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-"))
        );
    }
}
