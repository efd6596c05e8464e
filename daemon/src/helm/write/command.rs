//! helm's argv, built from validated values only: flags first, then `--`,
//! then the positional arguments, so no value can be read as a flag.
//! Values reach helm as a file (`--values FILE`), never as `--set`.

use std::{ffi::OsString, path::Path, time::Duration};

use super::chart::ChartRef;
use crate::request::names::{InvalidInput, Namespace, ReleaseName};

/// Longest values document accepted, bytes.
pub const MAX_VALUES_BYTES: usize = 256 * 1024;

/// A chart version: letters, digits, `.`, `+`, `-`, not starting with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartVersion(String);

impl ChartVersion {
    /// The version as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && !value.starts_with('-')
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidInput::new(
                field,
                value,
                "must be a chart version such as \"1.2.3\": letters, digits, '.', '+' and '-', not starting with '-'",
            ))
        }
    }
}

/// What an error shows instead of a values document (it may hold secrets).
const VALUES_NOT_SHOWN: &str = "(values not shown)";

/// Checks a values document: YAML whose top is a mapping (or empty), at
/// most [`MAX_VALUES_BYTES`]. Returns it unchanged, to be written to a
/// file. Errors never quote it (values may hold credentials).
pub fn check_values(field: &str, yaml: &str) -> Result<String, InvalidInput> {
    if yaml.len() > MAX_VALUES_BYTES {
        return Err(InvalidInput::new(
            field,
            VALUES_NOT_SHOWN,
            "is larger than 256 KiB; pass only the values that differ from the chart's defaults",
        ));
    }
    match yaml_serde::from_str::<yaml_serde::Value>(yaml) {
        Ok(yaml_serde::Value::Mapping(_) | yaml_serde::Value::Null) => Ok(yaml.to_owned()),
        Ok(_) => Err(InvalidInput::new(
            field,
            VALUES_NOT_SHOWN,
            "must be a YAML mapping such as \"replicaCount: 2\"",
        )),
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!(" at line {}, column {}", l.line(), l.column()))
                .unwrap_or_default();
            Err(InvalidInput::new(
                field,
                VALUES_NOT_SHOWN,
                format!("is not valid YAML{at}; fix the document and call again"),
            ))
        }
    }
}

/// One Helm write.
#[derive(Debug, Clone)]
pub enum Action {
    /// `helm install`.
    Install {
        /// Release.
        release: ReleaseName,
        /// Allowed chart.
        chart: ChartRef,
        /// Chart version (`None`: the latest).
        version: Option<ChartVersion>,
    },
    /// `helm upgrade`.
    Upgrade {
        /// Release.
        release: ReleaseName,
        /// Allowed chart.
        chart: ChartRef,
        /// Chart version (`None`: the latest).
        version: Option<ChartVersion>,
    },
    /// `helm rollback`.
    Rollback {
        /// Release.
        release: ReleaseName,
        /// Revision to return to (`None`: the previous one).
        revision: Option<u32>,
    },
    /// `helm uninstall`.
    Uninstall {
        /// Release.
        release: ReleaseName,
    },
}

impl Action {
    /// The operation word (`[safety] confirm`, audit, plans).
    pub fn operation(&self) -> &'static str {
        match self {
            Action::Install { .. } => "helm_install",
            Action::Upgrade { .. } => "helm_upgrade",
            Action::Rollback { .. } => "helm_rollback",
            Action::Uninstall { .. } => "helm_uninstall",
        }
    }

    /// The release acted on.
    pub fn release(&self) -> &ReleaseName {
        match self {
            Action::Install { release, .. }
            | Action::Upgrade { release, .. }
            | Action::Rollback { release, .. }
            | Action::Uninstall { release } => release,
        }
    }
}

/// Files and limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunFiles<'a> {
    /// The private kubeconfig.
    pub kubeconfig: &'a Path,
    /// The private values file, when values were given.
    pub values: Option<&'a Path>,
    /// Helm's own per-operation timeout.
    pub timeout: Duration,
}

/// helm's argv for `action` in `namespace`.
pub fn argv(
    action: &Action,
    namespace: &Namespace,
    files: RunFiles<'_>,
    dry_run: bool,
) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    match action {
        Action::Install { .. } => push("install"),
        Action::Upgrade { .. } => push("upgrade"),
        Action::Rollback { .. } => push("rollback"),
        Action::Uninstall { .. } => push("uninstall"),
    }
    a.push("--kubeconfig".into());
    a.push(files.kubeconfig.into());
    a.push(format!("--namespace={namespace}").into());
    a.push(format!("--timeout={}s", files.timeout.as_secs().max(1)).into());
    match action {
        Action::Install { version, .. } | Action::Upgrade { version, .. } => {
            a.push("--output=json".into());
            if let Some(v) = version {
                a.push(format!("--version={}", v.0).into());
            }
            if let Some(values) = files.values {
                a.push("--values".into());
                a.push(values.into());
            }
            if dry_run {
                a.push("--dry-run=server".into());
            }
        }
        // helm v4: rollback's --dry-run takes a mode, uninstall's is a switch.
        Action::Rollback { .. } => {
            if dry_run {
                a.push("--dry-run=server".into());
            }
        }
        Action::Uninstall { .. } => {
            if dry_run {
                a.push("--dry-run".into());
            }
        }
    }
    a.push("--".into());
    match action {
        Action::Install { release, chart, .. } | Action::Upgrade { release, chart, .. } => {
            a.push(release.as_ref().into());
            a.push(chart.as_arg().into());
        }
        Action::Rollback { release, revision } => {
            a.push(release.as_ref().into());
            if let Some(r) = revision {
                a.push(r.to_string().into());
            }
        }
        Action::Uninstall { release } => a.push(release.as_ref().into()),
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> RunFiles<'static> {
        RunFiles {
            kubeconfig: Path::new("/run/k/kubeconfig"),
            values: Some(Path::new("/run/k/values.yaml")),
            timeout: Duration::from_secs(90),
        }
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn install_puts_every_value_after_the_end_of_flags() {
        let action = Action::Install {
            release: ReleaseName::parse("name", "web").unwrap(),
            chart: ChartRef::Remote("oci://reg.example.com/web".into()),
            version: Some(ChartVersion::parse("version", "1.2.3").unwrap()),
        };
        let ns = Namespace::parse("namespace", "apps").unwrap();
        assert_eq!(
            strs(argv(&action, &ns, files(), true)),
            [
                "install",
                "--kubeconfig",
                "/run/k/kubeconfig",
                "--namespace=apps",
                "--timeout=90s",
                "--output=json",
                "--version=1.2.3",
                "--values",
                "/run/k/values.yaml",
                "--dry-run=server",
                "--",
                "web",
                "oci://reg.example.com/web",
            ]
        );
        assert_eq!(action.operation(), "helm_install");
    }

    #[test]
    fn rollback_and_uninstall_take_only_the_release() {
        let ns = Namespace::parse("namespace", "apps").unwrap();
        let release = ReleaseName::parse("name", "web").unwrap();
        let rb = Action::Rollback {
            release: release.clone(),
            revision: Some(2),
        };
        let tail = strs(argv(&rb, &ns, files(), false));
        assert_eq!(&tail[tail.len() - 3..], ["--", "web", "2"]);
        let dry = strs(argv(&rb, &ns, files(), true));
        assert_eq!(
            &dry[dry.len() - 4..],
            ["--dry-run=server", "--", "web", "2"]
        );
        assert!(!tail.iter().any(|a| a.contains("values")));
        let un = Action::Uninstall { release };
        let un_argv = strs(argv(&un, &ns, files(), true));
        assert_eq!(&un_argv[un_argv.len() - 3..], ["--dry-run", "--", "web"]);
    }

    #[test]
    fn no_value_can_become_a_flag() {
        for bad in ["--post-renderer", "-f", "--kubeconfig=/x", "-web"] {
            assert!(ReleaseName::parse("name", bad).is_err(), "{bad}");
            assert!(ChartVersion::parse("version", bad).is_err(), "{bad}");
            assert!(Namespace::parse("namespace", bad).is_err(), "{bad}");
        }
        assert!(ChartVersion::parse("version", "1.0.0 --debug").is_err());
        assert!(ChartVersion::parse("version", &"1".repeat(65)).is_err());
        assert!(ChartVersion::parse("version", "1.0.0-rc.1+build.5").is_ok());
    }

    #[test]
    fn values_must_be_a_bounded_yaml_mapping() {
        assert!(check_values("values", "replicaCount: 2\nimage:\n  tag: v1\n").is_ok());
        assert!(check_values("values", "").is_ok());
        assert!(check_values("values", "- a\n- b\n").is_err());
        assert!(check_values("values", "a: [unclosed").is_err());
        let huge = format!("a: \"{}\"", "x".repeat(MAX_VALUES_BYTES));
        assert!(check_values("values", &huge).is_err());
        let err = check_values("values", "password: hunter2\n- broken").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
