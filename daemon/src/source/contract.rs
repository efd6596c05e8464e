//! Parsers for the `nsk` CLI's outputs (docs/nsk-contract.md), tested
//! against the fixtures in daemon/tests/fixtures/nsk/.

use std::time::SystemTime;

use serde::Deserialize;

use super::RemoteCluster;
use crate::error::ErrorKind;

/// nsk printed something the contract (docs/nsk-contract.md) does not
/// allow; the message quotes what and names the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unexpected(pub String);

impl From<Unexpected> for super::SourceError {
    fn from(e: Unexpected) -> Self {
        super::SourceError::new(ErrorKind::Internal, e.0)
    }
}

/// One entry of `nsk cluster list --output json`.
#[derive(Debug, Deserialize)]
struct ListedJson {
    id: String,
    name: String,
    #[serde(default)]
    state: String,
    #[serde(default, rename = "kubernetesVersion")]
    kubernetes_version: String,
}

/// Parses `nsk cluster list --output json`.
pub fn parse_list_json(stdout: &str) -> Result<Vec<RemoteCluster>, Unexpected> {
    let listed: Vec<ListedJson> = serde_json::from_str(stdout.trim())
        .map_err(|e| Unexpected(format!("`nsk cluster list --output json` printed something that is not the expected JSON array ({e})")))?;
    Ok(listed
        .into_iter()
        .map(|l| RemoteCluster {
            id: l.id,
            name: l.name,
            state: l.state,
            version: l.kubernetes_version,
        })
        .collect())
}

/// Parses the table of an old `nsk cluster list` (header `ID NAME STATE
/// PROVIDER VERSION`, columns separated by whitespace).
pub fn parse_list_table(stdout: &str) -> Result<Vec<RemoteCluster>, Unexpected> {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| Unexpected("`nsk cluster list` printed nothing".into()))?
        .split_whitespace()
        .map(str::to_uppercase)
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(id), Some(name)) = (col("ID"), col("NAME")) else {
        return Err(Unexpected(format!(
            "`nsk cluster list` printed a table without ID and NAME columns (header: {})",
            header.join(" ")
        )));
    };
    let (state, version) = (col("STATE"), col("VERSION"));
    let mut out = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let cell = |i: Option<usize>| {
            i.and_then(|i| cells.get(i))
                .map(|s| s.to_string())
                .unwrap_or_default()
        };
        if cells.len() <= id.max(name) {
            return Err(Unexpected(format!(
                "`nsk cluster list` printed a row with missing columns: {line:?}"
            )));
        }
        out.push(RemoteCluster {
            id: cell(Some(id)),
            name: cell(Some(name)),
            state: cell(state),
            version: cell(version),
        });
    }
    Ok(out)
}

/// The message of a failed run: the last `Error: ` line of stderr (debug
/// output may precede it), else all of stderr, else stdout, on one line.
pub fn error_message(stdout: &str, stderr: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let last_error = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("Error: "));
    crate::kubeconfig::one_line(last_error.unwrap_or(text).trim())
}

/// Whether `nsk cluster list --output json` failed because this nsk is too
/// old to know `--output`.
pub fn is_unknown_output_flag(stderr: &str) -> bool {
    stderr.contains("unknown flag") && stderr.contains("--output")
}

/// What `nsk auth verify` says of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    /// Rancher user.
    pub user: String,
    /// Token expiry; `None` = never.
    pub expires: Option<SystemTime>,
}

/// Parses `nsk auth verify`'s success line.
pub fn parse_auth_verify(stdout: &str) -> Result<AuthInfo, Unexpected> {
    let line = stdout
        .lines()
        .find(|l| l.contains("Token is valid"))
        .ok_or_else(|| {
            Unexpected(format!(
                "`nsk auth verify` printed an unexpected answer: {:?}",
                crate::kubeconfig::one_line(stdout)
            ))
        })?;
    let field = |key: &str| {
        line.split(['(', ',', ')'])
            .map(str::trim)
            .find_map(|part| part.strip_prefix(key).map(str::trim).map(str::to_string))
    };
    let user = field("user:").unwrap_or_default();
    let expires = match field("expires:").as_deref() {
        None | Some("never") | Some("") => None,
        Some(t) => Some(humantime::parse_rfc3339(t).map_err(|e| {
            Unexpected(format!("`nsk auth verify` printed a bad expiry {t:?}: {e}"))
        })?),
    };
    Ok(AuthInfo { user, expires })
}

/// One line of bulk `nsk cluster kubeconfig` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkLine {
    /// `Saved kubeconfig for NAME to PATH`.
    Saved {
        /// Cluster.
        name: String,
        /// File written by nsk.
        path: String,
    },
    /// `Failed to get kubeconfig for NAME: REASON`.
    Failed {
        /// Cluster.
        name: String,
        /// Why.
        reason: String,
        /// The kind of `reason` ([`classify`]).
        kind: ErrorKind,
    },
}

/// Parses bulk-mode stdout and stderr lines.
pub fn parse_bulk(stdout: &str, stderr: &str) -> Vec<BulkLine> {
    let saved = stdout.lines().filter_map(|l| {
        let rest = l.trim().strip_prefix("Saved kubeconfig for ")?;
        let (name, path) = rest.split_once(" to ")?;
        Some(BulkLine::Saved {
            name: name.trim().to_string(),
            path: path.trim().to_string(),
        })
    });
    let failed = stderr.lines().filter_map(|l| {
        let rest = l.trim().strip_prefix("Failed to get kubeconfig for ")?;
        let (name, reason) = rest.split_once(": ")?;
        Some(BulkLine::Failed {
            name: name.trim().to_string(),
            reason: reason.trim().to_string(),
            kind: classify(reason),
        })
    });
    saved.chain(failed).collect()
}

/// The kind of a failed nsk run, from its error text: text is all an
/// external CLI gives, so this is the one place a kind is read from words
/// (called once, where the runner gets the output).
pub fn classify(text: &str) -> ErrorKind {
    let t = text.to_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    // A bare "401" is not enough: ports such as 127.0.0.1:40123 contain it.
    if any(&[
        "unauthorized",
        "token expired",
        "token is expired",
        "invalid token",
        "must authenticate",
    ]) {
        ErrorKind::Unauthorized
    } else if t.contains("403 forbidden") {
        ErrorKind::Forbidden
    } else if any(&["timeout", "timed out", "deadline exceeded"]) {
        ErrorKind::Timeout
    } else if t.contains("connection refused") {
        ErrorKind::Refused
    } else if any(&["429", "too many requests", "rate limit"]) {
        ErrorKind::Throttled
    } else if any(&["x509", "certificate", "tls: "]) {
        ErrorKind::Tls
    } else if t.contains("no such host") {
        ErrorKind::Dns
    } else if any(&[
        "connection reset",
        "network is unreachable",
        "no route to host",
        "temporary failure",
        "try again",
        " 500 ",
        " 502 ",
        " 503 ",
        " 504 ",
        "internal server error",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
        "eof",
    ]) {
        ErrorKind::Unavailable
    } else if t.contains("not found") {
        ErrorKind::NotFound
    } else {
        ErrorKind::Internal
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/nsk/",
                $name
            ))
        };
    }

    #[test]
    fn json_and_table_lists_agree() {
        let json = parse_list_json(fixture!("cluster-list.json")).unwrap();
        let table = parse_list_table(fixture!("cluster-list.txt")).unwrap();
        assert_eq!(json, table);
        assert_eq!(json.len(), 3);
        assert_eq!(json[0].name, "c1-sv5");
        assert_eq!(json[0].id, "c-m-8k2xq7dz");
        assert_eq!(json[2].state, "error");
        assert_eq!(json[1].version, "v1.28.9+rke2r1");
    }

    #[test]
    fn garbage_lists_are_errors_that_say_so() {
        assert!(
            parse_list_json("<html>oops</html>")
                .unwrap_err()
                .0
                .contains("not the expected JSON")
        );
        assert!(
            parse_list_table("what\never")
                .unwrap_err()
                .0
                .contains("without ID and NAME")
        );
        assert!(is_unknown_output_flag(fixture!(
            "cluster-list-unknown-flag.stderr"
        )));
    }

    #[test]
    fn auth_verify_lines() {
        let ok = parse_auth_verify(fixture!("auth-verify-ok.stdout")).unwrap();
        assert_eq!(ok.user, "alice");
        assert_eq!(
            ok.expires,
            Some(humantime::parse_rfc3339("2026-12-24T10:00:00Z").unwrap())
        );
        assert_eq!(
            parse_auth_verify(fixture!("auth-verify-never.stdout"))
                .unwrap()
                .expires,
            None
        );
        assert_eq!(
            classify(fixture!("auth-verify-expired.stderr")),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            classify(fixture!("auth-verify-invalid.stderr")),
            ErrorKind::Unauthorized
        );
    }

    #[test]
    fn bulk_output() {
        let lines = parse_bulk(
            fixture!("bulk-kubeconfig-partial.stdout"),
            fixture!("bulk-kubeconfig-partial.stderr"),
        );
        assert_eq!(lines.len(), 3);
        assert!(
            matches!(&lines[0], BulkLine::Saved { name, path } if name == "c1-sv5" && path.ends_with("c1-sv5.yaml"))
        );
        assert!(
            matches!(&lines[2], BulkLine::Failed { name, reason, kind: ErrorKind::Unavailable } if name == "c1-lax1" && reason.contains("500"))
        );
        assert_eq!(parse_bulk(fixture!("bulk-kubeconfig.stdout"), "").len(), 3);
    }

    /// A cluster as nsk could list it: table cells cannot be empty or hold
    /// whitespace.
    fn remote_cluster() -> impl Strategy<Value = RemoteCluster> {
        (
            "c-(m-)?[a-z0-9]{5,8}",
            "[a-z0-9][a-z0-9.-]{0,30}",
            "active|error|provisioning|updating|\\PC{1,8}",
            "v1\\.[0-9]{1,2}\\.[0-9]{1,2}(\\+rke2r[0-9])?",
        )
            .prop_filter("no whitespace in a cell", |(_, _, state, _)| {
                !state.contains(char::is_whitespace)
            })
            .prop_map(|(id, name, state, version)| RemoteCluster {
                id,
                name,
                state,
                version,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_output_never_panics(stdout in "\\PC*(\\n\\PC*){0,4}", stderr in "\\PC*(\\n\\PC*){0,4}") {
            let _ = parse_list_json(&stdout);
            let _ = parse_list_table(&stdout);
            let _ = parse_auth_verify(&stdout);
            let _ = parse_bulk(&stdout, &stderr);
            let _ = error_message(&stdout, &stderr);
            let _ = classify(&stderr);
        }

        #[test]
        fn table_like_output_never_panics(
            header in proptest::sample::subsequence(vec!["ID", "NAME", "STATE", "PROVIDER", "VERSION", "AGE"], 0..=6),
            rows in proptest::collection::vec(proptest::collection::vec("[a-z0-9-]{1,6}", 1..7), 0..6),
        ) {
            prop_assume!(!header.is_empty());
            let text = std::iter::once(header.join(" "))
                .chain(rows.iter().map(|r| r.join("   ")))
                .collect::<Vec<_>>()
                .join("\n");
            if let Ok(list) = parse_list_table(&text) {
                prop_assert_eq!(list.len(), rows.len());
            }
        }

        #[test]
        fn generated_json_lists_parse_back(clusters in proptest::collection::vec(remote_cluster(), 0..8), pretty in any::<bool>()) {
            let json: Vec<serde_json::Value> = clusters
                .iter()
                .map(|c| serde_json::json!({
                    "id": c.id,
                    "name": c.name,
                    "state": c.state,
                    "provider": "rke2",
                    "kubernetesVersion": c.version,
                }))
                .collect();
            let text = if pretty {
                serde_json::to_string_pretty(&json).unwrap() + "\n"
            } else {
                serde_json::to_string(&json).unwrap()
            };
            prop_assert_eq!(parse_list_json(&text).unwrap(), clusters);
        }

        #[test]
        fn generated_tables_parse_back(
            clusters in proptest::collection::vec(remote_cluster(), 0..8),
            gaps in proptest::collection::vec(1usize..6, 5),
            lowercase in any::<bool>(),
            blank_lines in any::<bool>(),
        ) {
            let row = |cells: [&str; 5]| {
                cells
                    .iter()
                    .zip(&gaps)
                    .map(|(c, g)| format!("{c}{}", " ".repeat(*g)))
                    .collect::<String>()
            };
            let header = row(["ID", "NAME", "STATE", "PROVIDER", "VERSION"]);
            let mut lines = vec![if lowercase { header.to_lowercase() } else { header }];
            for c in &clusters {
                lines.push(row([&c.id, &c.name, &c.state, "rke2", &c.version]));
                if blank_lines {
                    lines.push("  ".into());
                }
            }
            prop_assert_eq!(parse_list_table(&lines.join("\n")).unwrap(), clusters);
        }

        #[test]
        fn generated_bulk_lines_parse_back(
            saved in proptest::collection::vec(("[a-z0-9][a-z0-9.-]{0,20}", "/[a-z0-9/._-]{1,40}"), 0..6),
            failed in proptest::collection::vec(("[a-z0-9][a-z0-9.-]{0,20}", "[!-~][ -~]{0,39}"), 0..6),
            noise in "(DEBUG [ -~]{0,20}\\n){0,3}",
        ) {
            let stdout: String = saved.iter().map(|(n, p)| format!("Saved kubeconfig for {n} to {p}\n")).collect();
            let stderr: String = failed
                .iter()
                .map(|(n, r)| format!("{noise}Failed to get kubeconfig for {n}: {r}\n"))
                .collect();
            let expected: Vec<BulkLine> = saved
                .iter()
                .map(|(n, p)| BulkLine::Saved { name: n.clone(), path: p.clone() })
                .chain(failed.iter().map(|(n, r)| BulkLine::Failed { name: n.clone(), reason: r.trim().to_string(), kind: classify(r) }))
                .collect();
            prop_assert_eq!(parse_bulk(&stdout, &stderr), expected);
        }

        #[test]
        fn generated_auth_verify_lines_parse_back(
            user in "[a-z][a-z0-9.@_-]{0,20}",
            expires in proptest::option::of(0u64..253_402_300_799),
        ) {
            let expires = expires.map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
            let when = expires
                .map(|t| humantime::format_rfc3339_seconds(t).to_string())
                .unwrap_or_else(|| "never".into());
            let line = format!("Token is valid (user: {user}, rancher: https://r.example.com, expires: {when})\n");
            prop_assert_eq!(parse_auth_verify(&line).unwrap(), AuthInfo { user, expires });
        }
    }

    #[test]
    fn errors_are_classified() {
        for (f, kind) in [
            (fixture!("error-429.stderr"), ErrorKind::Throttled),
            (fixture!("error-503.stderr"), ErrorKind::Unavailable),
            (
                fixture!("error-connection-refused.stderr"),
                ErrorKind::Refused,
            ),
            (fixture!("error-timeout.stderr"), ErrorKind::Timeout),
            (
                fixture!("kubeconfig-cluster-error.stderr"),
                ErrorKind::Unavailable,
            ),
        ] {
            assert_eq!(classify(f), kind, "{f}");
            assert!(nskd_proto::error_kind::is_transient(kind), "{f}");
        }
        assert_eq!(
            classify(fixture!("kubeconfig-not-found.stderr")),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify("Error: unknown command \"frobnicate\""),
            ErrorKind::Internal
        );
        assert_eq!(
            classify(
                "Error: Get \"https://127.0.0.1:40123/v3/clusters\": dial tcp 127.0.0.1:40123: connect: connection refused"
            ),
            ErrorKind::Refused
        );
        assert_eq!(
            classify("Error: dial tcp: lookup rancher.invalid: no such host"),
            ErrorKind::Dns
        );
    }
}
