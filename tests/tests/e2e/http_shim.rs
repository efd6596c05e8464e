//! mcp-shim --http: MCP over streamable HTTP, per-session active clusters,
//! and the bearer token, always required (loopback included): given or
//! generated into a private file.

use std::{
    io::Read,
    net::TcpStream,
    process::{Child, Command, Stdio},
};

use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec},
    endpoints::refused_port,
    rig::SHARED,
};
use serde_json::{Value, json};

pub(crate) use nskd_e2e::mcp_http::{post, raw};

use crate::{eventually, rig_or_skip};

pub(crate) struct Killed(pub(crate) Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn initialize(port: u16, token: Option<&str>) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e-http", "version": "1"}}});
    let (status, session, message) = post(port, None, token, &init);
    assert_eq!(status, 200, "{message:?}");
    let session = session.expect("Mcp-Session-Id");
    post(
        port,
        Some(&session),
        token,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    session
}

pub(crate) fn call(
    port: u16,
    session: &str,
    token: Option<&str>,
    tool: &str,
    args: Value,
) -> String {
    let req = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    let (status, _, message) = post(port, Some(session), token, &req);
    assert_eq!(status, 200, "{tool}: {message:?}");
    let message = message.unwrap_or_else(|| panic!("{tool}: no JSON-RPC answer"));
    message["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{message}"))
        .to_string()
}

/// Starts `mcp-shim --http addr`; its runtime dir (where a generated token
/// goes) is `runtime`.
fn start_shim(
    socket: &std::path::Path,
    addr: &str,
    token: Option<&str>,
    runtime: &std::path::Path,
) -> Killed {
    let mut cmd = Command::new(bin("mcp-shim"));
    cmd.arg("--http")
        .arg(addr)
        .arg("--socket")
        .arg(socket)
        .env("XDG_RUNTIME_DIR", runtime)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    match token {
        Some(t) => cmd.env("NSKD_SHIM_TOKEN", t),
        None => cmd.env_remove("NSKD_SHIM_TOKEN"),
    };
    Killed(cmd.spawn().unwrap())
}

/// Stops the shim and returns what it printed on stderr.
fn stop_and_read_stderr(mut shim: Killed) -> String {
    let _ = shim.0.kill();
    let _ = shim.0.wait();
    let mut stderr = String::new();
    shim.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

fn init_message() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}})
}

#[test]
fn http_sessions_keep_their_own_active_cluster() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &SHARED));
    let runtime = tempfile::tempdir().unwrap();
    let port = refused_port();
    let shim = start_shim(
        &d.socket,
        &format!("127.0.0.1:{port}"),
        None,
        runtime.path(),
    );
    // No token given, loopback: one is generated into a private file.
    let token_file = runtime.path().join(format!("nskd/shim-{port}.token"));
    let token = eventually(10.0, || {
        std::fs::read_to_string(&token_file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    })
    .expect("generated token file");
    let token = token.trim();
    assert!(token.len() >= 43, "{token:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(token_file.parent().unwrap())
            .unwrap()
            .mode()
            & 0o777,
        0o700
    );
    assert!(
        eventually(10.0, || TcpStream::connect(("127.0.0.1", port)).ok()).is_some(),
        "shim did not listen"
    );
    // Loopback no longer means "no token".
    assert_eq!(post(port, None, None, &init_message()).0, 401);
    let t = Some(token);

    let a = initialize(port, t);
    let b = initialize(port, t);
    assert_ne!(a, b);
    call(port, &a, t, "cluster_use", json!({"cluster": "c1-lax1"}));
    assert!(call(port, &a, t, "cluster_current", json!({})).contains("c1-lax1"));
    assert!(call(port, &b, t, "cluster_current", json!({})).contains("c1-sv5"));
    let ns = call(
        port,
        &a,
        t,
        "namespaces_list",
        json!({"labelSelector": "cluster=c1-lax1"}),
    );
    assert_eq!(
        ns.lines().filter(|l| !l.trim().is_empty()).count(),
        4,
        "header + 3 namespaces of c1-lax1:\n{ns}"
    );
    let stderr = stop_and_read_stderr(shim);
    assert!(
        stderr.contains(&token_file.display().to_string()),
        "the token file's path is printed: {stderr}"
    );
    assert!(!stderr.contains(token), "the token itself is not printed");
}

#[test]
fn a_bearer_token_is_always_required_and_checked() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let runtime = tempfile::tempdir().unwrap();
    let port = refused_port();
    // A short token is refused at start, beyond loopback as on it.
    for addr in [format!("0.0.0.0:{port}"), format!("127.0.0.1:{port}")] {
        let mut short = start_shim(&d.socket, &addr, Some("short-token"), runtime.path());
        let status =
            eventually(5.0, || short.0.try_wait().ok().flatten()).expect("must refuse to start");
        assert!(!status.success());
        let stderr = stop_and_read_stderr(short);
        assert!(
            stderr.contains("NSKD_SHIM_TOKEN") && stderr.contains("at least 16"),
            "{stderr}"
        );
    }

    let token = "e2e-shim-token-0123456789";
    let _shim = start_shim(
        &d.socket,
        &format!("0.0.0.0:{port}"),
        Some(token),
        runtime.path(),
    );
    assert!(eventually(10.0, || TcpStream::connect(("127.0.0.1", port)).ok()).is_some());
    assert!(
        !runtime
            .path()
            .join(format!("nskd/shim-{port}.token"))
            .exists(),
        "a given token is not written anywhere"
    );
    let init = init_message();
    let (status, _, _) = post(port, None, None, &init);
    assert_eq!(status, 401, "no token");
    for wrong in [
        "wrong-token-wrong-token-0",
        "e2e-shim-token-012345678",
        "e2e-shim-token-01234567890",
    ] {
        assert_eq!(post(port, None, Some(wrong), &init).0, 401, "{wrong}");
    }
    let session = initialize(port, Some(token));
    assert!(call(port, &session, Some(token), "namespaces_list", json!({})).contains("shop"));
}
