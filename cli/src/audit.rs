//! nskctl audit: the daemon's audit log (a JSON-lines file it names in
//! GetInfo), read directly: same user, no credentials in it.

use std::{
    io::{Read, Seek, SeekFrom},
    path::Path,
    process::ExitCode,
    time::Duration,
};

use nskd_proto::{
    escape::{escape, is_invisible as invisible},
    v1::DaemonInfo,
};
use serde_json::Value;

/// Serialised JSON with the characters JSON leaves raw (C1 controls, bidi
/// overrides; all inside strings) written as `\uXXXX`.
fn json_escaped(v: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for c in v.to_string().chars() {
        if invisible(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// One entry on one line, every field escaped.
fn line(v: &Value) -> String {
    let s = |k: &str| escape(v.get(k).and_then(Value::as_str).unwrap_or("")).into_owned();
    let mut who = if s("session").is_empty() {
        s("client")
    } else {
        format!("{} [{}]", s("client"), s("session"))
    };
    if !s("subject").is_empty() {
        who = format!("{} as {who}", s("subject"));
    }
    let what = [s("verb"), s("resource"), s("namespace"), s("name")]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let tool = if s("tool").is_empty() {
        String::new()
    } else {
        format!(" via {}", s("tool"))
    };
    let cluster = s("cluster");
    format!(
        "{}  {who}{tool}  {what}  cluster={}  {}  {}ms",
        s("time"),
        if cluster.is_empty() { "-" } else { &cluster },
        s("outcome"),
        v.get("duration_ms").and_then(Value::as_u64).unwrap_or(0)
    )
}

/// What `--json` or the table prints for one raw line of the file: JSON
/// re-serialised (strings escaped by JSON itself), anything else escaped.
fn render(raw: &str, json: bool) -> Option<String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) if json => Some(json_escaped(&v)),
        Ok(v) => Some(line(&v)),
        Err(_) if json => Some(escape(raw).into_owned()),
        Err(_) => None,
    }
}

fn print(raw: &str, json: bool) {
    if let Some(out) = render(raw, json) {
        println!("{out}");
    }
}

/// `nskctl audit [--tail N] [--follow]`.
pub async fn show(
    info: &DaemonInfo,
    tail: usize,
    follow: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let path = Path::new(&info.audit_log);
    if info.audit_log.is_empty() {
        anyhow::bail!(
            "nskd {} does not report an audit log path; upgrade it",
            info.version
        );
    }
    let mut file = std::fs::File::open(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the audit log {}: {e}; it is written by nskd as the same user",
            path.display()
        )
    })?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let lines: Vec<&str> = text.lines().collect();
    for raw in &lines[lines.len().saturating_sub(tail)..] {
        print(raw, json);
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut pos = text.len() as u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: start over on the new file.
            file = std::fs::File::open(path)?;
            pos = 0;
        }
        file.seek(SeekFrom::Start(pos))?;
        let mut more = String::new();
        file.read_to_string(&mut more)?;
        pos += more.len() as u64;
        for raw in more.lines() {
            print(raw, json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_in_every_field() {
        let hostile = "x\n2026-01-01T00:00:00Z  nskctl  delete pods  cluster=prod  ok  1ms\r\u{1b}[2J\u{7}\t\\\u{202e}\u{85}";
        let entry = serde_json::json!({
            "time": hostile, "session": hostile, "client": hostile, "tool": hostile,
            "verb": hostile, "resource": hostile, "namespace": hostile, "name": hostile,
            "cluster": hostile, "outcome": hostile, "duration_ms": 3, "subject": hostile,
        });
        let raw = entry.to_string();
        for json in [false, true] {
            let out = render(&raw, json).unwrap();
            assert!(!out.chars().any(|c| c.is_control()), "json={json}: {out:?}");
            assert!(!out.contains('\u{202e}'), "json={json}: {out:?}");
        }
        let back: Value = serde_json::from_str(&render(&raw, true).unwrap()).unwrap();
        assert_eq!(back, entry, "--json stays valid JSON with the same strings");
        let out = render(&raw, false).unwrap();
        assert_eq!(out.matches("\\x1b[2J").count(), 11, "{out}");
        assert!(out.contains("x\\n2026") && out.contains("\\r") && out.contains("\\x07"));
        assert!(out.contains("\\t\\\\\\u{202e}\\x85"), "{out}");
        assert!(out.ends_with("3ms"));
        // A line that is not JSON: skipped in the table, escaped in --json.
        assert_eq!(render("not json\u{1b}[31m", false), None);
        assert_eq!(
            render("not json\u{1b}[31m", true).unwrap(),
            "not json\\x1b[31m"
        );
    }

    #[test]
    fn plain_strings_stay_as_they_are() {
        assert_eq!(escape("shop/web-1 ünïcode"), "shop/web-1 ünïcode");
    }
}
