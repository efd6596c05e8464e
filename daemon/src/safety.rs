//! What agents may see and do: secret masking (and, with the tools issue,
//! read-only / no-destructive modes and denied kinds).

use serde_json::Value;

/// Replaces every value of a Secret's `data` / `stringData` with a note of
/// its size, keeping the keys. Non-Secret objects are left alone.
pub fn mask_secret(object: &mut Value) {
    if object.get("kind").and_then(Value::as_str) != Some("Secret") {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = object.get_mut(field) {
            for value in map.values_mut() {
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
