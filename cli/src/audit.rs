//! nskctl audit: the daemon's audit log (a JSON-lines file it names in
//! GetInfo), read directly: same user, no credentials in it.

use std::{
    io::{Read, Seek, SeekFrom},
    path::Path,
    process::ExitCode,
    time::Duration,
};

use nskd_proto::v1::DaemonInfo;
use serde_json::Value;

/// One entry on one line.
fn line(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let who = if s("session").is_empty() {
        s("client").to_string()
    } else {
        format!("{} [{}]", s("client"), s("session"))
    };
    let what = [s("verb"), s("resource"), s("namespace"), s("name")]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let tool = if s("tool").is_empty() {
        String::new()
    } else {
        format!(" via {}", s("tool"))
    };
    format!(
        "{}  {who}{tool}  {what}  cluster={}  {}  {}ms",
        s("time"),
        if s("cluster").is_empty() {
            "-"
        } else {
            s("cluster")
        },
        s("outcome"),
        v.get("duration_ms").and_then(Value::as_u64).unwrap_or(0)
    )
}

fn print(raw: &str, json: bool) {
    if json {
        println!("{raw}");
    } else if let Ok(v) = serde_json::from_str::<Value>(raw) {
        println!("{}", line(&v));
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
