//! Patterns that name kinds in the configuration (`denied_resources`,
//! `[safety] sensitive_kinds`), parsed once so that a pattern that can never
//! match is an error at start, not a silent hole.
//!
//! Accepted forms, `*` matching anything in its place:
//! `Kind` or `plural` (any group), `group/Kind`, `group/version/Kind`,
//! `version/Kind` (core group), `plural.group`, `plural.version.group`,
//! `plural.version` (core group); `core` names the empty group.

use std::fmt;

use crate::request::names::is_version;

/// The identity of a kind as a cluster serves it.
#[derive(Debug, Clone, Copy)]
pub struct KindId<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Version.
    pub version: &'a str,
    /// Kind (`Secret`).
    pub kind: &'a str,
    /// Plural resource (`secrets`); may be empty when unknown.
    pub plural: &'a str,
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPattern {
    text: String,
    group: Option<String>,
    version: Option<String>,
    name: Option<String>,
}

/// Why a pattern cannot match anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{pattern:?} can never match a kind: {why}; write Kind, group/Kind, group/version/Kind, plural.group or core/Kind (e.g. \"Secret\", \"rbac.authorization.k8s.io/ClusterRoleBinding\", \"deployments.apps\")"
)]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub why: String,
}

fn wild(s: &str) -> Option<String> {
    (s != "*").then(|| s.to_ascii_lowercase())
}

fn is_group(s: &str) -> bool {
    s == "*"
        || s == "core"
        || (!s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            }))
}

fn is_name(s: &str) -> bool {
    s == "*"
        || (s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl KindPattern {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let err = |why: &str| PatternError {
            pattern: text.to_string(),
            why: why.to_string(),
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(err("it is empty"));
        }
        let (group, version, name): (Option<&str>, Option<&str>, &str) = if t.contains('/') {
            match t.split('/').collect::<Vec<_>>().as_slice() {
                [first, name] if is_version(first) => (Some("core"), Some(first), name),
                // An empty group is the core group, as in `/v1/Secret`.
                [group, name] => (
                    Some(if group.is_empty() { "core" } else { group }),
                    None,
                    name,
                ),
                [group, version, name] => (
                    Some(if group.is_empty() { "core" } else { group }),
                    Some(version),
                    name,
                ),
                _ => return Err(err("it has more than three '/'-separated parts")),
            }
        } else if let Some((name, rest)) = t.split_once('.') {
            match rest.split_once('.') {
                Some((version, group)) if is_version(version) => (Some(group), Some(version), name),
                _ if is_version(rest) => (Some("core"), Some(rest), name),
                _ => (Some(rest), None, name),
            }
        } else {
            (None, None, t)
        };
        if !is_name(name) {
            return Err(err(&format!(
                "{name:?} is not a kind or plural name (letters and digits)"
            )));
        }
        if let Some(g) = group
            && !is_group(g)
        {
            return Err(err(&format!(
                "{g:?} is not an API group (lowercase DNS name, or core)"
            )));
        }
        if let Some(v) = version
            && v != "*"
            && !is_version(v)
        {
            return Err(err(&format!(
                "{v:?} is not an API version (v1, v1beta1, ...)"
            )));
        }
        Ok(Self {
            text: t.to_string(),
            group: group.and_then(|g| {
                if g == "core" {
                    Some(String::new())
                } else {
                    wild(g)
                }
            }),
            version: version.and_then(wild),
            name: wild(name),
        })
    }

    /// Parses every pattern, collecting all errors.
    pub fn parse_all(patterns: &[String]) -> Result<Vec<Self>, Vec<PatternError>> {
        let (ok, errors): (Vec<_>, Vec<_>) = patterns
            .iter()
            .map(|p| Self::parse(p))
            .partition(Result::is_ok);
        if errors.is_empty() {
            Ok(ok.into_iter().map(Result::unwrap).collect())
        } else {
            Err(errors.into_iter().map(Result::unwrap_err).collect())
        }
    }

    /// Whether this pattern names `id`.
    pub fn matches(&self, id: KindId<'_>) -> bool {
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w.eq_ignore_ascii_case(have))
        };
        eq(&self.group, id.group)
            && eq(&self.version, id.version)
            && (eq(&self.name, id.kind) || (!id.plural.is_empty() && eq(&self.name, id.plural)))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for KindPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: KindId<'static> = KindId {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
    };
    const CRB: KindId<'static> = KindId {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
    };
    const DEPLOY: KindId<'static> = KindId {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
    };

    fn matches(p: &str, id: KindId<'_>) -> bool {
        KindPattern::parse(p).unwrap().matches(id)
    }

    #[test]
    fn every_documented_form_matches() {
        for p in [
            "Secret",
            "secret",
            "secrets",
            "v1/Secret",
            "core/Secret",
            "core/v1/Secret",
            "secrets.v1",
            "*/Secret",
            "core/*/secrets",
            "Secret.core",
        ] {
            assert!(matches(p, SECRET), "{p}");
            assert!(!matches(p, DEPLOY), "{p}");
        }
        for p in [
            "rbac.authorization.k8s.io/ClusterRoleBinding",
            "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
            "clusterrolebindings.rbac.authorization.k8s.io",
            "clusterrolebindings.v1.rbac.authorization.k8s.io",
            "ClusterRoleBinding",
        ] {
            assert!(matches(p, CRB), "{p}");
            assert!(!matches(p, SECRET), "{p}");
        }
        for p in [
            "deployments.apps",
            "apps/Deployment",
            "apps/*/deployments",
            "*",
        ] {
            assert!(matches(p, DEPLOY), "{p}");
        }
        assert!(!matches("apps/Secret", SECRET));
        assert!(!matches("v2/Secret", SECRET));
    }

    #[test]
    fn patterns_that_cannot_match_are_errors() {
        for p in [
            "",
            "  ",
            "v1/",
            "a/b/c/d",
            "no/such/thing/here",
            "Se cret",
            "apps/v1x/Deployment",
            "Apps/Deployment",
            "secrets.",
            "se-crets",
        ] {
            let e = KindPattern::parse(p).unwrap_err();
            assert!(e.to_string().contains("can never match"), "{p}: {e}");
        }
        let errors =
            KindPattern::parse_all(&["Secret".into(), "a/b/c/d".into(), "".into()]).unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
