//! The `nsk` CLI source (contract: docs/nsk-contract.md).

use super::{
    RemoteCluster, SourceError,
    contract::{self, AuthInfo, FailureKind},
    runner::{NskEnv, RunError, RunOutput},
    token::TokenSource,
};
use crate::config::Config;

/// Fetches through `nsk`.
#[derive(Debug)]
pub struct NskSource {
    env: NskEnv,
    token: TokenSource,
}

impl NskSource {
    /// From the configuration.
    pub fn new(config: &Config) -> Self {
        let n = &config.nsk;
        Self {
            env: NskEnv {
                program: n.nsk_path.clone(),
                rancher_url: n.rancher_url.clone(),
                token: None,
                insecure: n.rancher_insecure,
                profile: n.profile.clone(),
                config_dir: n.config_dir.clone(),
                debug: config.server.log_level.contains("debug")
                    || config.server.log_level.contains("trace"),
                timeout: n.timeout,
            },
            token: TokenSource::new(n.rancher_token.clone(), n.rancher_token_file.clone()),
        }
    }

    async fn run(&self, args: &[&str]) -> Result<RunOutput, SourceError> {
        let mut env = self.env.clone();
        env.token = self
            .token
            .current()
            .map_err(|e| SourceError::new(FailureKind::Auth, e))?;
        match env.run(args).await {
            Ok(out) => Ok(out),
            Err(e @ RunError::Timeout { .. }) => {
                Err(SourceError::new(FailureKind::Retryable, e.to_string()))
            }
            Err(e) => Err(SourceError::new(FailureKind::Other, e.to_string())),
        }
    }

    fn failure(args: &[&str], out: &RunOutput) -> SourceError {
        let what = contract::error_message(&out.stdout, &out.stderr);
        let code = out
            .code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "a signal".into());
        SourceError::new(
            contract::classify(&what),
            format!("`nsk {}` failed (exit {code}): {what}", args.join(" ")),
        )
    }

    /// `nsk cluster list --output json`, falling back to the table of an
    /// nsk too old for `--output`.
    pub async fn list(&self) -> Result<Vec<RemoteCluster>, SourceError> {
        let json_args = ["cluster", "list", "--output", "json"];
        let out = self.run(&json_args).await?;
        if out.success() {
            return contract::parse_list_json(&out.stdout)
                .map_err(|e| SourceError::new(FailureKind::Other, e));
        }
        if !contract::is_unknown_output_flag(&out.stderr) {
            return Err(Self::failure(&json_args, &out));
        }
        let table_args = ["cluster", "list"];
        let out = self.run(&table_args).await?;
        if !out.success() {
            return Err(Self::failure(&table_args, &out));
        }
        contract::parse_list_table(&out.stdout).map_err(|e| SourceError::new(FailureKind::Other, e))
    }

    /// `nsk cluster kubeconfig --name NAME --stdout`.
    pub async fn kubeconfig(&self, name: &str) -> Result<String, SourceError> {
        let args = ["cluster", "kubeconfig", "--name", name, "--stdout"];
        let out = self.run(&args).await?;
        if !out.success() {
            return Err(Self::failure(&args, &out));
        }
        Ok(out.stdout)
    }

    /// Bulk mode: `nsk cluster kubeconfig [--name-pattern P]`; nsk writes
    /// the files, the daemon reads them back (and validates them) from the
    /// paths nsk printed.
    pub async fn bulk(
        &self,
        pattern: Option<&str>,
    ) -> Result<Vec<contract::BulkLine>, SourceError> {
        let mut args = vec!["cluster", "kubeconfig"];
        if let Some(p) = pattern {
            args.extend(["--name-pattern", p]);
        }
        let out = self.run(&args).await?;
        let lines = contract::parse_bulk(&out.stdout, &out.stderr);
        if !out.success() && lines.is_empty() {
            return Err(Self::failure(&args, &out));
        }
        Ok(lines)
    }

    /// `nsk auth verify`.
    pub async fn verify(&self) -> Result<AuthInfo, SourceError> {
        let args = ["auth", "verify"];
        let out = self.run(&args).await?;
        if !out.success() {
            return Err(Self::failure(&args, &out));
        }
        contract::parse_auth_verify(&out.stdout)
            .map_err(|e| SourceError::new(FailureKind::Other, e))
    }
}
