//! A real `nskd` process on a private socket, and `nskctl` against it.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::bins::bin;

/// How a test daemon is set up.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    /// Environment name.
    pub environment: String,
    /// Extra TOML appended to the generated config (top-level keys first).
    pub top: String,
    /// Extra sections.
    pub sections: String,
    /// Default cluster.
    pub default_cluster: Option<String>,
    /// Extra `[server]` keys (e.g. `port = 9100`).
    pub server: String,
    /// `NSKD_LOG_LEVEL` of the daemon.
    pub log_level: String,
    /// Extra environment variables of the daemon process.
    pub env: Vec<(String, String)>,
}

impl Default for DaemonSpec {
    fn default() -> Self {
        Self {
            environment: "e2e".into(),
            top: String::new(),
            sections: "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n".into(),
            default_cluster: None,
            server: String::new(),
            log_level: "debug".into(),
            env: Vec::new(),
        }
    }
}

impl DaemonSpec {
    /// For benchmarks: info logs (debug lines cost time per call) and the
    /// default probe interval (30 s), probes time out after 3 s.
    pub fn bench() -> Self {
        Self {
            sections: "[health]\nprobe_timeout = \"3s\"\n".into(),
            log_level: "info".into(),
            ..Self::default()
        }
    }
}

/// A running daemon. Killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// Private temp dir holding config, socket dir, kubeconfigs and log.
    pub home: tempfile::TempDir,
    /// Socket path.
    pub socket: PathBuf,
    /// Kubeconfig directory the daemon reads.
    pub kubeconfig_dir: PathBuf,
    /// Config file.
    pub config: PathBuf,
    /// The daemon's stderr log.
    pub log: PathBuf,
    /// Environment name.
    pub environment: String,
    log_level: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Daemon {
    /// Prepares a home (kubeconfig dir filled by `fill`) without starting.
    pub fn prepare(spec: &DaemonSpec, fill: impl FnOnce(&Path)) -> Daemon {
        let log_level = spec.log_level.clone();
        let home = tempfile::Builder::new()
            .prefix("nskd-e2e-")
            .tempdir()
            .expect("tempdir");
        let kubeconfig_dir = home.path().join("kubeconfigs");
        std::fs::create_dir(&kubeconfig_dir).expect("mkdir kubeconfigs");
        fill(&kubeconfig_dir);
        let socket = home
            .path()
            .join("run")
            .join(format!("{}.sock", spec.environment));
        let config = home.path().join("config.toml");
        let mut text = format!(
            "kubeconfig_dir = {:?}\n",
            kubeconfig_dir.display().to_string()
        );
        if let Some(d) = &spec.default_cluster {
            text.push_str(&format!("default_cluster = {d:?}\n"));
        }
        text.push_str(&spec.top);
        text.push_str(&format!(
            "\n[server]\nenvironment = {:?}\naudit_log = {:?}\n{}\n",
            spec.environment,
            home.path().join("audit.jsonl").display().to_string(),
            spec.server
        ));
        text.push_str(&spec.sections);
        std::fs::write(&config, text).expect("write config");
        Daemon {
            log: home.path().join("nskd.log"),
            home,
            socket,
            kubeconfig_dir,
            config,
            environment: spec.environment.clone(),
            log_level,
            env: spec.env.clone(),
            child: None,
        }
    }

    /// Prepares and starts, waiting until the socket answers.
    pub fn start(spec: &DaemonSpec, fill: impl FnOnce(&Path)) -> Daemon {
        let mut d = Self::prepare(spec, fill);
        d.spawn();
        d
    }

    /// Starts (or, after `kill`/`terminate`, restarts) the process and waits
    /// for the socket.
    pub fn spawn(&mut self) {
        // A second process would fail on the lock while the first answers
        // on the socket, and the first would outlive the test.
        assert!(
            self.child.is_none(),
            "spawn: this daemon is still running; kill() or terminate() it first"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let child = Command::new(bin("nskd"))
            .arg("--config")
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            .env_remove("NSKD_ENV")
            .env_remove("RUST_LOG")
            .env("NSKD_LOG_LEVEL", &self.log_level)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nskd");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nskd exited with {status} before serving; log:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "nskd did not serve within 15s; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.stop(Duration::from_secs(15))
    }

    /// SIGTERM, waits up to `grace` for the exit, then SIGKILL.
    fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no cleanup at all, as in a crash), then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `nskctl` against this daemon.
    pub fn nskctl(&self, args: &[&str]) -> Output {
        nskctl(&self.socket, args)
    }

    /// Runs `nskctl --json ARGS` and parses stdout.
    pub fn nskctl_json(&self, args: &[&str]) -> serde_json::Value {
        self.nskctl_json_exiting(args, &[0])
    }

    /// Runs `nskctl --json status ARGS` and parses stdout; exit 1 (a cluster
    /// neither Ready nor Degraded) is an answer too.
    pub fn status_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        self.nskctl_json_exiting(&all, &[0, 1])
    }

    /// Runs `nskctl --json ARGS`, checks the exit code is one of `codes` and
    /// parses stdout.
    fn nskctl_json_exiting(&self, args: &[&str], codes: &[i32]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.nskctl(&all);
        assert!(
            out.status.code().is_some_and(|c| codes.contains(&c)),
            "nskctl {args:?} failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        serde_json::from_slice(&out.stdout).expect("nskctl --json output")
    }
}

impl Drop for Daemon {
    /// Stops the daemon the way systemd does, so that an instrumented build
    /// writes its coverage profile at exit (scripts/coverage).
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Runs `nskctl --socket SOCKET ARGS`.
pub fn nskctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(bin("nskctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("NSKD_ENV")
        .output()
        .expect("run nskctl")
}

/// Text of an Output's stdout and stderr.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
