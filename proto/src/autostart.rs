//! Starting the daemon on demand (mcp-shim's opt-in `--start-daemon`, for
//! hosts without systemd). A lock file next to the socket makes many
//! clients starting at once spawn a single daemon; the daemon's own lock
//! would refuse a second one anyway.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::socket::SocketLocation;

/// How long a started daemon may take to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct Starter {
    /// The nskd binary.
    pub nskd: PathBuf,
    /// `--config` to pass, if any (else nskd's own default / NSKD_CONFIG).
    pub config: Option<PathBuf>,
}

fn answers(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

impl Starter {
    /// nskd next to the running binary, else on PATH.
    pub fn find(config: Option<PathBuf>) -> Option<Self> {
        let beside = std::env::current_exe().ok()?.with_file_name("nskd");
        let nskd = if beside.is_file() {
            beside
        } else {
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join("nskd"))
                .find(|p| p.is_file())?
        };
        Some(Self { nskd, config })
    }

    /// Makes sure a daemon serves `location`, starting one (detached, its
    /// stderr in `<dir>/<env>.log`) when nobody does. Blocking: call it from
    /// a blocking task.
    pub fn ensure_running(&self, location: &SocketLocation) -> Result<(), String> {
        if answers(&location.path) {
            return Ok(());
        }
        let dir = location.dir();
        crate::private::ensure_dir(dir).map_err(|e| e.to_string())?;
        let lock_path = dir.join(format!("{}.start.lock", location.environment));
        let lock = crate::private::open_lock(&lock_path).map_err(|e| e.to_string())?;
        lock.lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
        // Someone else may have started it while we waited for the lock.
        if answers(&location.path) {
            return Ok(());
        }
        let log_path = dir.join(format!("{}.log", location.environment));
        let log = crate::private::open_append(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.nskd);
        cmd.arg("--env")
            .arg(&location.environment)
            .arg("--socket")
            .arg(&location.path);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.nskd.display()))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if answers(&location.path) {
                // Reap it later without waiting: the daemon outlives us.
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let tail = fs::read_to_string(&log_path).unwrap_or_default();
                let last = tail
                    .lines()
                    .rev()
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ");
                return Err(format!(
                    "nskd exited ({status}) right after start: {last} (log: {})",
                    log_path.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "nskd was started but did not serve {} within {START_TIMEOUT:?}; see {}",
                    location.path.display(),
                    log_path.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}
