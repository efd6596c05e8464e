//! Log search arguments an agent sends, checked once: a `grep` pattern
//! compiled with bounded size, and a `sinceTime` that is a real RFC 3339
//! instant not in the future.
//!
//! ```
//! use nskd::request::logfilter::LogPattern;
//! let p = LogPattern::parse("grep", "(?i)timeout|refused").unwrap();
//! assert!(p.is_match(b"Connection REFUSED by peer"));
//! assert!(LogPattern::parse("grep", "(unclosed").is_err());
//! ```

use std::fmt;

use jiff::{Timestamp, Unit};
use regex::bytes::{Regex, RegexBuilder};

use super::names::{InvalidInput, is_invisible};

/// Longest `grep` pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Most memory the compiled pattern may take (program and lazy DFA each).
pub const MAX_COMPILED_BYTES: usize = 1 << 20;

/// How far in the future a `sinceTime` may be (clock skew).
pub const SINCE_TIME_SKEW_SECS: i64 = 60;

const PATTERN_RULE: &str = "must be a regular expression (Rust regex syntax; (?i) ignores case) of at most 1024 bytes, without control characters";

/// A `grep` pattern: a compiled regular expression matched against each
/// log line (case-sensitive unless it starts with `(?i)`). The regex
/// engine runs in time linear in the line, so no pattern can hang a scan.
#[derive(Clone)]
pub struct LogPattern {
    source: String,
    regex: Regex,
}

impl fmt::Debug for LogPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LogPattern").field(&self.source).finish()
    }
}

impl fmt::Display for LogPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl LogPattern {
    /// Checks and compiles `value` of argument `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, InvalidInput> {
        if value.is_empty()
            || value.len() > MAX_PATTERN_BYTES
            || value.chars().any(|c| c.is_control() || is_invisible(c))
        {
            return Err(InvalidInput::new(field, value, PATTERN_RULE));
        }
        let regex = RegexBuilder::new(value)
            .size_limit(MAX_COMPILED_BYTES)
            .dfa_size_limit(MAX_COMPILED_BYTES)
            .nest_limit(64)
            .build()
            .map_err(|e| {
                let why = match e {
                    regex::Error::CompiledTooBig(_) => {
                        "compiles to more than 1 MiB: use a simpler pattern (fewer repetitions)"
                            .to_string()
                    }
                    other => first_line(&other.to_string()),
                };
                InvalidInput::new(field, value, format!("{PATTERN_RULE}: {why}"))
            })?;
        Ok(Self {
            source: value.to_string(),
            regex,
        })
    }

    /// `None` for an empty value (no filter).
    pub fn optional(field: &str, value: &str) -> Result<Option<Self>, InvalidInput> {
        if value.is_empty() {
            Ok(None)
        } else {
            Self::parse(field, value).map(Some)
        }
    }

    /// Whether `line` matches.
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.regex.is_match(line)
    }

    /// The pattern as received.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// The last line of a regex error (the one saying what is wrong), without
/// the pattern echo and caret lines it starts with.
fn first_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("not a valid regular expression")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// A `sinceTime`: an RFC 3339 instant, at most [`SINCE_TIME_SKEW_SECS`]
/// in the future, rounded down to whole seconds (what the API takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinceTime(Timestamp);

impl SinceTime {
    /// Checks `value` of argument `field` against the clock `now`.
    pub fn parse_at(field: &str, value: &str, now: Timestamp) -> Result<Self, InvalidInput> {
        let rule = "must be an RFC 3339 time such as \"2026-01-02T15:04:05Z\" or \"2026-01-02T17:04:05+02:00\", not in the future";
        if value.len() > 64 || value.chars().any(|c| c.is_control()) {
            return Err(InvalidInput::new(field, value, rule));
        }
        let t: Timestamp = value
            .parse()
            .map_err(|_| InvalidInput::new(field, value, rule))?;
        if t.as_second() > now.as_second() + SINCE_TIME_SKEW_SECS {
            return Err(InvalidInput::new(
                field,
                value,
                format!(
                    "{rule} (it is now {})",
                    now.round(Unit::Second).unwrap_or(now)
                ),
            ));
        }
        let whole = Timestamp::from_second(t.as_second()).unwrap_or(t);
        Ok(Self(whole))
    }

    /// Checks `value` against the system clock; `None` when empty.
    pub fn optional(field: &str, value: &str) -> Result<Option<Self>, InvalidInput> {
        if value.is_empty() {
            return Ok(None);
        }
        Self::parse_at(field, value, Timestamp::now()).map(Some)
    }

    /// The instant.
    pub fn timestamp(&self) -> Timestamp {
        self.0
    }
}

impl fmt::Display for SinceTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile_bounded() {
        let p = LogPattern::parse("grep", "level=error").unwrap();
        assert!(p.is_match(b"x level=error y"));
        assert!(!p.is_match(b"LEVEL=ERROR"));
        let i = LogPattern::parse("grep", "(?i)level=error").unwrap();
        assert!(i.is_match(b"LEVEL=ERROR"));
        // Nested repetition that a backtracking engine would die on is
        // either refused for its size or matched in linear time.
        for huge in ["(a{1000}){1000}", "((a{100}){100}){100}", "\\w{10000}"] {
            let e = LogPattern::parse("grep", huge).unwrap_err();
            assert!(e.rule.contains("compiles to more than"), "{huge}: {e}");
        }
        let evil = LogPattern::parse("grep", "(a+)+$").unwrap();
        let line = format!("{}!", "a".repeat(100_000));
        let started = std::time::Instant::now();
        assert!(!evil.is_match(line.as_bytes()));
        assert!(started.elapsed().as_secs() < 2);
    }

    #[test]
    fn bad_patterns_are_refused_naming_grep() {
        for bad in [
            "(unclosed",
            "[z-a]",
            "x\ny",
            "\u{1b}[31m",
            "a\u{0}",
            "x\u{202e}",
            &"a".repeat(MAX_PATTERN_BYTES + 1),
            "",
        ] {
            let e = LogPattern::parse("grep", bad).unwrap_err();
            assert_eq!(e.field, "grep");
            assert!(e.to_string().starts_with("invalid grep "), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let e = LogPattern::parse("grep", "(unclosed").unwrap_err();
        assert!(e.rule.contains("unclosed"), "{e}");
        assert_eq!(
            LogPattern::optional("grep", "").unwrap().map(|p| p.source),
            None
        );
    }

    #[test]
    fn since_times_are_rfc3339_and_not_in_the_future() {
        let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
        let ok = SinceTime::parse_at("sinceTime", "2026-06-01T11:00:00.75+01:00", now).unwrap();
        assert_eq!(ok.to_string(), "2026-06-01T10:00:00Z");
        assert!(SinceTime::parse_at("sinceTime", "2026-06-01T12:00:30Z", now).is_ok());
        for bad in [
            "yesterday",
            "2026-06-01",
            "2026-06-01 12:00:00",
            "2026-13-01T00:00:00Z",
            "2026-06-01T12:00:00Z\n",
            "2026-06-01T12:00:00Z&limit=1",
            "9999-12-31T23:59:59Z",
            "2026-06-01T12:05:00Z",
            "",
            &"1".repeat(100),
        ] {
            let e = SinceTime::parse_at("sinceTime", bad, now).unwrap_err();
            assert_eq!(e.field, "sinceTime", "{bad}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let future = SinceTime::parse_at("sinceTime", "2030-01-01T00:00:00Z", now).unwrap_err();
        assert!(
            future.rule.contains("it is now 2026-06-01T12:00:00Z"),
            "{future}"
        );
    }
}
