//! Logging: tracing to stderr as text or JSON, every line passed through
//! [`crate::redact`] so no token, key or password is ever written, and
//! through [`nskd_proto::escape`] so no string from an agent or an API
//! server (a `\n` in a pattern, an ESC in an error) can forge a log line or
//! drive the terminal.

use std::io::{self, Write};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

use crate::config::LogFormat;

/// Stderr, with credentials removed from every write and control
/// characters escaped (each log line is written in one call, so only its
/// final newline is real).
#[derive(Debug, Clone, Copy)]
pub struct RedactingStderr {
    format: LogFormat,
}

/// One formatted log line made safe: credentials redacted, and every
/// control character but the final newline escaped (text); JSON escapes C0
/// controls itself, so there only what it leaves raw (C1 controls, bidi
/// overrides, always inside strings) becomes `\uXXXX`.
pub fn safe_line(buf: &[u8], format: LogFormat) -> String {
    let text = String::from_utf8_lossy(buf);
    let redacted = crate::redact::redact(&text);
    let (body, newline) = match redacted.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (redacted.as_str(), ""),
    };
    match format {
        LogFormat::Text => format!("{}{newline}", nskd_proto::escape::escape(body)),
        LogFormat::Json => {
            use std::fmt::Write;
            let mut out = String::with_capacity(body.len() + 1);
            for c in body.chars() {
                if nskd_proto::escape::is_invisible(c) {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    out.push(c);
                }
            }
            out.push_str(newline);
            out
        }
    }
}

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write_all(safe_line(buf, self.format).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// The filter in force: RUST_LOG if set, else `DEBUG=true` means debug,
/// else `level`.
pub fn filter(level: &str) -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_default_env() {
        return f;
    }
    let debug = std::env::var("DEBUG")
        .ok()
        .and_then(|v| crate::config::parse_bool(&v))
        == Some(true);
    let level = if debug && level == "info" {
        "debug"
    } else {
        level
    };
    // Our crates at `level`, dependencies one step quieter.
    let spec = if level.contains('=') || level.contains(',') {
        level.to_string()
    } else {
        let deps = match level {
            "trace" => "debug",
            "debug" => "info",
            _ => "warn",
        };
        // kube-client logs every failed request at ERROR; we report those
        // failures ourselves, with the cluster's name and what to do.
        let kube = if level == "trace" { "debug" } else { "off" };
        format!("{deps},kube_client={kube},nskd={level},nskd_proto={level}")
    };
    EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(level: &str, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(RedactingStderr { format })
        // No colours: escape sequences are escaped like any control character.
        .with_ansi(false)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Captures what the text formatter writes, through [`safe_line`].
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<String>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push_str(&safe_line(buf, LogFormat::Text));
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn agent_strings_cannot_forge_text_log_lines() {
        let out = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .finish();
        let pattern = "x\n2026-01-01T00:00:00Z  INFO refresh finished outcome=Success\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(pattern = %pattern, "refresh requested");
            tracing::warn!("second {}", "line\r\n");
        });
        let text = out.0.lock().unwrap().clone();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(
            text.contains(
                r"pattern=x\n2026-01-01T00:00:00Z  INFO refresh finished outcome=Success\x1b[2J"
            ),
            "{text}"
        );
        assert!(text.ends_with("line\\r\\n\n"), "{text:?}");
    }

    #[test]
    fn json_lines_stay_valid_and_on_one_line() {
        let event = serde_json::json!({"pattern": "a\nb\u{85}\u{202e}\"c\\"}).to_string() + "\n";
        let line = safe_line(event.as_bytes(), LogFormat::Json);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(
            !line
                .chars()
                .any(|c| nskd_proto::escape::is_invisible(c) && c != '\n')
        );
        let back: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back["pattern"], "a\nb\u{85}\u{202e}\"c\\");
    }
}
