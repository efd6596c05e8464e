//! Checks beyond parsing, for `nskd check-config`: directories that must
//! exist and be private, files that must be readable.

use std::{os::unix::fs::MetadataExt, path::Path};

use crate::config::{Config, Problem, Severity, SourceKind};

/// A token file other users can read.
fn readable_token(field: &str, file: &std::path::Path, mode: u32) -> Problem {
    problem(
        field,
        Severity::Warning,
        format!(
            "{} has mode {:04o}: others can read the token; run `chmod 600 {}`",
            file.display(),
            mode & 0o7777,
            file.display()
        ),
    )
}

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
            Ok(m) if m.mode() & 0o077 != 0 => {
                out.push(readable_token("nsk.rancher_token_file", tf, m.mode()))
            }
            Ok(_) => {}
        }
    }
    if config.server.http_token_file.is_some()
        && let Err(e) = config.server.http_bearer()
    {
        out.push(problem("server.http_token_file", Severity::Error, e));
    } else if let Some(tf) = &config.server.http_token_file
        && let Ok(m) = std::fs::metadata(tf)
        && m.mode() & 0o077 != 0
    {
        out.push(readable_token("server.http_token_file", tf, m.mode()));
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
    if config.nsk.source == SourceKind::Nsk {
        check_nsk(config, &mut out);
    }
    check_default_cluster(config, &mut out);
    check_kubeconfig_trust(config, &mut out);
    out
}

/// Kubeconfig files nskd will refuse (owner, mode, exec plugins without
/// `[safety] allow_exec_plugins`, fields a fetched kubeconfig may not
/// carry): their clusters would show as Unknown.
fn check_kubeconfig_trust(config: &Config, out: &mut Vec<Problem>) {
    use crate::kubeconfig::trust::{Trust, check_file, check_file_context};
    let mut files: Vec<(&str, std::path::PathBuf, Trust)> = Vec::new();
    if let Some(dir) = &config.kubeconfig_dir {
        for path in crate::discovery::kubeconfig_files(dir).unwrap_or_default() {
            files.push(("kubeconfig_dir", path, Trust::of_dir(config)));
        }
    }
    if let Some(file) = &config.kubeconfig {
        files.push(("kubeconfig", file.clone(), Trust::local(config)));
    }
    for (field, path, trust) in files {
        let Ok(file) = crate::kubeconfig::read(&path) else {
            continue;
        };
        let refused = check_file(&file, &trust).err().or_else(|| {
            file.context_names()
                .iter()
                .find_map(|c| check_file_context(&file, &trust, c).err())
        });
        if let Some(e) = refused {
            out.push(problem(
                field,
                Severity::Warning,
                format!("{e}; its cluster will show as Unknown"),
            ));
        }
    }
}

/// The nsk binary: found, executable, and answering `nsk version`.
fn check_nsk(config: &Config, out: &mut Vec<Problem>) {
    let program = &config.nsk.nsk_path;
    let path = if program.contains('/') {
        Some(std::path::PathBuf::from(program))
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    };
    let Some(path) = path.filter(|p| p.is_file()) else {
        out.push(problem(
            "nsk.nsk_path",
            Severity::Error,
            format!("nsk binary {program:?} not found (PATH is searched for a bare name); install nsk or set [nsk] nsk_path to its full path"),
        ));
        return;
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.mode() & 0o111 == 0 => {
            out.push(problem(
                "nsk.nsk_path",
                Severity::Error,
                format!(
                    "{} is not executable; run `chmod +x {}`",
                    path.display(),
                    path.display()
                ),
            ));
            return;
        }
        _ => {}
    }
    match answers(&path) {
        Ok(()) => {}
        Err(why) => out.push(problem(
            "nsk.nsk_path",
            Severity::Warning,
            format!("`{} version` {why}; check the installation", path.display()),
        )),
    }
    if config.nsk.rancher_token.is_none() && config.nsk.rancher_token_file.is_none() {
        out.push(problem(
            "nsk.rancher_token",
            Severity::Warning,
            "no Rancher token configured: nsk must then authenticate from its own profile (NSK_PROFILE); set RANCHER_TOKEN or [nsk] rancher_token to be sure".into(),
        ));
    }
    if let Some(dir) = &config.nsk.config_dir
        && dir.exists()
        && std::fs::metadata(dir).is_ok_and(|m| m.permissions().readonly())
    {
        out.push(problem(
            "nsk.config_dir",
            Severity::Error,
            format!(
                "{} is not writable; nsk writes its files there",
                dir.display()
            ),
        ));
    }
}

/// Runs `nsk version` with a 5 s limit.
fn answers(path: &Path) -> Result<(), String> {
    let mut child = std::process::Command::new(path)
        .arg("version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not answer within 5 s".into());
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// default_cluster must be among the discovered clusters (with a fetching
/// source it may only appear after the first refresh: a warning then).
fn check_default_cluster(config: &Config, out: &mut Vec<Problem>) {
    let Some(default) = &config.default_cluster else {
        return;
    };
    let scan = crate::discovery::Scanner::new(crate::discovery::ScanPlan::from_config(config))
        .scan(config, true);
    let names: Vec<&str> = scan.entries.iter().map(|e| e.name.as_str()).collect();
    if names.contains(&default.as_str()) {
        return;
    }
    let fetching = config.nsk.source != SourceKind::Directory;
    out.push(problem(
        "default_cluster",
        if fetching {
            Severity::Warning
        } else {
            Severity::Error
        },
        format!(
            "{default:?} is not among the discovered clusters ({}){}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            if fetching {
                "; it may appear after the first refresh"
            } else {
                "; fix default_cluster or add its kubeconfig"
            }
        ),
    ));
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
