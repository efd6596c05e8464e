//! Logging: tracing to stderr as text or JSON, every line passed through
//! [`crate::redact`] so no token, key or password is ever written.

use std::io::{self, Write};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

use crate::config::LogFormat;

/// Stderr, with credentials removed from every write (each log line is
/// written in one call).
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(crate::redact::redact(&text).as_bytes())?;
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
        .with_writer(RedactingStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
