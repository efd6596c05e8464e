//! Checks beyond parsing, for `nskd check-config`: directories that must
//! exist and be private, files that must be readable.

use std::{os::unix::fs::MetadataExt, path::Path};

use crate::config::{Config, Problem, Severity, SourceKind};

fn problem(field: &str, severity: Severity, message: String) -> Problem {
    Problem {
        field: field.to_string(),
        message,
        severity,
    }
}

/// Everything that can be checked on this machine without contacting a
/// cluster or Rancher.
pub fn runtime_checks(config: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(dir) = &config.kubeconfig_dir {
        check_dir(dir, config.nsk.source != SourceKind::Directory, &mut out);
    }
    if let Some(file) = &config.kubeconfig
        && let Err(e) = std::fs::File::open(file)
    {
        out.push(problem(
            "kubeconfig",
            Severity::Error,
            format!("cannot read {}: {e}", file.display()),
        ));
    }
    if let Some(tf) = &config.nsk.rancher_token_file {
        match std::fs::metadata(tf) {
            Err(e) => out.push(problem(
                "nsk.rancher_token_file",
                Severity::Error,
                format!("cannot read {}: {e}", tf.display()),
            )),
            Ok(m) if m.mode() & 0o077 != 0 => out.push(problem(
                "nsk.rancher_token_file",
                Severity::Warning,
                format!(
                    "{} has mode {:04o}: others can read the token; run `chmod 600 {}`",
                    tf.display(),
                    m.mode() & 0o7777,
                    tf.display()
                ),
            )),
            Ok(_) => {}
        }
    }
    if config.nsk.source != SourceKind::Directory
        && config.nsk.rancher_token.is_none()
        && config.nsk.rancher_token_file.is_none()
        && config.nsk.source == SourceKind::Rancher
    {
        out.push(problem(
            "nsk.rancher_token",
            Severity::Error,
            "the rancher source needs a token: set RANCHER_TOKEN, [nsk] rancher_token = \"${VAR}\" or rancher_token_file".into(),
        ));
    }
    out
}

fn check_dir(dir: &Path, must_write: bool, out: &mut Vec<Problem>) {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let severity = if must_write {
                Severity::Warning
            } else {
                Severity::Error
            };
            let hint = if must_write {
                "it will be created (mode 0700) on the first refresh"
            } else {
                "create it, or fix kubeconfig_dir"
            };
            out.push(problem(
                "kubeconfig_dir",
                severity,
                format!("{} does not exist; {hint}", dir.display()),
            ));
        }
        Err(e) => out.push(problem(
            "kubeconfig_dir",
            Severity::Error,
            format!("cannot inspect {}: {e}", dir.display()),
        )),
        Ok(m) if !m.is_dir() => out.push(problem(
            "kubeconfig_dir",
            Severity::Error,
            format!("{} is not a directory", dir.display()),
        )),
        Ok(m) => {
            if m.mode() & 0o077 != 0 {
                out.push(problem(
                    "kubeconfig_dir",
                    Severity::Warning,
                    format!(
                        "{} has mode {:04o}: other users may read kubeconfigs; run `chmod 700 {}`",
                        dir.display(),
                        m.mode() & 0o7777,
                        dir.display()
                    ),
                ));
            }
            if must_write {
                let probe = dir.join(".nskd-write-test");
                match std::fs::write(&probe, b"") {
                    Ok(()) => {
                        let _ = std::fs::remove_file(&probe);
                    }
                    Err(e) => out.push(problem(
                        "kubeconfig_dir",
                        Severity::Error,
                        format!("{} is not writable: {e}", dir.display()),
                    )),
                }
            }
        }
    }
}
