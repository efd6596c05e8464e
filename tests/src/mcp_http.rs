//! A bare MCP-over-HTTP client for `mcp-shim --http`: one POST per
//! connection, so a round-robin proxy spreads consecutive requests.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use serde_json::Value;

/// One HTTP request to loopback `port`: status (0 when the connection
/// failed), the header block and the body.
pub fn raw(
    port: u16,
    session: Option<&str>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new(), String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(id) = session {
        head.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if write!(s, "{head}\r\n{body}").is_err() {
        return (0, String::new(), String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (headers, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, headers.to_string(), rest.to_string())
}

/// One POST /mcp on loopback `port`: status (0 when the connection
/// failed), the Mcp-Session-Id header, and the JSON-RPC answer in the body
/// (SSE or JSON).
pub fn post(
    port: u16,
    session: Option<&str>,
    token: Option<&str>,
    body: &Value,
) -> (u16, Option<String>, Option<Value>) {
    let (status, headers, rest) = raw(port, session, "POST", "/mcp", token, &body.to_string());
    let session = headers.lines().find_map(|l| {
        l.to_lowercase()
            .starts_with("mcp-session-id:")
            .then(|| l.split_once(':').unwrap().1.trim().to_string())
    });
    let message = rest
        .lines()
        .filter_map(|l| {
            l.strip_prefix("data:")
                .map(str::trim)
                .or(l.trim().starts_with('{').then_some(l.trim()))
        })
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("id").is_some());
    (status, session, message)
}

/// `mcp-shim --http 127.0.0.1:<port> --stateless` serving the daemon at a
/// socket with a given bearer token; killed when dropped.
#[derive(Debug)]
pub struct StatelessShim {
    child: std::process::Child,
    /// The loopback port it serves MCP on (path /mcp).
    pub port: u16,
}

impl StatelessShim {
    /// Starts one and waits (10 s at most) until it listens.
    pub fn start(socket: &std::path::Path, token: &str) -> Self {
        Self::start_with(socket, token, false)
    }

    /// The same, with `--http-oidc` when `oidc` (callers' OIDC tokens
    /// checked against the daemon's `[http_auth]`).
    pub fn start_with(socket: &std::path::Path, token: &str, oidc: bool) -> Self {
        let port = crate::endpoints::refused_port();
        let child = std::process::Command::new(crate::bins::bin("mcp-shim"))
            .args(["--http", &format!("127.0.0.1:{port}"), "--stateless"])
            .args(oidc.then_some("--http-oidc"))
            .arg("--socket")
            .arg(socket)
            .env("NSKD_SHIM_TOKEN", token)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mcp-shim");
        let shim = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mcp-shim --http 127.0.0.1:{port} --stateless did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        shim
    }
}

impl Drop for StatelessShim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
