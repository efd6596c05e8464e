//! The Rancher token: from the config (`${VAR}`), RANCHER_TOKEN, or
//! `rancher_token_file` (a 0600 file or a mounted Kubernetes Secret), read
//! again at every use so a rotated token is picked up without a restart.

use std::{os::unix::fs::PermissionsExt, path::PathBuf};

use crate::config::Secret;

/// Where the token comes from.
#[derive(Debug, Clone)]
pub struct TokenSource {
    value: Option<Secret>,
    file: Option<PathBuf>,
}

impl TokenSource {
    /// From the resolved configuration (a file wins over a value).
    pub fn new(value: Option<Secret>, file: Option<PathBuf>) -> Self {
        if let Some(v) = &value {
            crate::redact::register_secret(v.expose());
        }
        Self { value, file }
    }

    /// The current token.
    pub fn current(&self) -> Result<Option<Secret>, String> {
        let Some(file) = &self.file else {
            return Ok(self.value.clone());
        };
        let meta = std::fs::metadata(file).map_err(|e| {
            format!(
                "cannot read rancher_token_file {}: {e}; check the path or the mounted Secret",
                file.display()
            )
        })?;
        let mode = meta.permissions().mode() & 0o777;
        // Kubernetes Secret volumes are symlinks into a `..data` directory.
        let from_secret_mount = std::fs::canonicalize(file)
            .map(|p| {
                p.components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with(".."))
            })
            .unwrap_or(false);
        if mode & 0o077 != 0 && !from_secret_mount {
            return Err(format!(
                "rancher_token_file {} has mode {mode:04o}: other users could read the token; run `chmod 600 {}`",
                file.display(),
                file.display()
            ));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read rancher_token_file {}: {e}", file.display()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(format!(
                "rancher_token_file {} is empty; write the Rancher API token into it",
                file.display()
            ));
        }
        crate::redact::register_secret(token);
        Ok(Some(Secret::new(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_token_is_reread_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "token-abcde:first\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let src = TokenSource::new(Some(Secret::new("ignored")), Some(f.clone()));
        assert_eq!(
            src.current().unwrap().unwrap().expose(),
            "token-abcde:first"
        );
        std::fs::write(&f, "token-abcde:second").unwrap();
        assert_eq!(
            src.current().unwrap().unwrap().expose(),
            "token-abcde:second"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = src.current().unwrap_err();
        assert!(e.contains("chmod 600") && !e.contains("second"), "{e}");
    }
}
