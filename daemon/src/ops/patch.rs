//! Patching one object: merge, JSON or strategic-merge patches, checked
//! before anything is sent (size, shape, never the object's identity), and
//! run through the change engine (dry-run, plans, confirmation).

use serde::Deserialize;
use serde_json::Value;

use super::{
    OpOptions, Rendered,
    change::{self, ApiCall, Change, How, Operation, Precondition},
    mutate::{ObjectRef, allowed},
};
use crate::{error::OpError, pool::ClusterClient, request::InvalidInput, safety::Action};

/// Largest patch accepted.
pub const MAX_PATCH_BYTES: usize = 512 * 1024;
/// Most operations in one JSON patch.
pub const MAX_JSON_PATCH_OPS: usize = 1000;

/// How a patch merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// JSON merge patch (RFC 7386).
    Merge,
    /// JSON patch (RFC 6902).
    Json,
    /// Strategic merge patch (built-in kinds).
    Strategic,
}

impl PatchType {
    /// The request's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Json => "application/json-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
        }
    }

    /// "merge", "json" or "strategic".
    pub fn word(self) -> &'static str {
        match self {
            PatchType::Merge => "merge",
            PatchType::Json => "json",
            PatchType::Strategic => "strategic",
        }
    }
}

/// A checked patch of one object.
#[derive(Debug, Clone)]
pub struct PatchArgs {
    /// The object.
    pub object: ObjectRef,
    /// How it merges.
    pub patch_type: PatchType,
    /// The patch document.
    pub body: Value,
}

/// Fields that name the object: a patch never sets them (nskd binds
/// `resourceVersion` itself from the preview).
const IDENTITY: &[&str] = &[
    "/kind",
    "/apiVersion",
    "/metadata/name",
    "/metadata/namespace",
    "/metadata/uid",
    "/metadata/resourceVersion",
    "/metadata/generateName",
];

fn bad(value: &str, rule: impl Into<String>) -> OpError {
    let shown: String = value.chars().take(40).collect();
    InvalidInput::new("patch", &shown, rule).into()
}

/// Parses and checks `text` as a patch of `patch_type`.
pub fn parse_patch(patch_type: PatchType, text: &str) -> Result<Value, OpError> {
    if text.len() > MAX_PATCH_BYTES {
        return Err(bad(
            text,
            format!(
                "is {} bytes; a patch may have at most {MAX_PATCH_BYTES}",
                text.len()
            ),
        ));
    }
    let body: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(json_error) if patch_type != PatchType::Json => {
            let de = yaml_serde::Deserializer::from_str(text);
            Value::deserialize(de)
                .map_err(|_| bad(text, format!("is neither JSON ({json_error}) nor YAML")))?
        }
        Err(e) => return Err(bad(text, format!("is not JSON: {e}"))),
    };
    match patch_type {
        PatchType::Json => check_json_patch(&body, text)?,
        PatchType::Merge | PatchType::Strategic => {
            if !body.is_object() {
                return Err(bad(
                    text,
                    format!(
                        "must be a JSON object for a {} patch (a list of operations is type json)",
                        patch_type.word()
                    ),
                ));
            }
            for field in IDENTITY {
                if body.pointer(field).is_some() {
                    return Err(bad(
                        text,
                        format!(
                            "sets {field}; a patch may not change (or name) the object's identity or version: patch another object instead"
                        ),
                    ));
                }
            }
            if body.get("metadata").is_some_and(|m| !m.is_object()) {
                return Err(bad(text, "sets metadata to something else than an object"));
            }
        }
    }
    Ok(body)
}

/// Checks a JSON patch: a list of known operations, none touching the
/// object's identity.
fn check_json_patch(body: &Value, text: &str) -> Result<(), OpError> {
    let Some(ops) = body.as_array() else {
        return Err(bad(
            text,
            "must be a list of operations for a json patch ([{\"op\": \"replace\", \"path\": \"/spec/replicas\", \"value\": 2}])",
        ));
    };
    if ops.is_empty() || ops.len() > MAX_JSON_PATCH_OPS {
        return Err(bad(
            text,
            format!("must hold 1 to {MAX_JSON_PATCH_OPS} operations"),
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        if !["add", "remove", "replace", "move", "copy", "test"].contains(&name) {
            return Err(bad(
                text,
                format!(
                    "operation {} has op {name:?}; known: add, remove, replace, move, copy, test",
                    i + 1
                ),
            ));
        }
        let mut paths = vec![op.get("path")];
        if matches!(name, "move" | "copy") {
            paths.push(op.get("from"));
        }
        for p in paths {
            let Some(p) = p.and_then(Value::as_str) else {
                return Err(bad(
                    text,
                    format!("operation {} needs a string path (and from)", i + 1),
                ));
            };
            let touches = p.is_empty()
                || p == "/metadata"
                || IDENTITY
                    .iter()
                    .any(|f| p == *f || p.starts_with(&format!("{f}/")));
            // A test only reads; any other operation there changes it.
            if touches && (name != "test" || p.is_empty()) {
                return Err(bad(
                    text,
                    format!(
                        "operation {} ({name} {p}) would change the object's identity or version; a patch may not",
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Patches one object.
pub async fn patch(
    cc: &ClusterClient,
    args: &PatchArgs,
    opts: &OpOptions,
    how: &How,
) -> Result<Rendered, OpError> {
    let o = &args.object;
    let t = allowed(cc, o, opts, "patch", Action::Patch, None).await?;
    let path = t.object_path(&o.name);
    let call = ApiCall::new(http::Method::PATCH, path.clone())
        .body(args.patch_type.content_type(), args.body.clone())
        .precondition(match args.patch_type {
            PatchType::Json => Precondition::JsonPatch,
            _ => Precondition::Metadata,
        });
    let change = Change {
        operation: Operation::Patch,
        kind: t.kind.clone(),
        namespace: t.namespace.clone(),
        name: o.name.clone(),
        label: t.label.clone(),
        read_path: path,
        call,
        removes: false,
        said: |_| "patched".into(),
    };
    match change::execute(cc, opts, how, vec![change]).await {
        Err(OpError::Api(a)) if a.code == 415 && args.patch_type == PatchType::Strategic => {
            Err(OpError::InvalidArgument(format!(
                "cluster {}: a strategic merge patch works on built-in kinds only; {} is a custom resource (the API server answered 415: {}); nothing was changed. Use type \"merge\" or \"json\"",
                cc.name, t.label, a.message
            )))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_checked_before_anything_is_sent() {
        assert!(parse_patch(PatchType::Merge, r#"{"spec": {"replicas": 2}}"#).is_ok());
        assert!(parse_patch(PatchType::Strategic, "spec:\n  replicas: 2\n").is_ok());
        assert!(
            parse_patch(
                PatchType::Json,
                r#"[{"op": "replace", "path": "/spec/replicas", "value": 2}]"#
            )
            .is_ok()
        );
        assert!(
            parse_patch(
                PatchType::Json,
                r#"[{"op": "test", "path": "/metadata/name", "value": "web"}]"#
            )
            .is_ok()
        );
        for (t, text, says) in [
            (
                PatchType::Merge,
                r#"{"metadata": {"name": "other"}}"#,
                "/metadata/name",
            ),
            (
                PatchType::Merge,
                r#"{"metadata": {"namespace": "kube-system"}}"#,
                "/metadata/namespace",
            ),
            (PatchType::Strategic, r#"{"kind": "Secret"}"#, "/kind"),
            (
                PatchType::Merge,
                r#"{"metadata": {"resourceVersion": "1"}}"#,
                "resourceVersion",
            ),
            (PatchType::Merge, r#"[1]"#, "JSON object"),
            (PatchType::Merge, r#""text""#, "JSON object"),
            (PatchType::Json, r#"{"spec": {}}"#, "list of operations"),
            (PatchType::Json, r#"[]"#, "1 to"),
            (
                PatchType::Json,
                r#"[{"op": "replace", "path": "/metadata/name", "value": "x"}]"#,
                "identity",
            ),
            (
                PatchType::Json,
                r#"[{"op": "remove", "path": "/metadata"}]"#,
                "identity",
            ),
            (
                PatchType::Json,
                r#"[{"op": "replace", "path": "", "value": {}}]"#,
                "identity",
            ),
            (
                PatchType::Json,
                r#"[{"op": "move", "from": "/metadata/namespace", "path": "/x"}]"#,
                "identity",
            ),
            (
                PatchType::Json,
                r#"[{"op": "copy", "from": "/a", "path": "/kind"}]"#,
                "identity",
            ),
            (
                PatchType::Json,
                r#"[{"op": "evil", "path": "/a"}]"#,
                "known:",
            ),
            (
                PatchType::Json,
                r#"[{"op": "add", "path": 7}]"#,
                "string path",
            ),
            (PatchType::Json, "not json", "not JSON"),
        ] {
            let e = parse_patch(t, text).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("nothing was sent"),
                "{text}: {e}"
            );
        }
        let huge = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_PATCH_BYTES));
        assert!(
            parse_patch(PatchType::Merge, &huge)
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
        let many = serde_json::to_string(&vec![
            serde_json::json!({"op": "add", "path": "/a", "value": 1});
            MAX_JSON_PATCH_OPS + 1
        ])
        .unwrap();
        assert!(parse_patch(PatchType::Json, &many).is_err());
    }
}
