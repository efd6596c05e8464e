//! The daemon's end of the Unix socket: a private directory (0700, ours, no
//! symlink), one daemon per environment (a lock file), the stale socket of a
//! dead daemon replaced, the socket itself 0600, and removed on exit.

use std::{
    fs::{self, File},
    io::Write,
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use nskd_proto::socket::SocketLocation;
use tokio::net::UnixListener;

/// Why the daemon cannot serve on its socket. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The directory is a symlink.
    #[error(
        "refusing socket directory {dir}: it is a symlink; remove it (`rm {dir}`) so nskd can create a private directory, or choose another path with --socket"
    )]
    DirSymlink {
        /// The directory.
        dir: PathBuf,
    },
    /// Owned by another user.
    #[error(
        "refusing socket directory {dir}: it belongs to uid {owner}, not to this user (uid {uid}); use a directory you own (--socket) or run nskd as uid {owner}"
    )]
    DirForeign {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// Readable or writable by group/other.
    #[error(
        "refusing socket directory {dir}: mode {mode:04o} lets other users in; run `chmod 700 {dir}` or choose another path with --socket"
    )]
    DirOpen {
        /// The directory.
        dir: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Another daemon holds the lock.
    #[error("another nskd already serves environment '{environment}' on {path}{}; stop it first (`systemctl --user stop nskd@{environment}`{}) or use another --env", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), pid.map(|p| format!(" or `kill {p}`")).unwrap_or_default())]
    AlreadyRunning {
        /// Environment.
        environment: String,
        /// Socket path.
        path: PathBuf,
        /// The other daemon's pid, if it wrote one.
        pid: Option<u32>,
    },
    /// Something that is not a socket sits at the socket path.
    #[error(
        "refusing to replace {path}: it exists and is not a socket; move it away or choose another path with --socket"
    )]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A socket of another user sits at the socket path.
    #[error(
        "refusing to replace {path}: it is a socket of uid {owner}, not of this user (uid {uid}), so not a stale socket of ours; leave it to its owner and choose another path with --socket (or remove it yourself if you know it is stale)"
    )]
    ForeignSocket {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// A lock file that is a symlink or not ours.
    #[error(transparent)]
    Private(#[from] nskd_proto::private::PrivateError),
    /// Any other I/O failure.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Holds the lock and removes the socket when dropped.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    lock_path: PathBuf,
    _lock: File,
    remove_socket: bool,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if self.remove_socket {
            let _ = fs::remove_file(&self.path);
        }
        let _ = fs::remove_file(&self.lock_path);
    }
}

/// The current user's uid.
pub fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Checks (creating if needed) that `dir` is a private directory of ours.
pub fn ensure_private_dir(dir: &Path) -> Result<(), SocketError> {
    nskd_proto::private::ensure_dir(dir).map_err(for_socket)
}

/// The shared directory check's refusal, in the socket's words (which
/// name `--socket`).
fn for_socket(e: nskd_proto::private::PrivateError) -> SocketError {
    use nskd_proto::private::PrivateError as P;
    match e {
        P::DirSymlink { dir } => SocketError::DirSymlink { dir },
        P::DirForeign { dir, owner, uid } => SocketError::DirForeign { dir, owner, uid },
        P::DirOpen { dir, mode } => SocketError::DirOpen { dir, mode },
        P::NotADir { dir } => io("socket directory is not a directory:", &dir)(
            std::io::Error::from(std::io::ErrorKind::NotADirectory),
        ),
        other => SocketError::Private(other),
    }
}

/// Takes the environment's lock (next to the socket), or says which
/// daemon holds it.
fn take_lock(location: &SocketLocation) -> Result<(PathBuf, File), SocketError> {
    let dir = location.dir();
    ensure_private_dir(dir)?;
    let lock_path = location.lock_path();
    // O_NOFOLLOW: a symlink planted here must not redirect our writes.
    let mut lock = nskd_proto::private::open_lock(&lock_path)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let pid = fs::read_to_string(&lock_path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            return Err(SocketError::AlreadyRunning {
                environment: location.environment.clone(),
                path: location.path.clone(),
                pid,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(io("cannot lock", &lock_path)(e)),
    }
    lock.set_len(0)
        .map_err(io("cannot write lock file", &lock_path))?;
    writeln!(lock, "{}", std::process::id()).map_err(io("cannot write lock file", &lock_path))?;
    Ok((lock_path, lock))
}

/// A listening socket passed by systemd (socket activation,
/// `LISTEN_FDS`), if there is one.
pub fn inherited() -> Result<Option<std::os::unix::net::UnixListener>, SocketError> {
    listenfd::ListenFd::from_env()
        .take_unix_listener(0)
        .map_err(|source| SocketError::Io {
            what: "cannot use the socket passed by systemd (LISTEN_FDS)",
            path: PathBuf::from("fd 3"),
            source,
        })
}

/// Serves on a socket systemd created and owns: the lock is taken as
/// usual, but the socket is never unlinked or re-created.
pub fn adopt(
    location: &SocketLocation,
    listener: std::os::unix::net::UnixListener,
) -> Result<(UnixListener, SocketGuard), SocketError> {
    let (lock_path, lock) = take_lock(location)?;
    listener
        .set_nonblocking(true)
        .map_err(io("cannot use the inherited socket", &location.path))?;
    let listener = UnixListener::from_std(listener)
        .map_err(io("cannot use the inherited socket", &location.path))?;
    Ok((
        listener,
        SocketGuard {
            path: location.path.clone(),
            lock_path,
            _lock: lock,
            remove_socket: false,
        },
    ))
}

/// Binds the socket: private directory, lock, stale socket removed, 0600.
pub fn bind(location: &SocketLocation) -> Result<(UnixListener, SocketGuard), SocketError> {
    let (lock_path, lock) = take_lock(location)?;
    match fs::symlink_metadata(&location.path) {
        Ok(meta) if meta.file_type().is_socket() && meta.uid() != own_uid() => {
            // Our lock says nothing about another user's daemon.
            return Err(SocketError::ForeignSocket {
                path: location.path.clone(),
                owner: meta.uid(),
                uid: own_uid(),
            });
        }
        Ok(meta) if meta.file_type().is_socket() => {
            // We hold the lock, so whoever made it is gone.
            tracing::info!(path = %location.path.display(), "removing stale socket of a previous daemon");
            fs::remove_file(&location.path)
                .map_err(io("cannot remove stale socket", &location.path))?;
        }
        Ok(_) => {
            return Err(SocketError::NotASocket {
                path: location.path.clone(),
            });
        }
        Err(_) => {}
    }
    let listener =
        UnixListener::bind(&location.path).map_err(io("cannot bind socket", &location.path))?;
    fs::set_permissions(&location.path, fs::Permissions::from_mode(0o600))
        .map_err(io("cannot set mode 0600 on", &location.path))?;
    Ok((
        listener,
        SocketGuard {
            path: location.path.clone(),
            lock_path,
            _lock: lock,
            remove_socket: true,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(dir: &Path) -> SocketLocation {
        SocketLocation::resolve(Some(&dir.join("test.sock")), Some("test")).unwrap()
    }

    /// A private (0700) directory inside a temp dir (whose own mode follows the umask).
    fn private_dir(tmp: &tempfile::TempDir) -> std::path::PathBuf {
        let dir = tmp.path().join("private");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[tokio::test]
    async fn binds_0600_in_a_0700_dir_and_refuses_a_second_daemon() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nskd");
        let loc = location(&dir);
        let (_listener, guard) = bind(&loc).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&loc.path).unwrap().mode() & 0o777, 0o600);
        let second = bind(&loc).unwrap_err().to_string();
        assert!(
            second.contains("another nskd already serves environment 'test'"),
            "{second}"
        );
        assert!(
            second.contains(&format!("pid {}", std::process::id())),
            "{second}"
        );
        drop(guard);
        assert!(!loc.path.exists(), "socket removed on drop");
        bind(&loc).unwrap();
    }

    #[tokio::test]
    async fn refuses_a_symlink_planted_as_the_lock_file() {
        let tmp = tempfile::tempdir().unwrap();
        let loc = location(&private_dir(&tmp));
        let target = tmp.path().join("victim");
        fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, loc.lock_path()).unwrap();
        let e = bind(&loc).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("is a symlink") && e.contains("test.sock.lock"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn replaces_a_stale_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let loc = location(&private_dir(&tmp));
        let stale = std::os::unix::net::UnixListener::bind(&loc.path).unwrap();
        drop(stale);
        assert!(loc.path.exists());
        let (_l, _g) = bind(&loc).unwrap();
    }

    #[test]
    fn refuses_open_dirs_symlinks_and_non_sockets() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        let e = ensure_private_dir(&open).unwrap_err().to_string();
        assert!(e.contains("mode 0755") && e.contains("chmod 700"), "{e}");

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(
            ensure_private_dir(&link)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );

        let loc = location(&private_dir(&tmp));
        fs::write(&loc.path, "not a socket").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(async { bind(&loc).map(|_| ()) })
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a socket"), "{e}");
    }
}
