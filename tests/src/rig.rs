//! Real kube-apiserver + etcd clusters on loopback, via the scripts in
//! `tests/rig/` (copied from the verified recipe in shared/kube-apiserver).
//!
//! One rig per test process, started on first use and stopped by a watchdog
//! when the process exits. `NSKD_RIG_DIR` points at a rig already started
//! with `tests/rig/start.sh DIR 4` (it is then reused and left running).
//! When the apiserver cannot be built, [`shared`] returns `None` and tests
//! skip with a loud message.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

/// Clusters shared read-only by all tests.
pub const SHARED: [&str; 3] = ["c1-sv5", "c1-dfw1", "c1-lax1"];
/// A cluster that disruptive tests may stop and restart (one test at a time).
pub const DISRUPTABLE: &str = "c1-ord1";

/// The namespaces of the shared clusters. A test that creates namespaces
/// there holds it for writing until they are gone again; a test that
/// counts namespaces holds it for reading, so it never sees another
/// test's scratch namespaces.
pub static NAMESPACES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
const ALL: [&str; 4] = ["c1-sv5", "c1-dfw1", "c1-lax1", "c1-ord1"];

/// One running cluster.
#[derive(Debug, Clone)]
pub struct RigCluster {
    /// Cluster name (also the context name).
    pub name: String,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// API server port.
    pub port: u16,
    /// Admin bearer token (system:masters).
    pub admin_token: String,
    /// Token of a user without any RBAC grant.
    pub noperm_token: String,
    /// CA certificate file.
    pub ca: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Kubeconfig of the no-permission user.
    pub kubeconfig_noperm: PathBuf,
    /// Token of the `nskd` user (system:masters, its own name in the
    /// apiserver's audit log); `None` for a rig started by an older start.sh.
    pub nskd_token: Option<String>,
    /// Kubeconfig of the `nskd` user.
    pub kubeconfig_nskd: PathBuf,
    /// The apiserver's audit log (see [`crate::apiserver_audit`]).
    pub audit_log: PathBuf,
}

/// The rig.
#[derive(Debug)]
pub struct Rig {
    /// Its directory.
    pub dir: PathBuf,
    /// Clusters by name.
    pub clusters: HashMap<String, RigCluster>,
    disrupt: Mutex<()>,
}

/// Directory of the rig scripts.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rig")
}

static RIG: OnceLock<Result<Rig, String>> = OnceLock::new();

/// The process-wide rig, or `None` (with a loud message) when no
/// kube-apiserver binary can be had.
pub fn shared() -> Option<&'static Rig> {
    match RIG.get_or_init(start_or_reuse) {
        Ok(rig) => Some(rig),
        Err(why) => {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED: no real kube-apiserver available: {why}\n\
                 !! Build it with tests/rig/build.sh (needs Debian packages).\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            if std::env::var("NSKD_REQUIRE_RIG").as_deref() == Ok("1") {
                panic!("NSKD_REQUIRE_RIG=1 but the rig is unavailable: {why}");
            }
            None
        }
    }
}

fn start_or_reuse() -> Result<Rig, String> {
    if let Ok(dir) = std::env::var("NSKD_RIG_DIR") {
        let dir = PathBuf::from(dir);
        if dir.join("clusters.tsv").exists() {
            return Rig::load(&dir);
        }
        return start(&dir, false);
    }
    let dir = std::env::temp_dir().join(format!("nskd-rig-{}", std::process::id()));
    start(&dir, true)
}

fn start(dir: &Path, with_watchdog: bool) -> Result<Rig, String> {
    let build = Command::new(scripts().join("build.sh"))
        .output()
        .map_err(|e| format!("cannot run build.sh: {e}"))?;
    if !build.status.success() {
        return Err(format!(
            "build.sh failed: {}",
            String::from_utf8_lossy(&build.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let apiserver = String::from_utf8_lossy(&build.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if with_watchdog {
        spawn_watchdog(dir);
    }
    let started = std::time::Instant::now();
    let out = Command::new(scripts().join("start.sh"))
        .arg(dir)
        .arg(ALL.len().to_string())
        .env("KUBE_APISERVER", &apiserver)
        .env("NSKD_NAMES", ALL.join(" "))
        .env("NSKD_LEAN", "1")
        .output()
        .map_err(|e| format!("cannot run start.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "start.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "[rig] {} clusters ready in {:.1}s under {}",
        ALL.len(),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Rig::load(dir)
}

/// Stops the rig when this process exits (Rust runs no destructors for
/// statics): a detached shell polls our pid.
fn spawn_watchdog(dir: &Path) {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} {dir} --rm >/dev/null 2>&1",
        pid = std::process::id(),
        stop = scripts().join("stop.sh").display(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
}

impl Rig {
    fn load(dir: &Path) -> Result<Rig, String> {
        let mut clusters = HashMap::new();
        for name in ALL {
            let env_file = dir.join(name).join("cluster.env");
            let text = std::fs::read_to_string(&env_file)
                .map_err(|e| format!("{}: {e}", env_file.display()))?;
            let vars: HashMap<&str, &str> =
                text.lines().filter_map(|l| l.split_once('=')).collect();
            let get = |k: &str| {
                vars.get(k)
                    .map(|v| v.to_string())
                    .ok_or(format!("{k} missing in {}", env_file.display()))
            };
            clusters.insert(
                name.to_string(),
                RigCluster {
                    name: name.to_string(),
                    server: get("SERVER")?,
                    port: get("PORT")?.parse().map_err(|e| format!("PORT: {e}"))?,
                    admin_token: get("ADMIN_TOKEN")?,
                    noperm_token: get("NOPERM_TOKEN")?,
                    ca: PathBuf::from(get("CA")?),
                    kubeconfig: dir.join(name).join("kubeconfig"),
                    kubeconfig_noperm: dir.join(name).join("kubeconfig-noperm"),
                    nskd_token: get("NSKD_TOKEN").ok(),
                    kubeconfig_nskd: dir.join(name).join("kubeconfig-nskd"),
                    audit_log: dir.join(name).join("audit.log"),
                },
            );
        }
        Ok(Rig {
            dir: dir.to_path_buf(),
            clusters,
            disrupt: Mutex::new(()),
        })
    }

    /// One cluster by name.
    pub fn cluster(&self, name: &str) -> &RigCluster {
        &self.clusters[name]
    }

    /// Exclusive use of the disruptable cluster (held while the guard lives).
    pub fn disrupt(&self) -> std::sync::MutexGuard<'_, ()> {
        self.disrupt.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the apiserver of `name` (etcd and its data stay).
    pub fn stop_apiserver(&self, name: &str) {
        self.restart_script(name, "stop");
    }

    /// Starts it again on the same port and waits until it is ready.
    pub fn start_apiserver(&self, name: &str) {
        self.restart_script(name, "start");
    }

    /// Process id of `name`'s running apiserver (from `DIR/NAME/pids`).
    pub fn apiserver_pid(&self, name: &str) -> Option<i32> {
        let pids = std::fs::read_to_string(self.dir.join(name).join("pids")).ok()?;
        pids.lines()
            .rev()
            .filter_map(|l| l.strip_prefix("apiserver "))
            .find_map(|p| p.trim().parse().ok())
    }

    /// Sends `signal` to `name`'s apiserver (SIGSTOP: it hangs, SIGKILL: it
    /// dies mid-call). Panics when it is not running.
    pub fn signal_apiserver(&self, name: &str, signal: rustix::process::Signal) {
        let pid = self
            .apiserver_pid(name)
            .unwrap_or_else(|| panic!("no apiserver pid for {name}"));
        let pid = rustix::process::Pid::from_raw(pid).expect("pid");
        rustix::process::kill_process(pid, signal)
            .unwrap_or_else(|e| panic!("signal {signal:?} to the apiserver of {name}: {e}"));
    }

    fn restart_script(&self, name: &str, action: &str) {
        let out = Command::new(scripts().join("restart.sh"))
            .args([self.dir.as_os_str(), name.as_ref(), action.as_ref()])
            .output()
            .expect("run restart.sh");
        assert!(
            out.status.success(),
            "restart.sh {name} {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Marks `node` of cluster `name` Ready or NotReady (its status
    /// conditions, through the API server, as a kubelet would).
    pub fn set_node_ready(&self, name: &str, node: &str, ready: bool) {
        let c = self.cluster(name);
        let now = "2026-01-01T00:00:00Z";
        let body = format!(
            r#"{{"status":{{"conditions":[{{"type":"Ready","status":"{}","reason":"Test","message":"set by the test","lastHeartbeatTime":"{now}","lastTransitionTime":"{now}"}}]}}}}"#,
            if ready { "True" } else { "False" }
        );
        crate::kubeapi::call(
            c,
            "PATCH",
            &format!("/api/v1/nodes/{node}/status"),
            Some(&body),
        );
    }

    /// Starts the fake kubelet (tests/rig/fake-kubelet.py) for cluster
    /// `name`, registered on its nodes, its log lines labelled with the
    /// cluster name. It exits when the returned child is dropped (stdin EOF).
    pub fn start_fake_kubelet(&self, name: &str) -> FakeKubelet {
        self.start_fake_kubelet_with(name, &[])
    }

    /// Same, with more fake-kubelet.py options (`--log-lines`,
    /// `--error-every`, ...).
    pub fn start_fake_kubelet_with(&self, name: &str, extra: &[&str]) -> FakeKubelet {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(scripts().join("fake-kubelet.py"))
            .args([
                "--port",
                "0",
                "--exit-on-stdin-eof",
                "-q",
                "--label",
                name,
                "--kubeconfig",
            ])
            .arg(&self.cluster(name).kubeconfig)
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start fake-kubelet.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("fake kubelet port");
        assert!(
            line.trim().parse::<u16>().is_ok(),
            "fake-kubelet.py did not print its port: {line:?}"
        );
        FakeKubelet(child)
    }

    /// Writes admin kubeconfigs of `names` into `dir` as `<name>.yaml`.
    pub fn write_kubeconfigs(&self, dir: &Path, names: &[&str]) {
        for name in names {
            let c = self.cluster(name);
            std::fs::copy(&c.kubeconfig, dir.join(format!("{name}.yaml")))
                .expect("copy kubeconfig");
        }
    }

    /// Writes kubeconfigs of `names` into `dir` as `<name>.yaml` with the
    /// credentials of the `nskd` user, so that the apiserver's audit log
    /// tells a daemon's requests from the test's own (admin) ones. Panics
    /// when the rig predates that user (restart it with tests/rig/start.sh).
    pub fn write_nskd_kubeconfigs(&self, dir: &Path, names: &[&str]) {
        for name in names {
            let c = self.cluster(name);
            assert!(
                c.nskd_token.is_some() && c.kubeconfig_nskd.exists(),
                "the rig under {} has no nskd user for {name}: start it again with the current tests/rig/start.sh",
                self.dir.display()
            );
            std::fs::copy(&c.kubeconfig_nskd, dir.join(format!("{name}.yaml")))
                .expect("copy nskd kubeconfig");
        }
    }

    /// Writes a kubeconfig named `name` that points `like`'s credentials at
    /// `127.0.0.1:port` (a dead or black-holed endpoint).
    pub fn write_unreachable(&self, dir: &Path, name: &str, like: &str, port: u16) {
        self.write_named(dir, name, like, &format!("https://127.0.0.1:{port}"));
    }

    /// Writes `like`'s admin kubeconfig under another cluster name (many
    /// clusters on a few real apiservers, for benchmarks).
    pub fn write_alias(&self, dir: &Path, name: &str, like: &str) {
        self.write_named(dir, name, like, &self.cluster(like).server);
    }

    fn write_named(&self, dir: &Path, name: &str, like: &str, server: &str) {
        let c = self.cluster(like);
        let text = std::fs::read_to_string(&c.kubeconfig).expect("read kubeconfig");
        let text = text.replace(&c.server, server);
        std::fs::write(dir.join(format!("{name}.yaml")), text).expect("write kubeconfig");
    }

    /// The kubeconfig holding every rig cluster as a context.
    pub fn kubeconfig_all(&self) -> PathBuf {
        self.dir.join("kubeconfig-all.yaml")
    }
}

/// A running fake kubelet; stopped when dropped.
#[derive(Debug)]
pub struct FakeKubelet(std::process::Child);

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
