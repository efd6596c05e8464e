//! A typed reader over a TOML table that records every problem (wrong type,
//! unset variable, bad duration, unknown key) instead of stopping at the first.

use std::{cell::RefCell, fmt, rc::Rc, time::Duration};

use super::expand::expand;

/// How bad a configuration problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The daemon refuses to start.
    Error,
    /// Works, but probably not what was meant (e.g. TLS verification off).
    Warning,
}

/// One problem, naming the field (`nsk.refresh_interval`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, or a source such as `--socket` / `RANCHER_URL`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{tag}: {}: {}", self.field, self.message)
    }
}

/// Looks up an environment variable (injectable for tests).
pub type EnvLookup = Rc<dyn Fn(&str) -> Option<String>>;

/// Shared list of problems found so far.
pub type Problems = Rc<RefCell<Vec<Problem>>>;

/// Reads typed values out of one TOML table (a section), consuming keys so
/// that whatever is left at the end is reported as unknown.
pub struct Reader {
    prefix: String,
    table: toml::Table,
    problems: Problems,
    env: EnvLookup,
}

impl Reader {
    /// A reader over the top-level table.
    pub fn new(table: toml::Table, problems: Problems, env: EnvLookup) -> Self {
        Self {
            prefix: String::new(),
            table,
            problems,
            env,
        }
    }

    fn field(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Records a problem on `key` of this section.
    pub fn error(&self, key: &str, message: impl Into<String>) {
        push(&self.problems, self.field(key), message, Severity::Error);
    }

    /// Records a warning on `key` of this section.
    pub fn warn(&self, key: &str, message: impl Into<String>) {
        push(&self.problems, self.field(key), message, Severity::Warning);
    }

    /// A string, with `${VAR}` expansion.
    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.table.remove(key)? {
            toml::Value::String(raw) => self.expand(key, &raw),
            other => {
                self.error(
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    fn expand(&self, key: &str, raw: &str) -> Option<String> {
        let env = self.env.clone();
        match expand(raw, |name| env(name)) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    /// A boolean (`true`/`false`, or a string such as `"${INSECURE:-false}"`).
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        match self.table.remove(key)? {
            toml::Value::Boolean(b) => Some(b),
            toml::Value::String(raw) => {
                let v = self.expand(key, &raw)?;
                match parse_bool(&v) {
                    Some(b) => Some(b),
                    None => {
                        self.error(key, format!("expected true or false, found {v:?}"));
                        None
                    }
                }
            }
            other => {
                self.error(
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A non-negative integer that fits `T`.
    pub fn integer<T: TryFrom<i64> + fmt::Display>(&mut self, key: &str) -> Option<T> {
        let value = match self.table.remove(key)? {
            toml::Value::Integer(i) => i,
            toml::Value::String(raw) => {
                let v = self.expand(key, &raw)?;
                match v.trim().parse::<i64>() {
                    Ok(i) => i,
                    Err(_) => {
                        self.error(key, format!("expected a whole number, found {v:?}"));
                        return None;
                    }
                }
            }
            other => {
                self.error(
                    key,
                    format!("expected a whole number, found {}", other.type_str()),
                );
                return None;
            }
        };
        match T::try_from(value) {
            Ok(v) if value >= 0 => Some(v),
            _ => {
                self.error(key, format!("{value} is out of range"));
                None
            }
        }
    }

    /// A duration such as `"30s"`, `"15m"`, `"1h30m"`.
    pub fn duration(&mut self, key: &str) -> Option<Duration> {
        let raw = self.string(key)?;
        match parse_duration(&raw) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    /// A list of strings, each expanded.
    pub fn strings(&mut self, key: &str) -> Option<Vec<String>> {
        match self.table.remove(key)? {
            toml::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        toml::Value::String(raw) => {
                            out.extend(self.expand(&format!("{key}[{i}]"), &raw))
                        }
                        other => self.error(
                            &format!("{key}[{i}]"),
                            format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.error(
                    key,
                    format!("expected a list of strings, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A nested section (`[nsk]`); an absent section reads as empty.
    pub fn section(&mut self, key: &str) -> Reader {
        let table = match self.table.remove(key) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(other) => {
                self.error(
                    key,
                    format!("expected a section [{key}], found {}", other.type_str()),
                );
                toml::Table::new()
            }
        };
        Reader {
            prefix: format!("{}{key}.", self.prefix),
            table,
            problems: self.problems.clone(),
            env: self.env.clone(),
        }
    }

    /// An array of tables (`[[key]]`, or inline `key = [ { ... } ]`), each
    /// as a reader named `key[i].`; a single table (`[key]`) reads as one,
    /// named `key.`.
    pub fn tables(&mut self, key: &str) -> Vec<Reader> {
        let reader = |prefix: String, table: toml::Table, r: &Reader| Reader {
            prefix,
            table,
            problems: r.problems.clone(),
            env: r.env.clone(),
        };
        match self.table.remove(key) {
            None => Vec::new(),
            Some(toml::Value::Table(t)) => vec![reader(format!("{}{key}.", self.prefix), t, self)],
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        toml::Value::Table(t) => {
                            out.push(reader(format!("{}{key}[{i}].", self.prefix), t, self))
                        }
                        other => self.error(
                            key,
                            format!(
                                "item {i}: expected a table [[{key}]], found {}",
                                other.type_str()
                            ),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.error(
                    key,
                    format!("expected tables [[{key}]], found {}", other.type_str()),
                );
                Vec::new()
            }
        }
    }

    /// Reports every key nobody asked for, with the known keys as a hint.
    pub fn finish(self, known: &[&str]) {
        for key in self.table.keys() {
            let hint = match closest(key, known) {
                Some(k) => format!("unknown key (did you mean `{k}`?)"),
                None => format!("unknown key; known keys here: {}", known.join(", ")),
            };
            self.error(key, hint);
        }
    }
}

fn push(problems: &Problems, field: String, message: impl Into<String>, severity: Severity) {
    problems.borrow_mut().push(Problem {
        field,
        message: message.into(),
        severity,
    });
}

/// `true`/`false`/`1`/`0`/`yes`/`no`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses `"30s"`, `"15m"`, `"1h30m"`, `"2h 15m"` into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("invalid duration {s:?} ({e}); write e.g. \"30s\", \"15m\", \"1h\" or \"1h30m\"")
    })
}

fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_go_and_spaced_forms() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h 15m").unwrap(), Duration::from_secs(8100));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("invalid duration \"soon\"")
        );
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            closest("refresh_intervall", &["refresh_interval", "profile"]),
            Some("refresh_interval")
        );
        assert_eq!(closest("zzz", &["refresh_interval", "profile"]), None);
    }
}
