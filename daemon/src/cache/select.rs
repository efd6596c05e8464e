//! Label and field selectors evaluated on cached objects, with the API
//! server's semantics. Anything this module cannot evaluate exactly (an
//! unknown selector syntax, a field the server would index differently)
//! is reported as unsupported, and the call goes to the API server.

use std::collections::BTreeMap;

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector (requirements joined by AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses kubectl's selector syntax: `a=b`, `a==b`, `a!=b`,
    /// `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by
    /// commas. `None` when the text is not something this parser is sure
    /// about (the API server then judges it).
    pub fn parse(text: &str) -> Option<Self> {
        let mut requirements = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return None;
            }
            requirements.push(parse_requirement(part)?);
        }
        Some(Self(requirements))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::GreaterThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Requirement::LessThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }

    /// True when it has no requirement.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits on commas outside parentheses; `None` on unbalanced ones.
fn split_top_level(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return None;
        }
    }
    if depth != 0 {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

fn parse_requirement(part: &str) -> Option<Requirement> {
    if let Some(key) = part.strip_prefix('!') {
        return Some(Requirement::DoesNotExist(valid_key(key.trim())?));
    }
    for (op, make) in [
        (
            "!=",
            Requirement::NotEquals as fn(String, String) -> Requirement,
        ),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((k, v)) = part.split_once(op) {
            return Some(make(valid_key(k.trim())?, valid_value(v.trim())?));
        }
    }
    for (op, greater) in [(">", true), ("<", false)] {
        if let Some((k, v)) = part.split_once(op) {
            let key = valid_key(k.trim())?;
            let n = v.trim().parse::<i64>().ok()?;
            return Some(if greater {
                Requirement::GreaterThan(key, n)
            } else {
                Requirement::LessThan(key, n)
            });
        }
    }
    if let Some(open) = part.find('(') {
        let head: Vec<&str> = part[..open].split_whitespace().collect();
        let inner = part[open + 1..].strip_suffix(')')?;
        let values = inner
            .split(',')
            .map(|v| valid_value(v.trim()))
            .collect::<Option<Vec<_>>>()?;
        return match head.as_slice() {
            [key, "in"] => Some(Requirement::In(valid_key(key)?, values)),
            [key, "notin"] => Some(Requirement::NotIn(valid_key(key)?, values)),
            _ => None,
        };
    }
    Some(Requirement::Exists(valid_key(part)?))
}

/// A label key: optional DNS prefix and `/`, then a name of
/// alphanumerics, `-`, `_`, `.`.
fn valid_key(key: &str) -> Option<String> {
    let name = key.rsplit('/').next()?;
    let ok_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let prefix_ok = match key.rsplit_once('/') {
        Some((prefix, _)) => !prefix.is_empty() && ok_chars(prefix),
        None => true,
    };
    (!name.is_empty() && name.len() <= 63 && ok_chars(name) && prefix_ok).then(|| key.to_string())
}

fn valid_value(value: &str) -> Option<String> {
    (value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    .then(|| value.to_string())
}

/// A field selector this cache can evaluate: equality tests on fields the
/// API server indexes for the kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Fields every kind supports.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra fields the API server supports for pods.
const POD_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

impl FieldSelector {
    /// Parses `field=value`, `field==value`, `field!=value` joined by
    /// commas, for fields of `plural` (core group) this cache knows the
    /// server's meaning of; `None` otherwise.
    pub fn parse(text: &str, group: &str, plural: &str) -> Option<Self> {
        let mut tests = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return None;
            }
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else {
                let (f, v) = part.split_once('=')?;
                (f, true, v)
            };
            let field = field.trim();
            let known = COMMON_FIELDS.contains(&field)
                || (group.is_empty() && plural == "pods" && POD_FIELDS.contains(&field));
            if !known || value.contains(['=', '!']) {
                return None;
            }
            tests.push((field.to_string(), equal, value.trim().to_string()));
        }
        Some(Self(tests))
    }

    /// Whether `object` passes every test (a missing field reads as "").
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }

    /// True when it has no test.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Metadata kept beside every cached object (name, namespace, labels,
/// creation time, resource version).
const KEPT_METADATA: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "creationTimestamp",
    "resourceVersion",
];

/// The part of `object` that selectors, ages and keys read: the metadata
/// above and the fields [`FieldSelector`] knows, at their paths.
pub fn selectable(object: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let mut metadata = serde_json::Map::new();
    for key in KEPT_METADATA {
        if let Some(v) = object.pointer(&format!("/metadata/{key}")) {
            metadata.insert((*key).to_string(), v.clone());
        }
    }
    out.insert("metadata".into(), Value::Object(metadata));
    for field in POD_FIELDS {
        let pointer = format!("/{}", field.replace('.', "/"));
        if let Some(v) = object.pointer(&pointer) {
            let (section, name) = field.split_once('.').unwrap_or((field, ""));
            if let Value::Object(m) = out
                .entry(section.to_string())
                .or_insert_with(|| Value::Object(serde_json::Map::new()))
            {
                m.insert(name.to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The labels of an object.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_follow_the_api_server() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("rank", "3")]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app=web,tier=front",
            "app!=db",
            "missing!=x",
            "app in (web, api)",
            "app notin (db)",
            "missing notin (db)",
            "app",
            "!missing",
            "rank>2",
            "rank<4",
            "example.com/x!=y",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "missing in (db)",
            "app notin (web)",
            "missing",
            "!app",
            "rank>3",
            "app>1",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
    }

    #[test]
    fn unsure_label_syntax_is_left_to_the_server() {
        for s in [
            "app=(",
            "a b",
            "app in web",
            "=x",
            "app=web,",
            "a=b=c",
            "x in (a",
            "/a",
        ] {
            assert!(LabelSelector::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn field_selectors_only_on_fields_the_server_indexes() {
        let pod = json!({"metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse("status.phase=Running,metadata.name!=x", "", "pods").unwrap();
        assert!(s.matches(&pod));
        let s = FieldSelector::parse("spec.nodeName==node-2", "", "pods").unwrap();
        assert!(!s.matches(&pod));
        let s = FieldSelector::parse("status.podIP=", "", "pods").unwrap();
        assert!(s.matches(&pod), "a missing field reads as empty");
        assert!(FieldSelector::parse("status.phase=Running", "apps", "deployments").is_none());
        assert!(FieldSelector::parse("spec.replicas=3", "", "pods").is_none());
        assert!(FieldSelector::parse("metadata.name=web-1", "apps", "deployments").is_some());
    }

    /// Selectors and ages read the same from the kept fields as from the
    /// whole object; the rest of the object is not kept beside it.
    #[test]
    fn the_kept_fields_answer_selectors_like_the_whole_object() {
        let pod = serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"},
                         "creationTimestamp": "2026-01-01T00:00:00Z", "resourceVersion": "7",
                         "annotations": {"big": "x"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": []}
        });
        let kept = selectable(&pod);
        for text in [
            "status.phase=Running",
            "status.phase!=Running",
            "spec.nodeName=n1,metadata.namespace=shop",
            "metadata.name=web-1",
            "status.nominatedNodeName=",
        ] {
            let f = FieldSelector::parse(text, "", "pods").unwrap();
            assert_eq!(f.matches(&kept), f.matches(&pod), "{text}");
        }
        assert_eq!(labels_of(&kept), labels_of(&pod));
        assert_eq!(
            kept.pointer("/metadata/creationTimestamp"),
            pod.pointer("/metadata/creationTimestamp")
        );
        assert!(
            kept.pointer("/metadata/annotations").is_none()
                && kept.pointer("/spec/containers").is_none()
        );
    }
}
