//! `[[prompts]]`: the user's own MCP prompts, served by every shim beside
//! the built-in ones.

use super::fields::Reader;

/// One `[[prompts]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptConfig {
    /// Prompt name: letters, digits, `_`, `-` (at most 64).
    pub name: String,
    /// What it is for, one line (at most 160 bytes).
    pub description: String,
    /// The prompt, with `{argument}` placeholders.
    pub text: String,
    /// Its arguments (all required): letters, digits, `_` (at most 32).
    pub arguments: Vec<String>,
}

fn plain(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
}

/// Reads every `[[prompts]]` entry; errors name the entry and the key.
pub(super) fn read(top: &mut Reader) -> Vec<PromptConfig> {
    let mut out: Vec<PromptConfig> = Vec::new();
    for mut r in top.tables("prompts") {
        let name = r.string("name").unwrap_or_default();
        let description = r.string("description").unwrap_or_default();
        let text = r.string("text").unwrap_or_default();
        let arguments = r.strings("arguments").unwrap_or_default();
        let mut ok = true;
        if !plain(&name, 64, b"-") {
            r.error(
                "name",
                format!(
                    "{name:?}: a prompt needs a name of letters, digits, '_' and '-' (at most 64)"
                ),
            );
            ok = false;
        } else if nskd_proto::tools::BUILTIN_PROMPTS.contains(&name.as_str()) {
            r.error(
                "name",
                format!(
                    "{name:?} is a built-in prompt ({}); choose another name",
                    nskd_proto::tools::BUILTIN_PROMPTS.join(", ")
                ),
            );
            ok = false;
        } else if out.iter().any(|p| p.name == name) {
            r.error("name", format!("{name:?} is defined twice; rename one"));
            ok = false;
        }
        if description.len() > 160 || description.contains('\n') {
            r.error("description", "must be one line of at most 160 bytes");
            ok = false;
        }
        if text.trim().is_empty() {
            r.error(
                "text",
                "a prompt needs its text (with {argument} placeholders)",
            );
            ok = false;
        }
        for a in &arguments {
            if !plain(a, 32, b"") {
                r.error(
                    "arguments",
                    format!("{a:?}: an argument name is letters, digits and '_' (at most 32)"),
                );
                ok = false;
            } else if !text.contains(&format!("{{{a}}}")) {
                r.warn(
                    "arguments",
                    format!("{a:?} is never used: the text has no {{{a}}}"),
                );
            }
        }
        r.finish(&super::keys::known("prompts"));
        if ok {
            out.push(PromptConfig {
                name,
                description,
                text,
                arguments,
            });
        }
    }
    out
}
