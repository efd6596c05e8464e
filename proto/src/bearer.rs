//! Bearer tokens for nskd's HTTP ends (`mcp-shim --http`, the daemon's
//! `/metrics` and `/readyz`): a minimum length, generation, private token
//! files, and a constant-time check of SHA-256 digests.

use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::private::{self, PrivateError};

/// Shortest token accepted (characters).
pub const MIN_LEN: usize = 16;

/// Random bytes in a generated token (base64url: 43 characters).
pub const GENERATED_BYTES: usize = 32;

/// Why a token cannot be used. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Shorter than [`MIN_LEN`].
    #[error(
        "the bearer token from {origin} is {len} characters long; use at least {MIN_LEN} (e.g. `head -c 32 /dev/urandom | base64`)"
    )]
    TooShort {
        /// Where the token came from (flag, variable, file).
        origin: String,
        /// Its length.
        len: usize,
    },
    /// Holds whitespace or control characters (cannot travel in a header).
    #[error(
        "the bearer token from {origin} contains whitespace or control characters; use printable characters only (e.g. base64)"
    )]
    NotPrintable {
        /// Where the token came from.
        origin: String,
    },
    /// The token file cannot be read.
    #[error("cannot read the token file {path}: {source}; check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The OS gave no random bytes.
    #[error("cannot get random bytes from the OS to generate a token: {0}; pass a token instead")]
    Random(String),
    /// The token file cannot be written privately.
    #[error("cannot write the generated token: {0}")]
    Write(#[from] PrivateError),
}

/// An expected token, kept only as its SHA-256 digest.
#[derive(Clone)]
pub struct Bearer {
    digest: [u8; 32],
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(<redacted>)")
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Bearer {
    /// Accepts `token` (from `origin`, named in errors) if it is long enough
    /// and printable.
    pub fn new(token: &str, origin: &str) -> Result<Self, TokenError> {
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(TokenError::NotPrintable {
                origin: origin.to_string(),
            });
        }
        let len = token.chars().count();
        if len < MIN_LEN {
            return Err(TokenError::TooShort {
                origin: origin.to_string(),
                len,
            });
        }
        Ok(Self {
            digest: digest(token.as_bytes()),
        })
    }

    /// True when `presented` is the token. Digests are compared in
    /// constant time, so neither content nor length leaks through timing.
    pub fn matches(&self, presented: &[u8]) -> bool {
        digest(presented).ct_eq(&self.digest).into()
    }

    /// True when an `Authorization` header value carries the token
    /// (`Bearer <token>`, scheme case-insensitive).
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        match value.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => self.matches(token),
            _ => false,
        }
    }
}

/// Reads a token from `path` (surrounding whitespace trimmed).
pub fn read_file(path: &Path) -> Result<String, TokenError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// A new random token: [`GENERATED_BYTES`] from the OS, base64url.
pub fn generate() -> Result<String, TokenError> {
    let mut bytes = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Writes `token` to `dir/name`: `dir` is created 0700 (or must already be
/// ours and private), a stale file of that name is replaced, and the new
/// file is created 0600 with `O_EXCL|O_NOFOLLOW`.
pub fn write_file(dir: &Path, name: &str, token: &str) -> Result<PathBuf, TokenError> {
    private::ensure_dir(dir)?;
    let path = dir.join(name);
    // The directory is ours alone, so whatever sits there is a leftover of ours.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(PrivateError::Io {
                what: "cannot replace the old token file",
                path,
                source,
            }
            .into());
        }
    }
    let mut contents = token.as_bytes().to_vec();
    contents.push(b'\n');
    private::create_new(&path, &contents)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_length_printability_and_header() {
        assert!(matches!(
            Bearer::new("short", "NSKD_SHIM_TOKEN"),
            Err(TokenError::TooShort { len: 5, .. })
        ));
        let e = Bearer::new("0123456789abcde", "--http-token-file x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--http-token-file x") && e.contains("at least 16"),
            "{e}"
        );
        assert!(matches!(
            Bearer::new("0123456789abcdef\n", "x"),
            Err(TokenError::NotPrintable { .. })
        ));
        let b = Bearer::new("0123456789abcdef", "x").unwrap();
        assert!(b.matches(b"0123456789abcdef"));
        assert!(!b.matches(b"0123456789abcdeX"));
        assert!(!b.matches(b"0123456789abcdef0"));
        assert!(!b.matches(b""));
        assert!(b.authorizes(Some(b"Bearer 0123456789abcdef")));
        assert!(b.authorizes(Some(b"bearer 0123456789abcdef")));
        assert!(!b.authorizes(Some(b"Basic 0123456789abcdef")));
        assert!(!b.authorizes(Some(b"Bearer")));
        assert!(!b.authorizes(None));
        assert!(!format!("{b:?}").contains("0123"));
    }

    #[test]
    fn generated_tokens_are_long_distinct_and_private() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        Bearer::new(&a, "generated").unwrap();
        let dir = std::env::temp_dir()
            .join(format!("nskd-bearer-test-{}", std::process::id()))
            .join("tokens");
        let path = write_file(&dir, "t.token", &a).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(read_file(&path).unwrap(), a);
        // A second start replaces the leftover.
        write_file(&dir, "t.token", &b).unwrap();
        assert_eq!(read_file(&path).unwrap(), b);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
