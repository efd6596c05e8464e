//! Which charts a Helm write may use: `https://` and `oci://` references
//! under a `[helm] allowed_repositories` prefix, or a local chart under a
//! `[helm] chart_dirs` directory. Everything else is refused before helm runs.

use std::path::{Component, Path, PathBuf};

use crate::config::HelmConfig;

/// Longest chart reference accepted, bytes.
pub const MAX_CHART_REF_BYTES: usize = 1024;

/// A chart reference that passed the allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartRef {
    /// `oci://registry/path/chart` or `https://host/path/chart-1.0.0.tgz`.
    Remote(String),
    /// A chart directory or archive under one of `[helm] chart_dirs`.
    Local(PathBuf),
}

impl ChartRef {
    /// The argument helm is given.
    pub fn as_arg(&self) -> &std::ffi::OsStr {
        match self {
            ChartRef::Remote(s) => s.as_ref(),
            ChartRef::Local(p) => p.as_os_str(),
        }
    }
}

/// Why a chart reference is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// Not a shape helm may be given.
    #[error(
        "argument `chart` {shown} is not a chart reference: {rule}; give an oci:// or https:// reference or an absolute path under [helm] chart_dirs"
    )]
    Malformed {
        /// The value, quoted and escaped.
        shown: String,
        /// What is wrong.
        rule: &'static str,
    },
    /// A remote reference outside every allowed prefix.
    #[error(
        "chart {shown} is not under [helm] allowed_repositories ({allowed}); nothing was run. Use a chart from an allowed repository or ask the operator to add its prefix"
    )]
    NotAllowed {
        /// The value, quoted and escaped.
        shown: String,
        /// The allowed prefixes, or "none".
        allowed: String,
    },
    /// A local path outside every chart directory (or missing).
    #[error(
        "local chart {shown} is not under [helm] chart_dirs ({allowed}) or does not exist; nothing was run"
    )]
    NotInChartDirs {
        /// The value, quoted and escaped.
        shown: String,
        /// The chart directories, or "none".
        allowed: String,
    },
}

/// Checks `chart` against the `[helm]` allowlist.
pub fn resolve(chart: &str, config: &HelmConfig) -> Result<ChartRef, ChartError> {
    let shown = crate::request::names::shown(chart);
    let malformed = |rule| ChartError::Malformed {
        shown: shown.clone(),
        rule,
    };
    if chart.is_empty() || chart.len() > MAX_CHART_REF_BYTES {
        return Err(malformed("it must be 1 to 1024 bytes"));
    }
    if chart
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || crate::request::names::is_invisible(c))
    {
        return Err(malformed(
            "it must not hold spaces, control or invisible characters",
        ));
    }
    if chart.starts_with('-') {
        return Err(malformed("it must not start with '-'"));
    }
    if chart.starts_with("oci://") || chart.starts_with("https://") {
        if chart.contains(['%', '\\', '?', '#', '@']) {
            return Err(malformed(
                "a remote reference must not hold '%', '\\', '?', '#' or '@'",
            ));
        }
        if chart.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(malformed(
                "a remote reference must not hold '.' or '..' segments",
            ));
        }
        let allowed = config
            .allowed_repositories
            .iter()
            .any(|prefix| under_prefix(chart, prefix));
        return if allowed {
            Ok(ChartRef::Remote(chart.to_owned()))
        } else {
            Err(ChartError::NotAllowed {
                shown,
                allowed: listed(config.allowed_repositories.iter().map(String::as_str)),
            })
        };
    }
    if chart.contains("://") {
        return Err(malformed("only oci:// and https:// references are allowed"));
    }
    let path = Path::new(chart);
    if !path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(malformed(
            "a local chart must be an absolute path without '..'",
        ));
    }
    let not_in_dirs = || ChartError::NotInChartDirs {
        shown: shown.clone(),
        allowed: listed(config.chart_dirs.iter().filter_map(|d| d.to_str())),
    };
    // Symlinks are resolved before the check, so a link cannot lead out.
    let real = path.canonicalize().map_err(|_| not_in_dirs())?;
    let inside = config.chart_dirs.iter().any(|dir| {
        dir.canonicalize()
            .is_ok_and(|d| real.starts_with(&d) && real != d)
    });
    if inside {
        Ok(ChartRef::Local(real))
    } else {
        Err(not_in_dirs())
    }
}

/// Whether `chart` is `prefix` itself or below it at a `/` boundary
/// (`https://a/stable` allows `https://a/stable/x`, not `https://a/stable-evil`).
fn under_prefix(chart: &str, prefix: &str) -> bool {
    let Some(rest) = chart.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')
}

fn listed<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none configured".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(repos: &[&str], dirs: &[&Path]) -> HelmConfig {
        HelmConfig {
            helm_path: "helm".into(),
            allowed_repositories: repos.iter().map(|s| s.to_string()).collect(),
            chart_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn remote_charts_need_an_allowed_prefix_at_a_slash() {
        let c = config(
            &[
                "https://charts.example.com/stable",
                "oci://reg.example.com/",
            ],
            &[],
        );
        assert_eq!(
            resolve("https://charts.example.com/stable/web-1.0.0.tgz", &c),
            Ok(ChartRef::Remote(
                "https://charts.example.com/stable/web-1.0.0.tgz".into()
            ))
        );
        assert!(resolve("oci://reg.example.com/charts/web", &c).is_ok());
        for bad in [
            "https://charts.example.com/stable-evil/web",
            "https://charts.example.com.evil.io/stable/web",
            "oci://evil.example.com/web",
            "http://charts.example.com/stable/web",
        ] {
            assert!(
                matches!(
                    resolve(bad, &c),
                    Err(ChartError::NotAllowed { .. } | ChartError::Malformed { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn disguised_and_injected_references_are_refused() {
        let c = config(&["https://charts.example.com/stable"], &[]);
        for bad in [
            "--post-renderer=/bin/sh",
            "-f",
            "--kubeconfig=/etc/passwd",
            "https://charts.example.com/stable/../../evil/web",
            "https://charts.example.com/stable/%2e%2e/evil",
            "https://charts.example.com/stable@evil.io/web",
            "https://charts.example.com/stable/web\n--debug",
            "https://charts.example.com/stable/w\u{200b}eb",
            "file:///etc/passwd",
            "web",
            "",
        ] {
            assert!(
                matches!(resolve(bad, &c), Err(ChartError::Malformed { .. })),
                "{bad:?}"
            );
        }
        let huge = format!("https://charts.example.com/stable/{}", "a".repeat(2000));
        assert!(resolve(&huge, &c).is_err());
    }

    #[test]
    fn local_charts_only_under_chart_dirs_even_through_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = tmp.path().join("charts");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(dirs.join("web")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dirs.join("link")).unwrap();
        let c = config(&[], &[&dirs]);
        let ok = resolve(dirs.join("web").to_str().unwrap(), &c).unwrap();
        assert_eq!(
            ok,
            ChartRef::Local(dirs.join("web").canonicalize().unwrap())
        );
        for bad in [
            outside.clone(),
            dirs.join("link"),
            dirs.clone(),
            dirs.join("missing"),
        ] {
            assert!(
                matches!(
                    resolve(bad.to_str().unwrap(), &c),
                    Err(ChartError::NotInChartDirs { .. })
                ),
                "{bad:?}"
            );
        }
        let dotted = format!("{}/web/../../outside", dirs.display());
        assert!(matches!(
            resolve(&dotted, &c),
            Err(ChartError::Malformed { .. })
        ));
        assert!(matches!(
            resolve("charts/web", &c),
            Err(ChartError::Malformed { .. })
        ));
        let none = config(&[], &[]);
        assert!(resolve(dirs.join("web").to_str().unwrap(), &none).is_err());
    }
}
