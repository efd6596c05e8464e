//! Private places on disk: directories only we can enter (ours, mode 0700)
//! and files opened without following symlinks. Shared by the daemon (lock,
//! audit and log files), the shim (token files) and every client (checks on
//! the socket's directory before anything is sent).

use std::{
    fs::{self, File, OpenOptions},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Why a directory or file is not private. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// The directory is a symlink.
    #[error(
        "refusing directory {dir}: it is a symlink; remove it (`rm {dir}`) so a private directory can be created there, or choose another path"
    )]
    DirSymlink {
        /// The directory.
        dir: PathBuf,
    },
    /// Not a directory.
    #[error("refusing {dir}: it is not a directory; move it away or choose another path")]
    NotADir {
        /// The path.
        dir: PathBuf,
    },
    /// Owned by another user.
    #[error(
        "refusing directory {dir}: it belongs to uid {owner}, not to this user (uid {uid}); another user may control what is in it: use a directory you own or run as uid {owner}"
    )]
    DirForeign {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// Readable or writable by group/other.
    #[error(
        "refusing directory {dir}: mode {mode:04o} lets other users in; run `chmod 700 {dir}` or choose another path"
    )]
    DirOpen {
        /// The directory.
        dir: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// A symlink sits where a file of ours should be.
    #[error(
        "refusing {path}: it is a symlink (someone may have planted it to redirect writes); remove it (`rm {path}`) or choose another path"
    )]
    FileSymlink {
        /// The file.
        path: PathBuf,
    },
    /// A file of another user sits where a file of ours should be.
    #[error(
        "refusing {path}: it belongs to uid {owner}, not to this user (uid {uid}); remove it or choose another path"
    )]
    FileForeign {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// Any other I/O failure.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The current user's uid.
pub fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PrivateError + 'a {
    move |source| PrivateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `meta` (of `dir`) is a directory of ours, mode 0700 or stricter.
pub fn check_dir_meta(dir: &Path, meta: &fs::Metadata) -> Result<(), PrivateError> {
    if meta.file_type().is_symlink() {
        return Err(PrivateError::DirSymlink {
            dir: dir.to_path_buf(),
        });
    }
    if !meta.is_dir() {
        return Err(PrivateError::NotADir {
            dir: dir.to_path_buf(),
        });
    }
    let uid = own_uid();
    if meta.uid() != uid {
        return Err(PrivateError::DirForeign {
            dir: dir.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PrivateError::DirOpen {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Checks (creating it 0700 if missing) that `dir` is a private directory
/// of ours and not a symlink.
pub fn ensure_dir(dir: &Path) -> Result<(), PrivateError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io("cannot create directory", dir))?;
            // DirBuilder's mode is filtered by the umask: make sure.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io("cannot set mode 0700 on", dir))?;
            let meta = fs::symlink_metadata(dir).map_err(io("cannot inspect directory", dir))?;
            check_dir_meta(dir, &meta)
        }
        Err(e) => Err(io("cannot inspect directory", dir)(e)),
        Ok(meta) => check_dir_meta(dir, &meta),
    }
}

/// Options that open `path` without following a symlink at its last
/// component (`O_NOFOLLOW`), creating it 0600.
fn nofollow() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    o
}

fn open_error(what: &'static str, path: &Path, e: std::io::Error) -> PrivateError {
    // O_NOFOLLOW on a symlink fails with ELOOP, O_EXCL with EEXIST.
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link || e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        PrivateError::FileSymlink {
            path: path.to_path_buf(),
        }
    } else {
        io(what, path)(e)
    }
}

/// Refuses an opened file that belongs to another user.
fn ours(path: &Path, file: &File) -> Result<(), PrivateError> {
    let meta = file.metadata().map_err(io("cannot inspect", path))?;
    let uid = own_uid();
    if meta.uid() != uid {
        return Err(PrivateError::FileForeign {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    Ok(())
}

/// Opens (creating 0600) `path` for appending, refusing a symlink or a
/// file of another user.
pub fn open_append(path: &Path) -> Result<File, PrivateError> {
    let file = nofollow()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| open_error("cannot open", path, e))?;
    ours(path, &file)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io("cannot set mode 0600 on", path))?;
    Ok(file)
}

/// Opens (creating 0600, not truncating) `path` for reading and writing,
/// refusing a symlink or a file of another user: lock files.
pub fn open_lock(path: &Path) -> Result<File, PrivateError> {
    let file = nofollow()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| open_error("cannot open lock file", path, e))?;
    ours(path, &file)?;
    Ok(file)
}

/// Creates `path` anew (0600, `O_EXCL|O_NOFOLLOW`) and writes `contents`;
/// an existing file or symlink there is an error.
pub fn create_new(path: &Path, contents: &[u8]) -> Result<(), PrivateError> {
    use std::io::Write;
    let mut file = nofollow()
        .create_new(true)
        .write(true)
        .open(path)
        .map_err(|e| open_error("cannot create", path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io("cannot write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "nskd-private-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        ensure_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn creates_0700_and_refuses_open_or_symlinked_dirs() {
        let base = tmp();
        let d = base.join("a/b");
        ensure_dir(&d).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&d, fs::Permissions::from_mode(0o750)).unwrap();
        let e = ensure_dir(&d).unwrap_err().to_string();
        assert!(e.contains("mode 0750") && e.contains("chmod 700"), "{e}");
        let link = base.join("link");
        std::os::unix::fs::symlink(&base, &link).unwrap();
        let e = ensure_dir(&link).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn files_refuse_symlinks() {
        let base = tmp();
        let target = base.join("target");
        fs::write(&target, "x").unwrap();
        let link = base.join("log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for e in [
            open_append(&link).unwrap_err(),
            open_lock(&link).unwrap_err(),
            create_new(&link, b"y").unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(e.contains("is a symlink") && e.contains("log"), "{e}");
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "x");
        let f = base.join("new");
        create_new(&f, b"secret").unwrap();
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert!(create_new(&f, b"again").is_err(), "O_EXCL");
        open_append(&f).unwrap();
        fs::remove_dir_all(&base).unwrap();
    }
}
