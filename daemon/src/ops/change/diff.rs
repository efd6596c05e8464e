//! The diff of a change: the object before and after with the server's
//! noise stripped and sensitive values masked, as a unified diff, and its
//! digest for the audit log.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::safety::Masking;

/// Metadata fields the server sets on every write; never part of a diff.
const NOISE: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// `object` as a diff shows it: no status, no server-set metadata, no
/// last-applied annotation, sensitive values masked. `before` is given
/// for the after side of a diff: a masked value that differs from it says
/// so, so a changed Secret value shows as changed without being shown.
pub fn clean(object: &Value, before: Option<&Value>, masking: &Masking, plural: &str) -> Value {
    let mut v = object.clone();
    if let Value::Object(map) = &mut v {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for key in NOISE {
                meta.remove(*key);
            }
            if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
                ann.remove("kubectl.kubernetes.io/last-applied-configuration");
                if ann.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    let before_masking = v.clone();
    masking.mask(&mut v, plural);
    if v != before_masking
        && let Some(before) = before
    {
        mark_changed(&mut v, &before_masking, Some(before));
    }
    v
}

/// Appends ", changed" to each mask whose clear value differs from the
/// other side's clear value (compared in memory, never shown).
fn mark_changed(masked: &mut Value, clear: &Value, other: Option<&Value>) {
    match (masked, clear) {
        (Value::String(m), Value::String(c))
            if m.starts_with("[MASKED") && other.and_then(Value::as_str) != Some(c.as_str()) =>
        {
            m.insert_str(m.len() - 1, ", changed");
        }
        (Value::Array(ms), Value::Array(cs)) => {
            for (i, (m, c)) in ms.iter_mut().zip(cs).enumerate() {
                mark_changed(m, c, other.and_then(|o| o.get(i)));
            }
        }
        (Value::Object(ms), Value::Object(cs)) => {
            for (k, m) in ms.iter_mut() {
                if let Some(c) = cs.get(k) {
                    mark_changed(m, c, other.and_then(|o| o.get(k)));
                }
            }
        }
        _ => {}
    }
}

/// A unified diff and what it counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// The unified diff ("" when nothing changes).
    pub text: String,
    /// Added plus removed lines.
    pub changed_lines: u32,
}

/// YAML of a cleaned object ("" for none).
fn yaml(v: Option<&Value>) -> String {
    v.map(|v| yaml_serde::to_string(v).unwrap_or_default())
        .unwrap_or_default()
}

/// The unified diff of `before` → `after` (cleaned objects; `None` = no
/// object), headed with `label`.
pub fn unified(before: Option<&Value>, after: Option<&Value>, label: &str) -> Diff {
    unified_text(&yaml(before), &yaml(after), label)
}

/// The unified diff of two texts (already masked), headed with `label`.
pub fn unified_text(old: &str, new: &str, label: &str) -> Diff {
    let diff = similar::TextDiff::from_lines(old, new);
    let changed_lines = diff
        .iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .count() as u32;
    if changed_lines == 0 {
        return Diff::default();
    }
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("{label} (before)"), &format!("{label} (after)"))
        .to_string();
    Diff {
        text,
        changed_lines,
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn noise_is_stripped_and_secrets_masked_but_marked_changed() {
        let masking = Masking::new(false, &[]).unwrap();
        let before = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "resourceVersion": "5", "uid": "u", "managedFields": []},
            "data": {"a": "b2xk", "same": "eA=="}, "status": {"x": 1}});
        let mut after = before.clone();
        after["data"]["a"] = json!("bmV3");
        after["metadata"]["resourceVersion"] = json!("6");
        let b = clean(&before, None, &masking, "secrets");
        let a = clean(&after, Some(&before), &masking, "secrets");
        assert!(b.pointer("/metadata/resourceVersion").is_none() && b.get("status").is_none());
        let d = unified(Some(&b), Some(&a), "Secret/s");
        assert!(
            !d.text.contains("bmV3") && !d.text.contains("b2xk"),
            "{}",
            d.text
        );
        assert!(
            d.text.contains("changed") && d.changed_lines == 2,
            "{}",
            d.text
        );
        assert!(
            !d.text
                .contains("same: '[MASKED: 4 bytes; reveal_secrets is off, changed]")
        );
        let none = unified(Some(&b), Some(&b), "x");
        assert_eq!(none, Diff::default());
        assert_eq!(sha256(b"").len(), 64);
    }
}
