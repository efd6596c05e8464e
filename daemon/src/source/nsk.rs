//! The `nsk` CLI source (contract: docs/nsk-contract.md).

use std::{
    io::Read,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use super::{
    RemoteCluster, SourceError,
    contract::{self, AuthInfo},
    runner::{NskEnv, RunError, RunOutput},
    token::TokenSource,
};
use crate::{config::Config, error::ErrorKind};

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

    /// The Rancher URL nsk is given, if any.
    pub fn rancher_url(&self) -> Option<&str> {
        self.env.rancher_url.as_deref()
    }

    /// nsk's own directory (NSK_CONFDIR, else nsk's default `$HOME/.nsk`):
    /// the only place bulk-mode files are read from.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.env.config_dir.clone().or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".nsk"))
        })
    }

    /// Reads a kubeconfig nsk says it saved (bulk mode), only if it lies in
    /// [`NskSource::config_dir`] once symlinks are resolved, is a regular
    /// file of ours, not writable by others, and not huge.
    pub fn read_saved(&self, printed: &str) -> Result<String, SourceError> {
        let dir = self.config_dir().ok_or_else(|| {
            SourceError::new(ErrorKind::Invalid, format!("nsk said it saved {printed}, but neither [nsk] config_dir (NSK_CONFDIR) nor HOME is set, so nskd cannot tell whether that path is nsk's; set [nsk] config_dir"))
        })?;
        read_saved_file(&dir, Path::new(printed))
            .map_err(|e| SourceError::new(ErrorKind::Policy, e))
    }

    async fn run(&self, args: &[&str]) -> Result<RunOutput, SourceError> {
        let mut env = self.env.clone();
        env.token = self
            .token
            .current()
            .map_err(|e| SourceError::new(ErrorKind::Unauthorized, e))?;
        match env.run(args).await {
            Ok(out) => Ok(out),
            Err(e @ RunError::Timeout { .. }) => {
                Err(SourceError::new(ErrorKind::Timeout, e.to_string()))
            }
            Err(e) => Err(SourceError::new(ErrorKind::Internal, e.to_string())),
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
            return Ok(contract::parse_list_json(&out.stdout)?);
        }
        if !contract::is_unknown_output_flag(&out.stderr) {
            return Err(Self::failure(&json_args, &out));
        }
        let table_args = ["cluster", "list"];
        let out = self.run(&table_args).await?;
        if !out.success() {
            return Err(Self::failure(&table_args, &out));
        }
        Ok(contract::parse_list_table(&out.stdout)?)
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
        Ok(contract::parse_auth_verify(&out.stdout)?)
    }
}

/// Largest kubeconfig read back from a bulk run.
pub const MAX_SAVED_BYTES: u64 = 4 * 1024 * 1024;

/// Reads `path` only if, canonicalised, it lies inside `dir` and is a
/// regular file owned by us and not group/other-writable. Opened with
/// `O_NOFOLLOW`, checked on the open file.
fn read_saved_file(dir: &Path, path: &Path) -> Result<String, String> {
    let refuse = |why: String| {
        format!(
            "refusing the kubeconfig nsk says it saved at {}: {why}; nsk writes kubeconfigs under NSK_CONFDIR ({}) only, so check [nsk] config_dir and the nsk installation",
            path.display(),
            dir.display()
        )
    };
    let root = dir.canonicalize().map_err(|e| {
        refuse(format!(
            "nsk's directory {} cannot be resolved: {e}",
            dir.display()
        ))
    })?;
    if !path.is_absolute() {
        return Err(refuse("it is not an absolute path".into()));
    }
    let real = path
        .canonicalize()
        .map_err(|e| refuse(format!("it cannot be resolved: {e}")))?;
    if !real.starts_with(&root) {
        return Err(refuse(format!(
            "it resolves to {}, outside {}",
            real.display(),
            root.display()
        )));
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&real)
        .map_err(|e| refuse(format!("it cannot be opened: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| refuse(format!("it cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    crate::kubeconfig::trust::check_owner(&real, meta.uid(), meta.mode())
        .map_err(|e| refuse(e.to_string()))?;
    if meta.len() > MAX_SAVED_BYTES {
        return Err(refuse(format!(
            "it has {} bytes, more than the {MAX_SAVED_BYTES} a kubeconfig may have",
            meta.len()
        )));
    }
    let mut text = String::new();
    f.by_ref()
        .take(MAX_SAVED_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| refuse(format!("it cannot be read as UTF-8 text: {e}")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn saved_files_are_read_only_inside_the_config_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = tmp.path().join("nsk");
        std::fs::create_dir_all(conf.join("kubeconfigs")).unwrap();
        let good = conf.join("kubeconfigs/c1.yaml");
        std::fs::write(&good, "apiVersion: v1\n").unwrap();
        assert_eq!(read_saved_file(&conf, &good).unwrap(), "apiVersion: v1\n");

        let outside = tmp.path().join("elsewhere.yaml");
        std::fs::write(&outside, "secret").unwrap();
        let e = read_saved_file(&conf, &outside).unwrap_err();
        assert!(e.contains("outside") && e.contains("elsewhere.yaml"), "{e}");

        let dotdot = conf.join("kubeconfigs/../../elsewhere.yaml");
        assert!(
            read_saved_file(&conf, &dotdot)
                .unwrap_err()
                .contains("outside")
        );

        let link = conf.join("kubeconfigs/link.yaml");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(
            read_saved_file(&conf, &link)
                .unwrap_err()
                .contains("outside")
        );

        assert!(
            read_saved_file(&conf, Path::new("kubeconfigs/c1.yaml"))
                .unwrap_err()
                .contains("absolute")
        );

        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_saved_file(&conf, &good).unwrap_err();
        assert!(e.contains("chmod go-w"), "{e}");
    }
}
