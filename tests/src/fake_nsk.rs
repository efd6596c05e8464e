//! Driving the fake `nsk` (src/bin/fake-nsk.rs) from tests.
//!
//! [`FakeNsk::create`] writes `STATE.json` and an executable wrapper script
//! `nsk` into a directory; point nskd's `nsk_path` at [`FakeNsk::path`].
//! The wrapper runs `fake-nsk --fake-state /abs/state.json "$@"`, and the
//! fake re-reads the state on every run, so [`FakeNsk::update`] changes its
//! behaviour between runs. What the fake answers is the contract in
//! `docs/nsk-contract.md` (sample outputs in `daemon/tests/fixtures/nsk/`).
//!
//! The fake-nsk binary must be built first (`cargo build -p nskd-e2e
//! --bins`); [`crate::bins::bin`] says so when it is missing.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};

use crate::rig::RigCluster;

/// Expiry `auth verify` shows unless the state says otherwise.
pub const DEFAULT_TOKEN_EXPIRY: &str = "2026-12-24T10:00:00Z";
/// Kubernetes version of a cluster unless set.
pub const DEFAULT_VERSION: &str = "v1.20.2";

/// One cluster known to the fake Rancher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeCluster {
    /// Rancher cluster id, e.g. `c-m-8k2xq7dz`.
    pub id: String,
    /// Cluster name (also the kubeconfig's cluster, user and context name).
    pub name: String,
    /// Rancher state shown by `cluster list` (`active`, `unavailable`...).
    pub state: String,
    /// Kubernetes version shown by `cluster list`.
    pub version: String,
    /// API server URL written into the kubeconfig.
    pub server: String,
    /// Base64 of the CA PEM (`certificate-authority-data`; omitted when empty).
    pub ca_data: String,
    /// Bearer token of the kubeconfig's user (omitted when empty).
    pub token: String,
    /// Replaces the kubeconfig's whole `user` map (hostile modes).
    pub user_override: Option<serde_json::Map<String, serde_json::Value>>,
    /// Keys added to the kubeconfig's `cluster` map (hostile modes).
    pub cluster_extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for FakeCluster {
    fn default() -> Self {
        FakeCluster {
            id: String::new(),
            name: String::new(),
            state: "active".into(),
            version: DEFAULT_VERSION.into(),
            server: String::new(),
            ca_data: String::new(),
            token: String::new(),
            user_override: None,
            cluster_extra: serde_json::Map::new(),
        }
    }
}

impl FakeCluster {
    /// An active cluster with no CA data and no token.
    pub fn new(id: &str, name: &str, server: &str) -> Self {
        FakeCluster {
            id: id.into(),
            name: name.into(),
            server: server.into(),
            ..FakeCluster::default()
        }
    }

    /// The rig cluster `c` as Rancher would serve it: its server, its CA
    /// (read from `c.ca`) and its admin token. Panics if the CA is unreadable.
    pub fn from_rig(c: &RigCluster, id: &str) -> Self {
        let ca =
            fs::read(&c.ca).unwrap_or_else(|e| panic!("cannot read CA {}: {e}", c.ca.display()));
        FakeCluster {
            ca_data: STANDARD.encode(&ca),
            token: c.admin_token.clone(),
            ..FakeCluster::new(id, &c.name, &c.server)
        }
    }

    /// This cluster handing out a `hostile` kubeconfig.
    pub fn hostile(self, hostile: &crate::hostile::Hostile) -> Self {
        FakeCluster {
            server: hostile.server().unwrap_or(self.server.clone()),
            user_override: hostile.user(),
            cluster_extra: hostile.cluster_extra(),
            ..self
        }
    }

    /// The same API server under another name and id (many Rancher clusters
    /// on a few real apiservers, for benchmarks).
    pub fn renamed(&self, name: &str, id: &str) -> Self {
        FakeCluster {
            id: id.into(),
            name: name.into(),
            ..self.clone()
        }
    }
}

/// A forced failure: every network command exits `exit` with `stderr`
/// (printed verbatim, a newline added if missing). Both fields are optional
/// in the JSON (default: exit 1, `Error: forced failure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeFailure {
    /// Exit code.
    pub exit: i32,
    /// Whole stderr, normally `Error: ...`.
    pub stderr: String,
}

impl Default for FakeFailure {
    fn default() -> Self {
        Self::new(1, "Error: forced failure")
    }
}

impl FakeFailure {
    /// Exit `exit` with `stderr`.
    pub fn new(exit: i32, stderr: &str) -> Self {
        FakeFailure {
            exit,
            stderr: stderr.into(),
        }
    }

    /// Go's dial error (retryable), as in `error-connection-refused.stderr`.
    pub fn connection_refused() -> Self {
        Self::new(
            1,
            "Error: Get \"https://rancher.example.com/v3/clusters\": dial tcp 10.0.0.1:443: connect: connection refused",
        )
    }

    /// Go's dial timeout (retryable), as in `error-timeout.stderr`.
    pub fn timeout() -> Self {
        Self::new(
            1,
            "Error: Get \"https://rancher.example.com/v3/clusters\": dial tcp 10.0.0.1:443: i/o timeout",
        )
    }

    /// Rancher rate limiting (retryable), as in `error-429.stderr`.
    pub fn too_many_requests() -> Self {
        Self::new(1, "Error: rancher returned 429 Too Many Requests")
    }

    /// Rancher unavailable (retryable), as in `error-503.stderr`.
    pub fn service_unavailable() -> Self {
        Self::new(1, "Error: rancher returned 503 Service Unavailable")
    }
}

/// The fake's `STATE.json`; every field is optional in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeState {
    /// Clusters Rancher knows.
    pub clusters: Vec<FakeCluster>,
    /// When set, RANCHER_TOKEN must equal it, else the invalid-token error.
    pub expected_token: Option<String>,
    /// Every network command fails with the expired-token error.
    pub token_expired: bool,
    /// Expiry shown by `auth verify`; `None` (JSON null) prints `never`.
    pub token_expires_at: Option<String>,
    /// Sleep this long before answering a network command.
    pub slow_ms: u64,
    /// Network commands sleep forever after spawning a grandchild
    /// `sleep 3600` in the same process group (its pid is in the calls log).
    pub hang: bool,
    /// Every network command fails so.
    pub fail: Option<FakeFailure>,
    /// The first N network runs (counted in `STATE.json.count`) fail with
    /// the connection-refused error.
    pub transient_failures: u64,
    /// Kubeconfig of these clusters fails with `rancher returned 500
    /// Internal Server Error` (bulk: partial, exit 3).
    pub fail_clusters: Vec<String>,
    /// `cluster list` and `cluster kubeconfig` output (and bulk files) are
    /// garbage, exit 0.
    pub garbage: bool,
    /// Only these clusters are listed (and written by bulk mode); the
    /// others are still fetchable with `--name`.
    pub list_only: Option<Vec<String>>,
    /// Behave like an old nsk: `cluster list --output` is an unknown flag.
    pub no_json_output: bool,
    /// Kubeconfigs end with at least this many bytes of comment lines.
    pub pad_bytes: usize,
    /// Kubeconfigs end with `# generation N` (when non-zero), so two
    /// states give two distinct contents per cluster.
    pub generation: u64,
    /// Append one JSON line per run here ([`FakeNsk::create`] sets
    /// `DIR/calls.jsonl` when unset).
    pub calls_log: Option<PathBuf>,
    /// A hostile nsk: bulk mode writes (and prints) its files in this
    /// directory instead of `$NSK_CONFDIR/kubeconfigs`.
    pub bulk_dir: Option<PathBuf>,
}

impl Default for FakeState {
    fn default() -> Self {
        FakeState {
            clusters: Vec::new(),
            expected_token: None,
            token_expired: false,
            token_expires_at: Some(DEFAULT_TOKEN_EXPIRY.into()),
            slow_ms: 0,
            hang: false,
            fail: None,
            transient_failures: 0,
            fail_clusters: Vec::new(),
            garbage: false,
            list_only: None,
            no_json_output: false,
            pad_bytes: 0,
            generation: 0,
            calls_log: None,
            bulk_dir: None,
        }
    }
}

impl FakeState {
    /// A state serving `clusters`, everything else default.
    pub fn with_clusters(clusters: Vec<FakeCluster>) -> Self {
        FakeState {
            clusters,
            ..FakeState::default()
        }
    }
}

/// A fake `nsk` installed in a directory: `DIR/nsk` (wrapper script),
/// `DIR/state.json`, `DIR/state.json.count`, `DIR/calls.jsonl`.
#[derive(Debug)]
pub struct FakeNsk {
    dir: PathBuf,
    state_path: PathBuf,
    wrapper: PathBuf,
}

impl FakeNsk {
    /// Installs the fake in `dir` (created if needed) with `state`; sets
    /// `calls_log` to `DIR/calls.jsonl` when unset. Panics on I/O errors or
    /// when the fake-nsk binary is not built.
    pub fn create(dir: &Path, mut state: FakeState) -> FakeNsk {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let dir = std::path::absolute(dir).expect("absolute path");
        if state.calls_log.is_none() {
            state.calls_log = Some(dir.join("calls.jsonl"));
        }
        let fake = FakeNsk {
            state_path: dir.join("state.json"),
            wrapper: dir.join("nsk"),
            dir,
        };
        fake.write_state(&state);
        write_wrapper(
            &fake.wrapper,
            &crate::bins::bin("fake-nsk"),
            &fake.state_path,
        );
        fake
    }

    /// The `nsk` wrapper script (what nskd's `nsk_path` points at).
    pub fn path(&self) -> &Path {
        &self.wrapper
    }

    /// The directory holding the wrapper, state, counter and calls log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/state.json`.
    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    /// The current state (read back from disk).
    pub fn state(&self) -> FakeState {
        let text = fs::read_to_string(&self.state_path).expect("read fake nsk state");
        serde_json::from_str(&text).expect("parse fake nsk state")
    }

    /// Changes the state for the next runs (written atomically).
    pub fn update(&self, change: impl FnOnce(&mut FakeState)) {
        let mut state = self.state();
        change(&mut state);
        self.write_state(&state);
    }

    /// One JSON object per run so far, oldest first (see
    /// docs/nsk-contract.md for the fields).
    pub fn calls(&self) -> Vec<serde_json::Value> {
        let log = self.calls_log();
        let Ok(text) = fs::read_to_string(&log) else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad line in {}: {e}: {l}", log.display()))
            })
            .collect()
    }

    /// The calls log's path.
    pub fn calls_log(&self) -> PathBuf {
        self.state()
            .calls_log
            .unwrap_or_else(|| self.dir.join("calls.jsonl"))
    }

    /// Runs that reached the fake Rancher so far (what `transient_failures`
    /// counts; `version`, help and usage errors are not counted).
    pub fn count(&self) -> u64 {
        fs::read_to_string(self.counter_path())
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Restarts the run counter (so `transient_failures` apply again).
    pub fn reset_counter(&self) {
        match fs::remove_file(self.counter_path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot reset the fake nsk counter: {e}"),
        }
    }

    fn counter_path(&self) -> PathBuf {
        let mut name = self.state_path.as_os_str().to_os_string();
        name.push(".count");
        PathBuf::from(name)
    }

    fn write_state(&self, state: &FakeState) {
        let text = serde_json::to_string_pretty(state).expect("serialize fake nsk state");
        let tmp = self.dir.join(format!(
            "state.json.tmp-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        fs::write(&tmp, text).expect("write fake nsk state");
        fs::rename(&tmp, &self.state_path).expect("rename fake nsk state");
    }
}

/// `#!/bin/sh` + `exec FAKE --fake-state STATE "$@"`, mode 0755.
fn write_wrapper(wrapper: &Path, fake: &Path, state: &Path) {
    let script = format!(
        "#!/bin/sh\n# fake nsk for nskd tests (written by nskd_e2e::fake_nsk)\nexec {} --fake-state {} \"$@\"\n",
        sh_quote(&fake.to_string_lossy()),
        sh_quote(&state.to_string_lossy()),
    );
    fs::write(wrapper, script)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", wrapper.display()));
    fs::set_permissions(wrapper, fs::Permissions::from_mode(0o755))
        .expect("chmod fake nsk wrapper");
}

/// `s` single-quoted for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::process::CommandExt,
        process::{Command, Output, Stdio},
        time::{Duration, Instant},
    };

    use super::*;

    const URL: &str = "https://rancher.example.com";
    const FIXTURE_TOKEN: &str = "kubeconfig-u-abc123:FIXTURESECRETTOKEN0123456789";

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../daemon/tests/fixtures/nsk")
            .join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The CA data of the fixture kubeconfig.
    fn fixture_ca() -> String {
        let config: yaml_serde::Value =
            yaml_serde::from_str(&fixture("kubeconfig-stdout.yaml")).unwrap();
        config["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The three clusters of the fixtures.
    fn fixture_clusters() -> Vec<FakeCluster> {
        let cluster = |id: &str, name: &str, state: &str, version: &str| FakeCluster {
            state: state.into(),
            version: version.into(),
            ca_data: fixture_ca(),
            token: FIXTURE_TOKEN.into(),
            ..FakeCluster::new(id, name, &format!("{URL}/k8s/clusters/{id}"))
        };
        vec![
            cluster("c-m-8k2xq7dz", "c1-sv5", "active", "v1.20.2"),
            cluster("c-m-4fj9w2lp", "c1-dfw1", "active", "v1.28.9+rke2r1"),
            cluster("c-5hqzr", "c1-lax1", "error", "v1.27.13+rke2r1"),
        ]
    }

    fn install(state: FakeState) -> (tempfile::TempDir, FakeNsk) {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeNsk::create(dir.path(), state);
        (dir, fake)
    }

    fn fixture_fake() -> (tempfile::TempDir, FakeNsk) {
        install(FakeState::with_clusters(fixture_clusters()))
    }

    /// A command running the wrapper with only PATH, HOME, RANCHER_URL and `env`.
    fn command(fake: &FakeNsk, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(fake.path());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", fake.dir())
            .env("RANCHER_URL", URL)
            .envs(env.iter().copied());
        cmd
    }

    /// Runs the wrapper, retrying while it is "text file busy" (another
    /// test thread forked while the script was open for writing).
    fn run_env(fake: &FakeNsk, args: &[&str], env: &[(&str, &str)]) -> Output {
        for _ in 0..100 {
            match command(fake, args, env).output() {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                result => return result.expect("run fake nsk"),
            }
        }
        panic!("fake nsk wrapper stayed busy");
    }

    fn run(fake: &FakeNsk, args: &[&str]) -> Output {
        run_env(fake, args, &[])
    }

    fn stdout(out: &Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stderr(out: &Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Asserts the exit code, showing both streams when it differs.
    fn assert_exit(out: &Output, code: i32) {
        assert_eq!(
            out.status.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            stdout(out),
            stderr(out)
        );
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn cluster_list_json_matches_the_fixture() {
        let (_dir, fake) = fixture_fake();
        let out = run(&fake, &["cluster", "list", "--output", "json"]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), fixture("cluster-list.json"));
        let short = run(&fake, &["cluster", "list", "-o", "json"]);
        assert_eq!(stdout(&short), fixture("cluster-list.json"));
        let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0]["kubernetesVersion"], "v1.20.2");
    }

    #[test]
    fn old_nsk_rejects_output_and_prints_a_table() {
        let (_dir, fake) = fixture_fake();
        fake.update(|s| s.no_json_output = true);
        let out = run(&fake, &["cluster", "list", "--output", "json"]);
        assert_exit(&out, 2);
        assert_eq!(stderr(&out), fixture("cluster-list-unknown-flag.stderr"));
        assert!(stdout(&out).is_empty());
        let out = run(&fake, &["cluster", "list"]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), fixture("cluster-list.txt"));
    }

    #[test]
    fn table_columns_stay_two_spaces_apart_with_long_values() {
        let long = FakeCluster {
            state: "unavailable".into(),
            ..FakeCluster::new(
                "c-m-0123456789abcdef",
                "c1-a-very-long-cluster-name",
                "https://x",
            )
        };
        let (_dir, fake) = install(FakeState::with_clusters(vec![
            long,
            FakeCluster::new("c-1", "a", "https://y"),
        ]));
        fake.update(|s| s.no_json_output = true);
        let out = run(&fake, &["cluster", "list"]);
        assert_exit(&out, 0);
        for line in stdout(&out).lines() {
            let cells: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            assert_eq!(cells.len(), 5, "{line:?}");
        }
    }

    #[test]
    fn kubeconfig_stdout_matches_the_fixture() {
        let (_dir, fake) = fixture_fake();
        let out = run(
            &fake,
            &["cluster", "kubeconfig", "--name", "c1-sv5", "--stdout"],
        );
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), fixture("kubeconfig-stdout.yaml"));
        let config: yaml_serde::Value = yaml_serde::from_str(&stdout(&out)).unwrap();
        assert_eq!(config["current-context"].as_str(), Some("c1-sv5"));
        assert_eq!(
            config["contexts"][0]["context"]["user"].as_str(),
            Some("c1-sv5")
        );
        assert_eq!(
            config["users"][0]["user"]["token"].as_str(),
            Some(FIXTURE_TOKEN)
        );
        let other = run(
            &fake,
            &["cluster", "kubeconfig", "--name=c1-dfw1", "--stdout"],
        );
        let config: yaml_serde::Value = yaml_serde::from_str(&stdout(&other)).unwrap();
        let server = config["clusters"][0]["cluster"]["server"].as_str();
        assert_eq!(
            server,
            Some("https://rancher.example.com/k8s/clusters/c-m-4fj9w2lp")
        );
    }

    #[test]
    fn kubeconfig_of_an_unknown_cluster_is_not_found() {
        let (_dir, fake) = fixture_fake();
        let out = run(
            &fake,
            &["cluster", "kubeconfig", "--name", "c1-nope", "--stdout"],
        );
        assert_exit(&out, 1);
        assert_eq!(stderr(&out), fixture("kubeconfig-not-found.stderr"));
        assert!(stdout(&out).is_empty());
    }

    #[test]
    fn failing_cluster_fails_alone_by_name() {
        let (_dir, fake) = fixture_fake();
        fake.update(|s| s.fail_clusters = vec!["c1-lax1".into()]);
        let out = run(
            &fake,
            &["cluster", "kubeconfig", "--name", "c1-lax1", "--stdout"],
        );
        assert_exit(&out, 1);
        assert_eq!(stderr(&out), fixture("kubeconfig-cluster-error.stderr"));
        assert_exit(
            &run(
                &fake,
                &["cluster", "kubeconfig", "--name", "c1-sv5", "--stdout"],
            ),
            0,
        );
    }

    /// A fixture with `/home/alice/.nsk` replaced by `confdir`.
    fn fixture_in(name: &str, confdir: &Path) -> String {
        fixture(name).replace("/home/alice/.nsk", &confdir.to_string_lossy())
    }

    #[test]
    fn bulk_writes_private_files() {
        let (dir, fake) = fixture_fake();
        let confdir = dir.path().join("conf");
        let env = [("NSK_CONFDIR", confdir.to_str().unwrap())];
        let out = run_env(&fake, &["cluster", "kubeconfig"], &env);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), fixture_in("bulk-kubeconfig.stdout", &confdir));
        assert!(stderr(&out).is_empty());
        let kubeconfigs = confdir.join("kubeconfigs");
        assert_eq!(mode(&kubeconfigs), 0o700);
        for name in ["c1-sv5", "c1-dfw1", "c1-lax1"] {
            let file = kubeconfigs.join(format!("{name}.yaml"));
            assert_eq!(mode(&file), 0o600, "{}", file.display());
            let by_name = run(
                &fake,
                &["cluster", "kubeconfig", "--name", name, "--stdout"],
            );
            assert_eq!(fs::read_to_string(&file).unwrap(), stdout(&by_name));
        }
        fs::set_permissions(
            kubeconfigs.join("c1-sv5.yaml"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_exit(&run_env(&fake, &["cluster", "kubeconfig"], &env), 0);
        assert_eq!(mode(&kubeconfigs.join("c1-sv5.yaml")), 0o600);
    }

    #[test]
    fn bulk_reports_partial_and_total_failures() {
        let (dir, fake) = fixture_fake();
        let confdir = dir.path().join("conf");
        let env = [("NSK_CONFDIR", confdir.to_str().unwrap())];
        fake.update(|s| s.fail_clusters = vec!["c1-lax1".into()]);
        let out = run_env(&fake, &["cluster", "kubeconfig"], &env);
        assert_exit(&out, 3);
        assert_eq!(
            stdout(&out),
            fixture_in("bulk-kubeconfig-partial.stdout", &confdir)
        );
        assert_eq!(stderr(&out), fixture("bulk-kubeconfig-partial.stderr"));
        assert!(!confdir.join("kubeconfigs/c1-lax1.yaml").exists());
        fake.update(|s| {
            s.fail_clusters = vec!["c1-sv5".into(), "c1-dfw1".into(), "c1-lax1".into()]
        });
        let out = run_env(&fake, &["cluster", "kubeconfig"], &env);
        assert_exit(&out, 1);
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("Failed to get kubeconfig for "))
                .count(),
            3
        );
        assert!(err.lines().last().unwrap().starts_with("Error: "), "{err}");
    }

    #[test]
    fn bulk_name_pattern_selects_clusters() {
        let (dir, fake) = fixture_fake();
        let confdir = dir.path().join("conf");
        let env = [("NSK_CONFDIR", confdir.to_str().unwrap())];
        let saved = |pattern: &str| -> Vec<String> {
            let out = run_env(
                &fake,
                &["cluster", "kubeconfig", "--name-pattern", pattern],
                &env,
            );
            assert_exit(&out, 0);
            stdout(&out)
                .lines()
                .map(|l| l.split(' ').nth(3).unwrap().to_string())
                .collect()
        };
        assert_eq!(saved("^c1-(sv5|dfw1)$"), ["c1-sv5", "c1-dfw1"]);
        assert_eq!(saved("lax"), ["c1-lax1"]);
        assert_eq!(saved(r"^c\d-[a-z]{3}\d$"), ["c1-dfw1", "c1-lax1"]);
        assert_eq!(saved("[^0-9]5$|^c1-l.*"), ["c1-sv5", "c1-lax1"]);
        assert!(saved("^nothing$").is_empty());
        let bad = run_env(
            &fake,
            &["cluster", "kubeconfig", "--name-pattern", "(c1"],
            &env,
        );
        assert_exit(&bad, 1);
        assert!(
            stderr(&bad).starts_with("Error: invalid --name-pattern \"(c1\": error parsing regexp")
        );
    }

    #[test]
    fn list_only_hides_clusters_from_the_list_and_bulk_only() {
        let (dir, fake) = fixture_fake();
        fake.update(|s| s.list_only = Some(vec!["c1-dfw1".into()]));
        let out = run(&fake, &["cluster", "list", "--output", "json"]);
        let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["name"], "c1-dfw1");
        let confdir = dir.path().join("conf");
        let bulk = run_env(
            &fake,
            &["cluster", "kubeconfig"],
            &[("NSK_CONFDIR", confdir.to_str().unwrap())],
        );
        assert_eq!(stdout(&bulk).lines().count(), 1);
        assert_exit(
            &run(
                &fake,
                &["cluster", "kubeconfig", "--name", "c1-sv5", "--stdout"],
            ),
            0,
        );
    }

    #[test]
    fn auth_verify_ok_never_expired_invalid() {
        let (_dir, fake) = fixture_fake();
        let token = [("RANCHER_TOKEN", "token-abc:secret")];
        let out = run_env(&fake, &["auth", "verify"], &token);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), fixture("auth-verify-ok.stdout"));
        fake.update(|s| s.token_expires_at = None);
        assert_eq!(
            stdout(&run_env(&fake, &["auth", "verify"], &token)),
            fixture("auth-verify-never.stdout")
        );
        fake.update(|s| s.token_expired = true);
        let out = run_env(&fake, &["auth", "verify"], &token);
        assert_exit(&out, 1);
        assert_eq!(stderr(&out), fixture("auth-verify-expired.stderr"));
        let list = run_env(&fake, &["cluster", "list", "--output", "json"], &token);
        assert_eq!(stderr(&list), fixture("auth-verify-expired.stderr"));
        fake.update(|s| {
            s.token_expired = false;
            s.expected_token = Some("token-abc:other".into());
        });
        let out = run_env(&fake, &["auth", "verify"], &token);
        assert_exit(&out, 1);
        assert_eq!(stderr(&out), fixture("auth-verify-invalid.stderr"));
        assert_exit(&run_env(&fake, &["auth", "verify"], &[]), 1);
        assert_exit(
            &run_env(
                &fake,
                &["auth", "verify"],
                &[("RANCHER_TOKEN", "token-abc:other")],
            ),
            0,
        );
    }

    #[test]
    fn transient_failures_count_invocations() {
        let (_dir, fake) = fixture_fake();
        fake.update(|s| s.transient_failures = 2);
        let list = ["cluster", "list", "--output", "json"];
        for _ in 0..2 {
            let out = run(&fake, &list);
            assert_exit(&out, 1);
            assert_eq!(stderr(&out), fixture("error-connection-refused.stderr"));
        }
        assert_exit(&run(&fake, &["version"]), 0);
        assert_exit(&run(&fake, &list), 0);
        assert_eq!(fake.count(), 3);
        fake.reset_counter();
        assert_eq!(fake.count(), 0);
        assert_exit(&run(&fake, &list), 1);
        let with_port = run_env(&fake, &list, &[("RANCHER_URL", "https://127.0.0.1:8443/")]);
        let err = stderr(&with_port);
        assert!(
            err.contains(
                "\"https://127.0.0.1:8443/v3/clusters\": dial tcp 127.0.0.1:8443: connect"
            ),
            "{err}"
        );
    }

    #[test]
    fn forced_failures_use_the_contract_texts() {
        let (_dir, fake) = fixture_fake();
        let cases = [
            (
                FakeFailure::connection_refused(),
                "error-connection-refused.stderr",
            ),
            (FakeFailure::timeout(), "error-timeout.stderr"),
            (FakeFailure::too_many_requests(), "error-429.stderr"),
            (FakeFailure::service_unavailable(), "error-503.stderr"),
        ];
        for (failure, file) in cases {
            fake.update(|s| s.fail = Some(failure));
            let out = run(&fake, &["cluster", "list", "--output", "json"]);
            assert_exit(&out, 1);
            assert_eq!(stderr(&out), fixture(file));
        }
        fake.update(|s| s.fail = Some(FakeFailure::new(42, "Error: boom\n")));
        let out = run(&fake, &["auth", "verify"]);
        assert_exit(&out, 42);
        assert_eq!(stderr(&out), "Error: boom\n");
    }

    #[test]
    fn garbage_is_neither_json_nor_yaml() {
        let (dir, fake) = fixture_fake();
        fake.update(|s| s.garbage = true);
        let list = run(&fake, &["cluster", "list", "--output", "json"]);
        assert_exit(&list, 0);
        assert!(serde_json::from_slice::<serde_json::Value>(&list.stdout).is_err());
        let one = run(
            &fake,
            &["cluster", "kubeconfig", "--name", "c1-sv5", "--stdout"],
        );
        assert_exit(&one, 0);
        assert!(
            yaml_serde::from_slice::<yaml_serde::Value>(&one.stdout).is_err(),
            "{}",
            stdout(&one)
        );
        let confdir = dir.path().join("conf");
        let bulk = run_env(
            &fake,
            &["cluster", "kubeconfig"],
            &[("NSK_CONFDIR", confdir.to_str().unwrap())],
        );
        assert_exit(&bulk, 0);
        let file = fs::read(confdir.join("kubeconfigs/c1-sv5.yaml")).unwrap();
        assert!(yaml_serde::from_slice::<yaml_serde::Value>(&file).is_err());
    }

    #[test]
    fn slow_ms_delays_the_answer() {
        let (_dir, fake) = fixture_fake();
        fake.update(|s| s.slow_ms = 400);
        let started = Instant::now();
        assert_exit(&run(&fake, &["cluster", "list", "--output", "json"]), 0);
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[test]
    fn calls_log_records_the_environment_but_never_the_token() {
        let secret = "token-abc:SUPERSECRETVALUE42";
        let (dir, fake) = fixture_fake();
        fake.update(|s| s.expected_token = Some(secret.into()));
        let confdir = dir.path().join("conf");
        let env = [
            ("RANCHER_TOKEN", secret),
            ("RANCHER_INSECURE", "false"),
            ("NSK_PROFILE", "prod"),
            ("NSK_CONFDIR", confdir.to_str().unwrap()),
            ("NSK_DEBUG", "true"),
            ("GITHUB_TOKEN", "ghp_SECRETGITHUB"),
        ];
        let out = run_env(&fake, &["cluster", "list", "--output", "json"], &env);
        assert_exit(&out, 0);
        assert!(stderr(&out).starts_with("DEBUG "), "{}", stderr(&out));
        assert_exit(
            &run_env(
                &fake,
                &["auth", "verify"],
                &[("RANCHER_TOKEN", "token-abc:wrong")],
            ),
            1,
        );
        let calls = fake.calls();
        assert_eq!(calls.len(), 2);
        let call = &calls[0];
        assert_eq!(
            call["argv"],
            serde_json::json!(["cluster", "list", "--output", "json"])
        );
        assert_eq!(call["rancher_url"], URL);
        assert_eq!(call["rancher_token_set"], true);
        assert_eq!(call["rancher_token_matches"], true);
        assert_eq!(call["rancher_insecure"], "false");
        assert_eq!(call["nsk_profile"], "prod");
        assert_eq!(call["nsk_confdir"], confdir.to_str().unwrap());
        assert_eq!(call["nsk_debug"], "true");
        assert_eq!(call["github_token_set"], true);
        assert!(call["grandchild_pid"].is_null());
        assert!(call["pid"].as_i64().unwrap() > 0 && call["pgid"].as_i64().unwrap() > 0);
        let names: Vec<&str> = call["env_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let expected = [
            "GITHUB_TOKEN",
            "HOME",
            "NSK_CONFDIR",
            "NSK_DEBUG",
            "NSK_PROFILE",
            "PATH",
            "RANCHER_INSECURE",
            "RANCHER_TOKEN",
            "RANCHER_URL",
        ];
        assert!(expected.iter().all(|n| names.contains(n)), "{names:?}");
        assert!(
            names.windows(2).all(|w| w[0] <= w[1]),
            "not sorted: {names:?}"
        );
        assert_eq!(calls[1]["rancher_token_matches"], false);
        assert!(calls[1]["nsk_debug"].is_null());
        let log = fs::read_to_string(fake.calls_log()).unwrap();
        assert!(!log.contains("SUPERSECRETVALUE42") && !log.contains("token-abc:wrong"));
        assert!(!log.contains("SECRETGITHUB"));
    }

    #[test]
    fn version_and_usage_errors_see_no_fault() {
        let (_dir, fake) = fixture_fake();
        fake.update(|s| {
            s.hang = true;
            s.fail = Some(FakeFailure::service_unavailable());
            s.token_expired = true;
        });
        let out = run(&fake, &["version"]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), "nsk version 1.8.2 (fake)\n");
        let out = run(&fake, &["cluster", "bogus"]);
        assert_exit(&out, 2);
        assert_eq!(
            stderr(&out),
            "Error: unknown command \"bogus\" for \"nsk cluster\"\n"
        );
        assert_exit(&run(&fake, &["cluster", "kubeconfig", "--stdout"]), 2);
        assert_exit(&run(&fake, &["cluster", "list", "--nope"]), 2);
        assert_eq!(fake.count(), 0);
        assert_eq!(fake.calls().len(), 4);
    }

    /// Whether `pid` is gone (or a zombie nobody reaped yet).
    fn dead(pid: i64) -> bool {
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn hang_spawns_a_grandchild_that_a_group_kill_reaches() {
        let (_dir, fake) = fixture_fake();
        fake.update(|s| s.hang = true);
        let mut cmd = command(&fake, &["cluster", "list", "--output", "json"], &[]);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                result => break result.expect("spawn fake nsk"),
            }
        };
        wait_until("the calls log", Duration::from_secs(10), || {
            !fake.calls().is_empty()
        });
        let call = fake.calls().remove(0);
        let pid = i64::from(child.id());
        assert_eq!(call["pid"].as_i64(), Some(pid));
        assert_eq!(call["pgid"].as_i64(), Some(pid));
        let grandchild = call["grandchild_pid"].as_i64().expect("grandchild pid");
        assert!(!dead(grandchild));
        assert!(child.try_wait().unwrap().is_none(), "fake nsk should hang");
        let group = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
        rustix::process::kill_process_group(group, rustix::process::Signal::KILL).unwrap();
        child.wait().unwrap();
        wait_until("the grandchild to die", Duration::from_secs(5), || {
            dead(grandchild)
        });
    }

    #[test]
    fn state_json_fields_are_optional() {
        let empty: FakeState = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, FakeState::default());
        assert_eq!(
            empty.token_expires_at.as_deref(),
            Some(DEFAULT_TOKEN_EXPIRY)
        );
        let never: FakeState = serde_json::from_str(r#"{"token_expires_at": null}"#).unwrap();
        assert_eq!(never.token_expires_at, None);
        let cluster: FakeCluster = serde_json::from_str(r#"{"name": "a"}"#).unwrap();
        assert_eq!(cluster.state, "active");
        let (_dir, fake) = install(FakeState::default());
        assert_eq!(fake.state().calls_log, Some(fake.dir().join("calls.jsonl")));
        let script = fs::read_to_string(fake.path()).unwrap();
        assert!(script.starts_with("#!/bin/sh\n") && script.contains("--fake-state"));
        assert_eq!(mode(fake.path()), 0o755);
    }

    #[test]
    fn from_rig_reads_the_ca_and_renamed_keeps_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let rig = RigCluster {
            name: "c1-sv5".into(),
            server: "https://127.0.0.1:6443".into(),
            port: 6443,
            admin_token: "admin-token".into(),
            noperm_token: "noperm-token".into(),
            ca: ca.clone(),
            kubeconfig: dir.path().join("kubeconfig"),
            kubeconfig_noperm: dir.path().join("kubeconfig-noperm"),
            nskd_token: None,
            kubeconfig_nskd: dir.path().join("kubeconfig-nskd"),
            audit_log: dir.path().join("audit.log"),
        };
        let cluster = FakeCluster::from_rig(&rig, "c-m-0001");
        assert_eq!(cluster.ca_data, STANDARD.encode(fs::read(&ca).unwrap()));
        assert_eq!(
            (cluster.token.as_str(), cluster.state.as_str()),
            ("admin-token", "active")
        );
        let copy = cluster.renamed("c1-sv5-0042", "c-m-0042");
        assert_eq!(
            (copy.name.as_str(), copy.id.as_str()),
            ("c1-sv5-0042", "c-m-0042")
        );
        assert_eq!(
            (copy.server, copy.ca_data, copy.token),
            (cluster.server, cluster.ca_data, cluster.token)
        );
    }
}
