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
    use proptest::prelude::*;

    use super::*;

    /// A piece of a template and what it expands to.
    #[derive(Debug, Clone)]
    enum Piece {
        /// Text with every `$` escaped as `$$`.
        Literal(String),
        /// `${NAME}` of a set variable.
        Set(String, String),
        /// `${NAME:-default}` of an unset variable.
        Default(String, String),
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            "\\PC{0,10}".prop_map(Piece::Literal),
            ("SET_[A-Za-z0-9_]{0,6}", "\\PC{1,8}").prop_map(|(n, v)| Piece::Set(n, v)),
            ("UNSET_[A-Za-z0-9_]{0,6}", "[^}]{0,8}").prop_map(|(n, d)| Piece::Default(n, d)),
        ]
    }

    /// `SET_*` variables hold the value their piece gave; others are unset.
    fn lookup(pieces: &[Piece]) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| {
            pieces.iter().find_map(|p| match p {
                Piece::Set(n, v) if n == name => Some(v.clone()),
                _ => None,
            })
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_input_never_panics(input in "(\\PC|\\$|\\{|\\}|:-){0,30}") {
            let _ = expand(&input, |n| (n.len() % 2 == 0).then(|| n.to_string()));
        }

        #[test]
        fn escaped_text_expands_to_itself(text in "\\PC{0,40}") {
            prop_assert_eq!(expand(&text.replace('$', "$$"), |_| None), Ok(text));
        }

        #[test]
        fn templates_expand_to_their_pieces(pieces in proptest::collection::vec(piece(), 0..6)) {
            // The first value given to a name wins, as `lookup` finds it.
            let look = lookup(&pieces);
            let mut template = String::new();
            let mut expected = String::new();
            for p in &pieces {
                match p {
                    Piece::Literal(t) => {
                        template.push_str(&t.replace('$', "$$"));
                        expected.push_str(t);
                    }
                    Piece::Set(n, _) => {
                        template.push_str(&format!("${{{n}}}"));
                        expected.push_str(&look(n).unwrap());
                    }
                    Piece::Default(n, d) => {
                        template.push_str(&format!("${{{n}:-{d}}}"));
                        expected.push_str(d);
                    }
                }
            }
            prop_assert_eq!(expand(&template, &look), Ok(expected));
        }

        #[test]
        fn an_unset_variable_is_named(before in "[^$]{0,10}", name in "[A-Za-z_][A-Za-z0-9_]{0,10}", after in "\\PC{0,10}") {
            let err = expand(&format!("{before}${{{name}}}{after}"), |_| None).unwrap_err();
            prop_assert!(err.contains(&format!("{name} is not set")), "{}", err);
        }
    }

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
