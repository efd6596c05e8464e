//! `${VAR}` and `${VAR:-default}` expansion of configuration strings.

/// Expands every `${VAR}` / `${VAR:-default}` in `input` using `lookup`.
/// `$$` is a literal `$`. Returns the name of the first unset variable (with
/// no default) or a description of a malformed reference as the error.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body_start.find('}') else {
            return Err(format!(
                "unclosed '${{' in {input:?}: write ${{NAME}} or $$ for a literal $"
            ));
        };
        let body = &body_start[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "invalid variable reference ${{{body}}}: names use letters, digits and '_'"
            ));
        }
        match lookup(name).filter(|v| !v.is_empty()) {
            Some(value) => out.push_str(&value),
            None => match default {
                Some(d) => out.push_str(d),
                None => {
                    return Err(format!(
                        "environment variable {name} is not set (referenced as ${{{name}}}); export it, or write ${{{name}:-default}}"
                    ));
                }
            },
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_unset_and_defaults() {
        assert_eq!(expand("a-${TOKEN}-b", env).unwrap(), "a-t0k-b");
        assert_eq!(expand("${MISSING:-x}", env).unwrap(), "x");
        assert_eq!(expand("${EMPTY:-fallback}", env).unwrap(), "fallback");
        assert_eq!(
            expand("cost $5 and $$ and ${TOKEN}", env).unwrap(),
            "cost $5 and $ and t0k"
        );
        assert!(
            expand("${MISSING}", env)
                .unwrap_err()
                .contains("MISSING is not set")
        );
        assert!(expand("${OPEN", env).unwrap_err().contains("unclosed"));
        assert!(
            expand("${bad name}", env)
                .unwrap_err()
                .contains("invalid variable")
        );
    }
}
