//! Names an agent sends, checked once into typed values: a value of these
//! types is safe to put in a URL path segment and names exactly one thing.
//!
//! ```
//! use nskd::request::names::Namespace;
//! assert!(Namespace::parse("namespace", "shop").is_ok());
//! let err = Namespace::parse("namespace", "shop/secrets?").unwrap_err();
//! assert!(err.to_string().contains("namespace"));
//! ```

use std::fmt;

/// An argument that breaks its rule: names the field, the value (escaped,
/// shortened) and the rule, so the caller can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {} ({rule}); nothing was sent to the cluster", shown(.value))]
pub struct InvalidInput {
    /// The argument, as the agent calls it (`namespace`, `name`, ...).
    pub field: String,
    /// The value as received.
    pub value: String,
    /// What a valid value looks like.
    pub rule: String,
}

impl InvalidInput {
    /// `field` holding `value` breaks `rule`.
    pub fn new(field: &str, value: &str, rule: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

/// Longest part of a bad value quoted back.
const SHOWN_CHARS: usize = 80;

/// `value` quoted with every control or non-ASCII character escaped, and
/// shortened, so that an error can never forge lines or hide text.
pub fn shown(value: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push_str(&format!("…\" ({} bytes)", value.len()));
            return out;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

const LABEL_RULE: &str = "must be an RFC 1123 label: lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit";
const SUBDOMAIN_RULE: &str = "must be an RFC 1123 subdomain: lowercase letters, digits, '-' and '.', at most 253 characters, each dot-separated part starting and ending with a letter or digit";
const OBJECT_NAME_RULE: &str = "must be one object name: at most 253 characters, no '/', '?', '#', '%', '\\', whitespace or control characters, and not \".\" or \"..\"";

/// `value` as `T` when `ok`, else the error naming `field` and `rule`.
fn checked<T>(
    field: &str,
    value: &str,
    ok: bool,
    rule: impl Into<String>,
    make: impl FnOnce(String) -> T,
) -> Result<T, InvalidInput> {
    if ok {
        Ok(make(value.to_string()))
    } else {
        Err(InvalidInput::new(field, value, rule))
    }
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The checked value.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// `None` for an empty value (the caller's default applies).
            pub fn optional(field: &str, value: &str) -> Result<Option<Self>, InvalidInput> {
                if value.is_empty() {
                    Ok(None)
                } else {
                    Self::parse(field, value).map(Some)
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A namespace: an RFC 1123 label.
    Namespace
);
name_type!(
    /// The name of one object: a single path segment.
    ObjectName
);
name_type!(
    /// A node name: an RFC 1123 subdomain (no port, no path).
    NodeName
);
name_type!(
    /// A container name: an RFC 1123 label.
    ContainerName
);
name_type!(
    /// A Helm release name: an RFC 1123 subdomain of at most 53 bytes
    /// (Helm's own rule; it is also a valid label value).
    ReleaseName
);
name_type!(
    /// A Helm chart name (a filter, never a path): letters, digits, `-`,
    /// `_` and `.`, at most 250 bytes.
    ChartName
);
name_type!(
    /// `v1` or `group/version`.
    ApiVersion
);
name_type!(
    /// A kind, plural or short name: letters and digits.
    KindName
);
name_type!(
    /// A label or field selector: printable, bounded (the API server parses it).
    Selector
);
name_type!(
    /// A file under the kubelet's `logs/` directory (relative, no `..`).
    NodeLogPath
);

impl Namespace {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        checked(field, value, is_label(value), LABEL_RULE, Self)
    }

    /// `default`, where namespaced objects go when none is named.
    pub fn default_namespace() -> Self {
        Self("default".into())
    }
}

impl ObjectName {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = !value.is_empty()
            && value.len() <= 253
            && value != "."
            && value != ".."
            && !value.chars().any(|c| {
                matches!(c, '/' | '?' | '#' | '%' | '\\')
                    || c.is_control()
                    || c.is_whitespace()
                    || is_invisible(c)
            });
        checked(field, value, ok, OBJECT_NAME_RULE, Self)
    }
}

/// Format characters that render as nothing (zero-width spaces, bidi
/// overrides): never part of a real name, often part of a disguise.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

impl NodeName {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        checked(field, value, is_subdomain(value), SUBDOMAIN_RULE, Self)
    }
}

impl ReleaseName {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        checked(
            field,
            value,
            value.len() <= 53 && is_subdomain(value),
            "must be a Helm release name: at most 53 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
            Self,
        )
    }
}

impl ChartName {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = !value.is_empty()
            && value.len() <= 250
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        checked(
            field,
            value,
            ok,
            "must be a chart name: letters, digits, '-', '_' and '.', e.g. \"nginx\"",
            Self,
        )
    }
}

impl ContainerName {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        checked(field, value, is_label(value), LABEL_RULE, Self)
    }
}

/// Whether `v` is a Kubernetes API version: `v1`, `v2beta1`, `v1alpha3`.
pub fn is_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.starts_with('0') {
        return false;
    }
    let tail = &rest[digits..];
    tail.is_empty()
        || ["alpha", "beta"].iter().any(|stage| {
            tail.strip_prefix(stage).is_some_and(|n| {
                !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())
            })
        })
}

impl ApiVersion {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = match value.split_once('/') {
            None => is_version(value),
            Some((group, version)) => is_subdomain(group) && is_version(version),
        };
        checked(
            field,
            value,
            ok,
            "must be an API version such as \"v1\", \"apps/v1\" or \"example.com/v1alpha1\"",
            Self,
        )
    }

    /// The group ("" for the core group).
    pub fn group(&self) -> &str {
        self.0.split_once('/').map(|(g, _)| g).unwrap_or("")
    }
}

impl KindName {
    /// Checks `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let b = value.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphabetic()
            && b.iter().all(u8::is_ascii_alphanumeric);
        checked(
            field,
            value,
            ok,
            "must be a kind, plural or short name: letters and digits, e.g. \"Deployment\", \"deployments\" or \"deploy\"",
            Self,
        )
    }
}

/// Longest selector accepted.
pub const MAX_SELECTOR_BYTES: usize = 4096;

impl Selector {
    /// Checks `value` of argument `field`: printable and bounded; its
    /// grammar is the API server's to judge (it is sent as a query value,
    /// encoded).
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let ok = value.len() <= MAX_SELECTOR_BYTES
            && !value.chars().any(|c| c.is_control() || is_invisible(c));
        checked(
            field,
            value,
            ok,
            format!(
                "must be a selector of at most {MAX_SELECTOR_BYTES} bytes without control characters, e.g. \"app=web,tier!=db\""
            ),
            Self,
        )
    }
}

impl Selector {
    /// `field=value` as a field selector term, the value escaped as the API
    /// server requires (`\\`, `,` and `=`).
    pub fn field_equals(field: &str, value: &str) -> String {
        let escaped = value
            .replace('\\', "\\\\")
            .replace(',', "\\,")
            .replace('=', "\\=");
        format!("{field}={escaped}")
    }

    /// This selector and `term`, both required.
    pub fn and(selector: Option<&Selector>, term: String) -> Selector {
        match selector {
            Some(s) => Self(format!("{},{term}", s.0)),
            None => Self(term),
        }
    }
}

/// Longest cluster name accepted (longer ones cannot name a cluster).
pub const MAX_CLUSTER_NAME_BYTES: usize = 253;

/// Checks a cluster name an agent sent: bounded, printable. Whether the
/// cluster exists is the registry's to say.
pub fn check_cluster(field: &str, value: &str) -> Result<(), InvalidInput> {
    let ok = !value.is_empty()
        && value.len() <= MAX_CLUSTER_NAME_BYTES
        && !value.chars().any(|c| c.is_control() || is_invisible(c));
    checked(
        field,
        value,
        ok,
        format!(
            "must be a cluster name of at most {MAX_CLUSTER_NAME_BYTES} bytes without control characters; clusters_list shows them"
        ),
        |_| (),
    )
}

impl NodeLogPath {
    /// Checks `value` of argument `field`: `""` for the list, else a
    /// relative path of `[A-Za-z0-9._-]` segments, none `.` or `..`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        let path = value;
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.len() <= 255
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        let body = path.strip_suffix('/').unwrap_or(path);
        let ok = path.len() <= 1024
            && !path.starts_with('/')
            && (body.is_empty() || body.split('/').all(segment_ok));
        checked(
            field,
            value,
            ok,
            "must be a file under the node's log directory such as \"kubelet.log\" or \"pods/\": segments of letters, digits, '.', '_' and '-', no \"..\"",
            |_| Self(path.to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOSTILE: &[&str] = &[
        "shop/secrets?",
        "shop/secrets/db-credentials?",
        "scratch?",
        "..",
        ".",
        "%2e%2e",
        "a%2Fb",
        "x#frag",
        "a\nb",
        "a\u{0}",
        "\u{1b}[31m",
        " ",
        "a b",
        "a\\b",
        "x\u{200b}",
        "a\u{202e}b",
    ];

    #[test]
    fn namespaces_are_labels() {
        for ok in ["shop", "a", "kube-system", "a1", &"a".repeat(63)] {
            assert!(Namespace::parse("namespace", ok).is_ok(), "{ok}");
        }
        for bad in HOSTILE.iter().copied().chain([
            "Shop",
            "-a",
            "a-",
            "a.b",
            "",
            "*",
            "／",
            &"a".repeat(64),
        ]) {
            let e = Namespace::parse("namespace", bad).unwrap_err();
            assert_eq!(e.field, "namespace");
            assert!(e.to_string().starts_with("invalid namespace \""), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        assert_eq!(Namespace::optional("namespace", "").unwrap(), None);
    }

    #[test]
    fn object_names_are_one_segment() {
        for ok in ["web-1", "system:node:x", "a.b", "x_y", "Upper", "äöü"] {
            assert!(ObjectName::parse("name", ok).is_ok(), "{ok}");
        }
        for bad in HOSTILE.iter().copied().chain(["", &"a".repeat(254)]) {
            assert!(ObjectName::parse("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn node_names_have_no_port_or_path() {
        assert!(NodeName::parse("name", "node-1.example.com").is_ok());
        for bad in [
            "node-1/proxy/pods?x=",
            "node-1:10250",
            "node-1/",
            "..",
            "Node",
        ] {
            assert!(NodeName::parse("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_versions() {
        for ok in [
            "v1",
            "apps/v1",
            "example.com/v1alpha1",
            "autoscaling/v2beta2",
        ] {
            assert!(ApiVersion::parse("apiVersion", ok).is_ok(), "{ok}");
        }
        for bad in [
            "v1/",
            "/v1",
            "apps/v1/x",
            "apps",
            "v0",
            "v01",
            "apps/v1beta",
            "Apps/v1",
            "v1?x",
            "../v1",
        ] {
            assert!(ApiVersion::parse("apiVersion", bad).is_err(), "{bad}");
        }
        assert_eq!(ApiVersion::parse("a", "apps/v1").unwrap().group(), "apps");
        assert_eq!(ApiVersion::parse("a", "v1").unwrap().group(), "");
    }

    #[test]
    fn kinds_and_selectors() {
        assert!(KindName::parse("kind", "ConfigMap").is_ok());
        for bad in [
            "Config Map",
            "configmaps/x",
            "cm?",
            "",
            "1x",
            "deployments.apps",
        ] {
            assert!(KindName::parse("kind", bad).is_err(), "{bad}");
        }
        assert!(
            Selector::optional("labelSelector", "app in (a,b),tier!=db")
                .unwrap()
                .is_some()
        );
        assert!(Selector::optional("labelSelector", "a\nb").is_err());
        assert!(Selector::optional("labelSelector", &"a".repeat(5000)).is_err());
    }

    #[test]
    fn node_log_paths_stay_under_logs() {
        for ok in ["", "kubelet.log", "pods/", "containers/x_y-1.log"] {
            assert!(NodeLogPath::parse("query", ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "/",
            "/kubelet.log",
            "../etc/passwd",
            "a/../../b",
            "%2e%2e/x",
            "x?y",
            "x#y",
            "a//b",
            "./x",
            "a\nb",
        ] {
            assert!(NodeLogPath::parse("query", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shown_values_are_escaped_and_short() {
        assert_eq!(shown("a\nb\u{1b}"), "\"a\\nb\\u{1b}\"");
        let long = shown(&"x".repeat(100_000));
        assert!(
            long.len() < 120 && long.ends_with("(100000 bytes)"),
            "{long}"
        );
    }

    proptest! {
        #[test]
        fn a_valid_name_is_one_clean_path_segment(s in "\\PC{0,40}|[a-z0-9./?#%-]{0,20}") {
            for ok in [
                Namespace::parse("f", &s).map(|v| v.0),
                ObjectName::parse("f", &s).map(|v| v.0),
                NodeName::parse("f", &s).map(|v| v.0),
            ].into_iter().flatten() {
                prop_assert!(!ok.is_empty() && ok != "." && ok != "..");
                prop_assert!(!ok.contains(['/', '?', '#', '%', '\\']));
                prop_assert!(!ok.chars().any(char::is_control));
            }
            if let Err(e) = ObjectName::parse("f", &s) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }
}
