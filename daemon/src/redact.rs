//! Removing credentials from any text that leaves the daemon (logs, errors,
//! gRPC answers): bearer tokens, Rancher tokens, JWTs, PEM keys, and values
//! of `token`/`password`/`secret`-like keys.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a removed secret.
pub const MASK: &str = "[REDACTED]";

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // PEM blocks (private keys, certificates with keys).
        (r"-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----", MASK),
        // Authorization headers.
        (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]{8,}", "$1 [REDACTED]"),
        // Rancher API tokens: token-xxxxx:yyyy. No `\b` on this and the next
        // two: a letter glued in front (any script) must not unmask them.
        (r"token-[a-z0-9]{5}:[A-Za-z0-9]{20,}", MASK),
        // JWTs.
        (r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", MASK),
        // key=value / key: value for secret-looking keys.
        (
            r#"(?i)([a-z0-9_-]*(?:token|password|passwd|secret|api[_-]?key|client[_-]key[_-]data)[a-z0-9_-]*)(["']?\s*[:=]\s*["']?)([^\s"',;}&]{3,})"#,
            "$1$2[REDACTED]",
        ),
    ]
    .into_iter()
    .map(|(re, rep)| (Regex::new(re).expect("redaction pattern compiles"), rep))
    .collect()
});

/// Secret values the daemon knows (the Rancher token): removed from every
/// text whatever their shape.
static KNOWN: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Registers a secret value so [`redact`] removes it verbatim (values
/// shorter than 8 characters are ignored: too likely to match innocent text).
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.len() < 8 {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
    }
}

/// `text` with every credential-looking substring replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    let mut out = std::borrow::Cow::Borrowed(text);
    for secret in KNOWN.read().unwrap_or_else(|e| e.into_inner()).iter() {
        if out.contains(secret.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    for (re, rep) in PATTERNS.iter() {
        if re.is_match(&out) {
            out = std::borrow::Cow::Owned(re.replace_all(&out, *rep).into_owned());
        }
    }
    out.into_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn registered_secrets_are_removed_whatever_their_shape() {
        register_secret("plain-looking-value-42");
        assert_eq!(
            redact("nsk said plain-looking-value-42 is wrong"),
            format!("nsk said {MASK} is wrong")
        );
    }

    #[test]
    fn removes_tokens_keys_and_passwords() {
        let cases = [
            ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
            (
                "nsk failed: token-ab1cd:abcdefghijklmnopqrstuvwxyz0123 rejected",
                "abcdefghijklmnopqrstuvwxyz",
            ),
            ("RANCHER_TOKEN=supersecretvalue exit 1", "supersecretvalue"),
            ("{\"password\": \"hunter22\"}", "hunter22"),
            (
                "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end",
                "eyJzdWIiOiJ4In0",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "MIIEow",
            ),
            ("client-key-data: LS0tLS1CRUdJTi", "LS0tLS1CRUdJTi"),
        ];
        for (input, secret) in cases {
            let out = redact(input);
            assert!(!out.contains(secret), "{input:?} -> {out:?}");
            assert!(out.contains("REDACTED"), "{input:?} -> {out:?}");
        }
    }

    /// Text around a secret: anything printable, line breaks, and pieces of
    /// the mask itself.
    fn surrounding() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "\\PC{0,12}",
                "[\\s=:\"'{}]{0,3}",
                Just(MASK.to_string()),
                Just("CTED]".to_string())
            ],
            0..5,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Secrets without '[' or ']': one holding a piece of the mask could
        /// be re-formed across it ("CTED]x" in "CTED]xx" → "[REDACTED]x").
        #[test]
        fn a_registered_secret_never_survives(
            secret in "[A-Za-z0-9_:./+=-]{8,40}",
            before in surrounding(),
            after in surrounding(),
        ) {
            prop_assume!(!before.contains(&secret) && !after.contains(&secret));
            prop_assume!(!MASK.contains(&secret));
            register_secret(&secret);
            let out = redact(&format!("{before}{secret}{after}"));
            prop_assert!(!out.contains(&secret), "{:?}", out);
        }

        #[test]
        fn token_shapes_never_survive(
            id in "[a-z0-9]{5}",
            rancher in "[A-Za-z0-9]{20,54}",
            jwt in "eyJ[A-Za-z0-9_-]{5,30}\\.[A-Za-z0-9_-]{5,60}\\.[A-Za-z0-9_-]{0,40}",
            bearer in "[A-Za-z0-9._~+/=:-]{8,60}",
            key in "(?i)(rancher_)?(token|password|secret|api_key|client-key-data)[0-9]?",
            value in "[A-Za-z0-9+/]{12,40}",
            before in surrounding(),
            after in surrounding(),
        ) {
            let cases = [
                (format!("token-{id}:{rancher}"), rancher.clone()),
                (jwt.clone(), jwt.split('.').nth(1).unwrap().to_string()),
                (format!("Authorization: Bearer {bearer}"), bearer.clone()),
                (format!("{key}={value}"), value.clone()),
                (format!("\"{key}\": \"{value}\""), value.clone()),
            ];
            for (shape, secret) in cases {
                prop_assume!(!before.contains(&secret) && !after.contains(&secret));
                let out = redact(&format!("{before}{shape}{after}"));
                prop_assert!(!out.contains(&secret), "{:?} leaks in {:?}", secret, out);
            }
        }
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "cluster c1-sv5: list pods failed: connection refused (token present: yes)";
        assert_eq!(redact(text), text);
    }
}
