//! What agents may see and do: secret masking (and, with the tools issue,
//! read-only / no-destructive modes and denied kinds).

use serde_json::Value;

use crate::{config::Config, error::OpError, ops::discovery::ResolvedKind};

/// The safety switches of an environment.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Environment name (for messages).
    pub environment: String,
    /// Only reads.
    pub read_only: bool,
    /// No delete/scale/overwriting apply.
    pub disable_destructive: bool,
    /// Kinds nobody may touch.
    pub denied_resources: Vec<String>,
}

impl Policy {
    /// From the configuration.
    pub fn of(config: &Config) -> Self {
        Self {
            environment: config.environment().to_string(),
            read_only: config.read_only,
            disable_destructive: config.disable_destructive,
            denied_resources: config.denied_resources.clone(),
        }
    }
}

/// What an operation does, for the safety switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// list, get, status.
    Read,
    /// Create or update (apply) where nothing exists yet, rollout restart.
    Write,
    /// Delete, scale, exec, run, apply over an existing object.
    Destructive,
}

/// Whether `pattern` (`group/version/kind`, `version/kind` for the core
/// group, or `kind`; `*` matches anything) names `kind`.
fn denies(pattern: &str, kind: &ResolvedKind) -> bool {
    let r = &kind.resource;
    let parts: Vec<&str> = pattern.trim().split('/').collect();
    let eq = |want: &str, have: &str| want == "*" || want.eq_ignore_ascii_case(have);
    match parts.as_slice() {
        [k] => eq(k, &r.kind) || eq(k, &r.plural),
        [v, k] => r.group.is_empty() && eq(v, &r.version) && (eq(k, &r.kind) || eq(k, &r.plural)),
        [g, v, k] => eq(g, &r.group) && eq(v, &r.version) && (eq(k, &r.kind) || eq(k, &r.plural)),
        _ => false,
    }
}

/// Refuses `verb` on `kind` when the configuration forbids it, saying
/// which switch and how to change it.
pub fn check(
    policy: &Policy,
    cluster: &str,
    verb: Verb,
    kind: &ResolvedKind,
    what: &str,
) -> Result<(), OpError> {
    let config = policy;
    if let Some(p) = config.denied_resources.iter().find(|p| denies(p, kind)) {
        return Err(OpError::InvalidArgument(format!(
            "cluster {cluster}: {what} refused: {} is in denied_resources ({p:?}) of environment {}; an operator can change that in the daemon's config",
            kind.display_name(),
            config.environment
        )));
    }
    if verb != Verb::Read && config.read_only {
        return Err(OpError::InvalidArgument(format!(
            "cluster {cluster}: {what} refused: environment {} is read-only (read_only = true / --read-only); only read tools work here",
            config.environment
        )));
    }
    if verb == Verb::Destructive && config.disable_destructive {
        return Err(OpError::InvalidArgument(format!(
            "cluster {cluster}: {what} refused: destructive operations are disabled in environment {} (disable_destructive = true)",
            config.environment
        )));
    }
    Ok(())
}

/// Replaces every value of a Secret's `data` / `stringData` with a note of
/// its size, keeping the keys. Non-Secret objects are left alone; masking
/// twice (a cached object is masked when cached) changes nothing.
pub fn mask_secret(object: &mut Value) {
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = object.get_mut(field) {
            for value in map.values_mut() {
                // Base64 data never starts with '[': this is a mask already.
                if value.as_str().is_some_and(|v| v.starts_with("[MASKED: ")) {
                    continue;
                }
                let len = value.as_str().map(str::len).unwrap_or(0);
                *value = Value::String(format!("[MASKED: {len} bytes; reveal_secrets is off]"));
            }
        }
    }
    // The last-applied annotation would repeat the values in clear.
    if let Some(Value::Object(ann)) = object.pointer_mut("/metadata/annotations") {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_and_keys_kept() {
        let mut s = json!({"kind": "Secret", "data": {"password": "czNjcjN0"}, "stringData": {"x": "plain"},
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"czNjcjN0\"}}"}}});
        mask_secret(&mut s);
        let once = s.clone();
        mask_secret(&mut s);
        assert_eq!(s, once, "masking twice changes nothing");
        let text = s.to_string();
        assert!(
            !text.contains("czNjcjN0") && !text.contains("plain"),
            "{text}"
        );
        assert!(
            s["data"]["password"]
                .as_str()
                .unwrap()
                .starts_with("[MASKED")
        );
        let mut cm = json!({"kind": "ConfigMap", "data": {"a": "b"}});
        mask_secret(&mut cm);
        assert_eq!(cm["data"]["a"], "b");
    }
}
