//! Runs one helm write: a private directory (0700, removed afterwards)
//! holds the cluster's kubeconfig and the values as 0600 files and helm's
//! own cache, config and data homes (so no user repository, plugin or
//! credential is used); the environment is cleared but for [`PASS_THROUGH`];
//! past `[helm] timeout` the process group is killed.

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use super::command::{Action, RunFiles, argv};
use crate::{
    child::{Unfinished, confined, output_within},
    config::HelmConfig,
    request::names::Namespace,
};

/// Variables passed through to helm when set: what it needs to find
/// programs, certificates and proxies; nothing else of the daemon's.
pub const PASS_THROUGH: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Grace added to helm's own `--timeout` before nskd kills it.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// What one helm run printed.
#[derive(Debug, Clone)]
pub struct HelmOutput {
    /// Standard output (JSON for install and upgrade).
    pub stdout: String,
    /// Standard error, with registered secrets redacted.
    pub stderr: String,
}

/// Why a helm write did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// helm could not be started.
    #[error(
        "cannot run helm at `{program}`: {reason}; install helm or set [helm] helm_path to its full path"
    )]
    Spawn {
        /// The configured program.
        program: String,
        /// OS error.
        reason: String,
    },
    /// The private files could not be written.
    #[error(
        "cannot prepare the private files for {operation} of release {release}: {reason}; check that the daemon's TMPDIR is writable"
    )]
    Files {
        /// Operation word.
        operation: &'static str,
        /// Release.
        release: String,
        /// OS error.
        reason: String,
    },
    /// helm ran past the limit and was killed with its process group.
    #[error(
        "{operation} of release {release} did not finish within {timeout:?} and helm was killed (with its child processes); check the release with helm_status, raise [helm] timeout if the chart is slow"
    )]
    Timeout {
        /// Operation word.
        operation: &'static str,
        /// Release.
        release: String,
        /// Limit.
        timeout: Duration,
    },
    /// helm exited with an error.
    #[error("{operation} of release {release} failed (helm exit {code}): {stderr}")]
    Failed {
        /// Operation word.
        operation: &'static str,
        /// Release.
        release: String,
        /// Exit code, or "signal".
        code: String,
        /// helm's message, one line, redacted.
        stderr: String,
    },
}

/// Runs helm writes as `[helm]` says.
#[derive(Debug, Clone)]
pub struct HelmRunner {
    /// The helm executable.
    pub program: String,
    /// Per-run limit.
    pub timeout: Duration,
}

impl HelmRunner {
    /// A runner for `config`.
    pub fn new(config: &HelmConfig) -> Self {
        Self {
            program: config.helm_path.clone(),
            timeout: config.timeout,
        }
    }

    /// The helm binary to run, when one is found: `helm_path` itself when
    /// it names a path, else the first executable of that name on PATH.
    /// `None` hides the write tools (`nskctl doctor` says why).
    pub fn find_binary(&self) -> Option<PathBuf> {
        find_executable(&self.program, std::env::var_os("PATH").as_deref())
    }

    /// Why the write tools are unavailable when no binary is found, with
    /// the fix.
    pub fn unavailable(&self) -> String {
        format!(
            "no helm binary found at [helm] helm_path = {:?}{}; install helm (v3 or v4) or set [helm] helm_path to its full path, then restart nskd",
            self.program,
            if self.program.contains('/') {
                ""
            } else {
                " (looked on the daemon's PATH)"
            }
        )
    }

    /// Runs `action` in `namespace` on the cluster whose kubeconfig (one
    /// context, current) is `kubeconfig`, with `values` (checked YAML) as
    /// a file. The private directory is removed whatever happens.
    pub async fn run(
        &self,
        kubeconfig: &[u8],
        action: &Action,
        namespace: &Namespace,
        values: Option<&str>,
        dry_run: bool,
    ) -> Result<HelmOutput, HelmError> {
        let operation = action.operation();
        let release = action.release().to_string();
        let files_err = |e: std::io::Error| HelmError::Files {
            operation,
            release: release.clone(),
            reason: e.to_string(),
        };
        let dir = tempfile::Builder::new()
            .prefix("nskd-helm-")
            .tempdir()
            .map_err(files_err)?;
        let kubeconfig_path = dir.path().join("kubeconfig");
        private_file(&kubeconfig_path, kubeconfig).map_err(files_err)?;
        let values_path = match values {
            Some(v) => {
                let p = dir.path().join("values.yaml");
                private_file(&p, v.as_bytes()).map_err(files_err)?;
                Some(p)
            }
            None => None,
        };
        let files = RunFiles {
            kubeconfig: &kubeconfig_path,
            values: values_path.as_deref(),
            timeout: self.timeout,
        };
        let args = argv(action, namespace, files, dry_run);
        let mut cmd = confined(&self.program, &args, PASS_THROUGH);
        for (var, sub) in [
            ("HOME", "home"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_DATA_HOME", "data"),
        ] {
            cmd.env(var, dir.path().join(sub));
        }
        cmd.env("HELM_NO_PLUGINS", "1");
        tracing::debug!(operation, release = %release, namespace = %namespace, dry_run, "running helm");
        let out = output_within(&mut cmd, self.timeout + KILL_GRACE)
            .await
            .map_err(|e| match e {
                Unfinished::Io(e) => HelmError::Spawn {
                    program: self.program.clone(),
                    reason: e.to_string(),
                },
                Unfinished::TimedOut => HelmError::Timeout {
                    operation,
                    release: release.clone(),
                    timeout: self.timeout + KILL_GRACE,
                },
            });
        drop(dir);
        let out = out?;
        let stderr = crate::redact::redact(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(HelmError::Failed {
                operation,
                release,
                code: out
                    .status
                    .code()
                    .map_or_else(|| "signal".into(), |c| c.to_string()),
                stderr: crate::kubeconfig::one_line(stderr.trim()),
            });
        }
        Ok(HelmOutput {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        })
    }
}

/// Writes `bytes` to a new file only the daemon's user can read.
fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// `program` when it holds a `/` and is an executable file, else the
/// first executable file of that name in `path`.
fn find_executable(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::request::names::ReleaseName;

    /// A fake helm: a shell script given as `body`.
    fn script(dir: &Path, body: &str) -> String {
        let p = dir.join("helm");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_owned()
    }

    fn uninstall() -> Action {
        Action::Uninstall {
            release: ReleaseName::parse("name", "web").unwrap(),
        }
    }

    fn ns() -> Namespace {
        Namespace::parse("namespace", "apps").unwrap()
    }

    #[tokio::test]
    async fn helm_sees_private_files_and_a_cleared_environment_then_they_are_gone() {
        let tmp = tempfile::tempdir().unwrap();
        // Prints the kubeconfig's mode and content, the values file, the
        // environment, and where the kubeconfig was.
        let program = script(
            tmp.path(),
            r#"k=$3; stat -c %a "$k"; cat "$k"; echo; env | sort; echo "KPATH=$k""#,
        );
        let runner = HelmRunner {
            program,
            timeout: Duration::from_secs(20),
        };
        let out = runner
            .run(b"apiVersion: v1\n", &uninstall(), &ns(), None, false)
            .await
            .unwrap();
        let mut lines = out.stdout.lines();
        assert_eq!(lines.next(), Some("600"));
        assert_eq!(lines.next(), Some("apiVersion: v1"));
        assert!(out.stdout.contains("HELM_NO_PLUGINS=1"));
        assert!(!out.stdout.contains("CARGO"), "{}", out.stdout);
        let kpath = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("KPATH="))
            .unwrap();
        assert!(!Path::new(kpath).exists(), "{kpath} left behind");
        assert!(!Path::new(kpath).parent().unwrap().exists());
    }

    #[tokio::test]
    async fn a_slow_helm_is_killed_with_its_children_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("child-pid");
        let program = script(
            tmp.path(),
            &format!(
                "echo $3 > {m}.k; sleep 60 & echo $! > {m}; wait",
                m = marker.display()
            ),
        );
        let runner = HelmRunner {
            program,
            timeout: Duration::ZERO,
        };
        let started = std::time::Instant::now();
        let err = runner
            .run(b"x", &uninstall(), &ns(), None, false)
            .await
            .unwrap_err();
        assert!(matches!(err, HelmError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild `sleep` was killed with the group.
        std::thread::sleep(Duration::from_millis(200));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z "),
            "sleep {pid} still runs: {stat}"
        );
        let k = std::fs::read_to_string(marker.with_extension("k")).unwrap();
        assert!(!Path::new(k.trim()).exists());
    }

    #[tokio::test]
    async fn a_failing_helm_reports_its_one_line_error_and_exit_code() {
        let tmp = tempfile::tempdir().unwrap();
        let program = script(tmp.path(), "echo 'Error: release: not found' >&2; exit 1");
        let runner = HelmRunner {
            program,
            timeout: Duration::from_secs(20),
        };
        let err = runner
            .run(b"x", &uninstall(), &ns(), None, false)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "helm_uninstall of release web failed (helm exit 1): Error: release: not found"
        );
    }

    #[tokio::test]
    async fn a_missing_helm_is_named_with_the_fix() {
        let runner = HelmRunner {
            program: "/nonexistent/helm".into(),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(runner.find_binary(), None);
        let err = runner
            .run(b"x", &uninstall(), &ns(), None, false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("[helm] helm_path"), "{err}");
    }

    #[test]
    fn the_binary_is_found_on_path_or_at_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let program = script(tmp.path(), "exit 0");
        assert_eq!(
            find_executable("helm", Some(tmp.path().as_os_str())),
            Some(PathBuf::from(&program))
        );
        assert_eq!(
            find_executable(&program, None),
            Some(PathBuf::from(&program))
        );
        assert_eq!(find_executable("helm", Some("/nonexistent".as_ref())), None);
    }
}
