//! Where an environment's socket lives, shared by the daemon and its clients.
//!
//! Order: an explicit path (`--socket` or `$NSKD_SOCKET`), else
//! `$XDG_RUNTIME_DIR/nskd/<env>.sock`, else `/tmp/nskd-<uid>/<env>.sock`.

use std::path::{Path, PathBuf};

/// The environment used when none is named anywhere.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// A resolved socket path together with the environment it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketLocation {
    /// Environment name (names the socket and the systemd instance).
    pub environment: String,
    /// Absolute path of the Unix socket.
    pub path: PathBuf,
}

/// An environment name that cannot name a socket file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid environment name {name:?}: use letters, digits, '.', '_' or '-' (at most 64, not starting with '.'), e.g. --env production"
)]
pub struct InvalidEnvironment {
    /// The rejected name.
    pub name: String,
}

/// Checks that `name` is safe to use as a file name and systemd instance.
pub fn validate_environment(name: &str) -> Result<(), InvalidEnvironment> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(InvalidEnvironment {
            name: name.to_string(),
        })
    }
}

impl SocketLocation {
    /// Resolves the socket from an explicit path and/or environment name,
    /// falling back to `$NSKD_ENV` and then [`DEFAULT_ENVIRONMENT`].
    pub fn resolve(
        explicit: Option<&Path>,
        environment: Option<&str>,
    ) -> Result<Self, InvalidEnvironment> {
        let env_var = std::env::var("NSKD_ENV").ok().filter(|s| !s.is_empty());
        let environment = environment
            .map(str::to_string)
            .or(env_var)
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string());
        validate_environment(&environment)?;
        let path = match explicit {
            Some(p) => absolute(p),
            None => default_socket_dir().join(format!("{environment}.sock")),
        };
        Ok(Self { environment, path })
    }

    /// The directory holding the socket (and the daemon's lock file).
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The lock file guarding "one daemon per environment".
    pub fn lock_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        self.dir().join(name)
    }
}

/// `$XDG_RUNTIME_DIR/nskd`, else `/tmp/nskd-<uid>`.
pub fn default_socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("nskd"),
        None => PathBuf::from(format!("/tmp/nskd-{}", rustix::process::getuid().as_raw())),
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The command that starts the daemon for `environment`, for error messages.
pub fn start_hint(environment: &str) -> String {
    format!(
        "start it with `systemctl --user start nskd@{environment}` (systemd) or `nskd --env {environment}` (foreground)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_checked() {
        assert!(validate_environment("prod").is_ok());
        assert!(validate_environment("c1-sv5_x.y").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(validate_environment(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn explicit_path_wins_and_lock_sits_beside_it() {
        let loc =
            SocketLocation::resolve(Some(Path::new("/run/x/prod.sock")), Some("prod")).unwrap();
        assert_eq!(loc.path, Path::new("/run/x/prod.sock"));
        assert_eq!(loc.lock_path(), Path::new("/run/x/prod.sock.lock"));
        assert_eq!(loc.environment, "prod");
    }

    #[test]
    fn environment_names_the_socket() {
        let loc = SocketLocation::resolve(None, Some("staging")).unwrap();
        assert_eq!(loc.path.file_name().unwrap(), "staging.sock");
    }
}
