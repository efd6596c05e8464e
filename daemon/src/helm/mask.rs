//! Masking of what a release carries: values under keys that look like
//! credentials, and Secret (or other sensitive) documents in a manifest,
//! unless `reveal_secrets = true`.

use serde_json::Value;

use crate::safety::{Masking, mask_leaves};

/// Parts of a key that mark its value as a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "key",
    "cert",
    "credential",
    "private",
    "auth",
];

/// Whether a values key names a credential (`dbPassword`, `tls.key`,
/// `apiToken`...).
pub fn is_credential_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|w| key.contains(w))
}

/// Masks every scalar under a credential-looking key of `values`.
pub fn mask_values(values: &mut Value, masking: &Masking) {
    if !masking.reveals() {
        walk(values);
    }
}

fn walk(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_credential_key(key) {
                    mask_all(v);
                } else {
                    walk(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

/// Strings and numbers become a note of their size (a numeric PIN is a
/// credential too); booleans and nulls say nothing.
fn mask_all(value: &mut Value) {
    match value {
        Value::Number(n) => {
            *value = Value::String(n.to_string());
            mask_leaves(value);
        }
        Value::Array(items) => items.iter_mut().for_each(mask_all),
        Value::Object(map) => map.values_mut().for_each(mask_all),
        _ => mask_leaves(value),
    }
}

/// A manifest with every document of a sensitive kind (Secret...) masked;
/// other documents are kept byte for byte. A document that does not parse
/// as YAML is withheld whole: it might be a Secret.
pub fn mask_manifest(manifest: &str, masking: &Masking) -> String {
    if masking.reveals() {
        return manifest.to_string();
    }
    let mut out = String::with_capacity(manifest.len());
    for (i, doc) in split_documents(manifest).into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&mask_document(doc, masking));
    }
    out
}

/// The documents of a multi-document YAML text, split at `---` lines.
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..at]);
            start = at + line.len();
        }
        at += line.len();
    }
    docs.push(&text[start..]);
    docs
}

fn mask_document(doc: &str, masking: &Masking) -> String {
    let comments: String = doc
        .lines()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let parsed: Result<Value, _> = yaml_serde::from_str(doc);
    match parsed {
        Ok(Value::Null) => doc.to_string(),
        Ok(mut value) => {
            let before = value.clone();
            masking.mask(&mut value, "");
            if value == before {
                doc.to_string()
            } else {
                comments + &yaml_serde::to_string(&value).unwrap_or_default()
            }
        }
        Err(_) => format!(
            "{comments}# [MASKED: {} bytes that do not parse as YAML; reveal_secrets is off]\n",
            doc.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masking() -> Masking {
        Masking::new(false, &[]).unwrap()
    }

    #[test]
    fn credential_keys_are_masked_at_any_depth() {
        let mut v = json!({"database": {"host": "db", "password": "hunter2", "port": 5432},
            "apiToken": "abc", "tls": {"key": {"pem": "xyz"}}, "pin": {"authPin": 1234},
            "list": [{"secretValue": "s"}], "enabled": true});
        mask_values(&mut v, &masking());
        let text = v.to_string();
        for secret in ["hunter2", "\"abc\"", "xyz", "1234", "\"s\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["database"]["host"], "db");
        assert_eq!(v["database"]["port"], 5432);
        assert_eq!(v["enabled"], true);
        assert_eq!(
            v["database"]["password"],
            "[MASKED: 7 bytes; reveal_secrets is off]"
        );
        let mut shown = json!({"password": "hunter2"});
        mask_values(&mut shown, &Masking::new(true, &[]).unwrap());
        assert_eq!(shown["password"], "hunter2");
    }

    #[test]
    fn secret_documents_are_masked_and_others_kept() {
        let manifest = "---\n# Source: demo/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"1\"\n---\n# Source: demo/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: \"hunter2\"\n";
        let masked = mask_manifest(manifest, &masking());
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(masked.contains("# Source: demo/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: \"1\"\n"), "{masked}");
        assert!(
            masked.contains("# Source: demo/templates/secret.yaml\n"),
            "{masked}"
        );
        assert!(masked.contains("[MASKED: 7 bytes"), "{masked}");
        assert_eq!(
            mask_manifest(manifest, &Masking::new(true, &[]).unwrap()),
            manifest
        );
    }

    #[test]
    fn unparsable_documents_are_withheld() {
        let manifest = "kind: Secret\nstringData: {password: hunter2\n";
        let masked = mask_manifest(manifest, &masking());
        assert!(
            !masked.contains("hunter2") && masked.contains("[MASKED:"),
            "{masked}"
        );
    }
}
