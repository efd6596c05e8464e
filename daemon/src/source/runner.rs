//! Runs the `nsk` CLI: a clean environment (an allowlist plus the Rancher
//! variables, set on the child only), its own process group, and a timeout
//! that kills the whole group.

use std::{path::PathBuf, time::Duration};

use crate::config::Secret;

/// Variables passed through from the daemon's environment when set: what
/// nsk needs to run, find certificates and reach Rancher, nothing else
/// (no GITHUB_TOKEN or other credentials of the daemon's user).
pub const PASS_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// What every nsk run gets.
#[derive(Debug, Clone)]
pub struct NskEnv {
    /// The nsk executable.
    pub program: String,
    /// RANCHER_URL.
    pub rancher_url: Option<String>,
    /// RANCHER_TOKEN.
    pub token: Option<Secret>,
    /// RANCHER_INSECURE.
    pub insecure: bool,
    /// NSK_PROFILE.
    pub profile: Option<String>,
    /// NSK_CONFDIR.
    pub config_dir: Option<PathBuf>,
    /// NSK_DEBUG=true.
    pub debug: bool,
    /// Per-run timeout.
    pub timeout: Duration,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl RunOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a run produced no output at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The program could not be started.
    #[error("cannot run `{program}`: {reason}; install nsk or set [nsk] nsk_path to its full path")]
    Spawn {
        /// Program.
        program: String,
        /// OS error.
        reason: String,
    },
    /// It ran longer than the timeout; its process group was killed.
    #[error(
        "`nsk {args}` did not finish within {timeout:?} and was killed (with its child processes); raise [nsk] timeout if Rancher is just slow"
    )]
    Timeout {
        /// Arguments.
        args: String,
        /// Limit.
        timeout: Duration,
    },
}

impl NskEnv {
    /// Runs `nsk ARGS`, capturing stdout and stderr.
    pub async fn run(&self, args: &[&str]) -> Result<RunOutput, RunError> {
        let mut cmd = crate::child::confined(&self.program, args, PASS_THROUGH);
        if let Some(url) = &self.rancher_url {
            cmd.env("RANCHER_URL", url);
        }
        if let Some(token) = &self.token {
            cmd.env("RANCHER_TOKEN", token.expose());
        }
        cmd.env(
            "RANCHER_INSECURE",
            if self.insecure { "true" } else { "false" },
        );
        if let Some(p) = &self.profile {
            cmd.env("NSK_PROFILE", p);
        }
        if let Some(d) = &self.config_dir {
            cmd.env("NSK_CONFDIR", d);
        }
        if self.debug {
            cmd.env("NSK_DEBUG", "true");
        }
        tracing::debug!(program = %self.program, args = ?args, rancher_auth = if self.token.is_some() { "token set" } else { "no token" }, "running nsk");
        match crate::child::output_within(&mut cmd, self.timeout).await {
            Ok(out) => Ok(RunOutput {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
            Err(crate::child::Unfinished::Io(e)) => Err(RunError::Spawn {
                program: self.program.clone(),
                reason: e.to_string(),
            }),
            Err(crate::child::Unfinished::TimedOut) => Err(RunError::Timeout {
                args: args.join(" "),
                timeout: self.timeout,
            }),
        }
    }
}
