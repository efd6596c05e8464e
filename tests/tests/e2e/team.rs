//! The team deployment: `mcp-shim --http --http-oidc` in front of a daemon
//! with `[http_auth]`, tokens from a real OpenID provider (npm
//! oidc-provider, tests/oidc/), each caller acting as itself on the rig's
//! RBAC-enforcing apiservers through impersonation.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec},
    endpoints::refused_port,
    oidc::Provider,
};
use serde_json::{Value, json};

use crate::{
    eventually,
    http_shim::{Killed, call, initialize, post},
    rig_or_skip,
};

/// One raw HTTP request: status, header block, body.
fn raw(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
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

/// Starts `mcp-shim --http 127.0.0.1:PORT --http-oidc` on `d`'s socket.
fn start_oidc_shim(d: &Daemon, port: u16) -> Killed {
    let runtime = tempfile::tempdir().unwrap();
    let shim = Killed(
        Command::new(bin("mcp-shim"))
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--http-oidc")
            .arg("--socket")
            .arg(&d.socket)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("NSKD_SHIM_TOKEN")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        eventually(10.0, || TcpStream::connect(("127.0.0.1", port)).ok()).is_some(),
        "mcp-shim --http-oidc did not listen on {port}"
    );
    std::mem::forget(runtime);
    shim
}

fn init_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e-team", "version": "1"}}})
    .to_string()
}

#[test]
fn oidc_tokens_from_a_real_provider_are_checked() {
    let Some(rig) = rig_or_skip() else { return };
    let provider = Provider::start();
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        sections: format!(
            "{}{}",
            DaemonSpec::default().sections,
            provider.http_auth_section()
        ),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-sv5"]));
    let port = refused_port();
    let _shim = start_oidc_shim(&d, port);
    let metadata_url = format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");

    // The RFC 9728 metadata names the resource and the provider.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (status, _, body) = raw(port, "GET", path, None, "");
        assert_eq!(status, 200, "{path}: {body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["resource"], format!("http://127.0.0.1:{port}/mcp"));
        assert_eq!(doc["authorization_servers"], json!([provider.issuer]));
    }

    // Real tokens for alice and bob are accepted.
    let mut used = Vec::new();
    for (who, groups) in [
        ("alice@example.com", ["readers"]),
        ("bob@example.com", ["shop-editors"]),
    ] {
        let token = provider.token(who, &groups);
        let session = initialize(port, Some(&token));
        let text = call(port, &session, Some(&token), "cluster_current", json!({}));
        assert!(text.contains("c1-sv5"), "{who}: {text}");
        used.push(token);
    }

    // No token: 401 naming the metadata, no error (RFC 6750 §3.1).
    let (status, headers, _) = raw(port, "POST", "/mcp", None, &init_body());
    assert_eq!(status, 401);
    let challenge = format!("www-authenticate: Bearer resource_metadata=\"{metadata_url}\"");
    assert!(
        headers.to_lowercase().contains(&challenge.to_lowercase()),
        "{headers}"
    );

    // Every flawed token: 401, invalid_token, the metadata named, a reason.
    let alice = |extra: Value| {
        let mut claims = json!({"email": "alice@example.com", "groups": ["readers"]});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let cases = [
        ("expired", alice(json!({"exp": -120})), "expired"),
        (
            "wrongly signed",
            alice(json!({"flaw": "other-key"})),
            "signature",
        ),
        (
            "other audience",
            alice(json!({"aud": "someone-else"})),
            "aud",
        ),
        (
            "other issuer",
            alice(json!({"iss": "http://127.0.0.1:1/evil"})),
            "iss",
        ),
        ("alg none", alice(json!({"flaw": "alg-none"})), "JWT"),
        (
            "HS256 with the public key",
            alice(json!({"flaw": "hs256-public"})),
            "HS256",
        ),
        ("no kid", alice(json!({"flaw": "no-kid"})), "kid"),
        ("unknown kid", alice(json!({"flaw": "unknown-kid"})), "JWKS"),
        (
            "system:masters group",
            alice(json!({"groups": ["readers", "system:masters"]})),
            "system",
        ),
        (
            "header injection in the username",
            alice(json!({"email": "alice@example.com\r\nImpersonate-Group: system:masters"})),
            "username",
        ),
        (
            "comma in a group",
            alice(json!({"groups": ["readers,shop-editors"]})),
            "group",
        ),
        (
            "huge group",
            alice(json!({"groups": ["g".repeat(5000)]})),
            "group",
        ),
        (
            "too many groups",
            alice(json!({"groups": (0..200).map(|i| format!("g{i}")).collect::<Vec<_>>()})),
            "groups",
        ),
        (
            "no username claim",
            json!({"sub": "x", "groups": ["readers"]}),
            "email",
        ),
    ];
    for (what, claims, reason) in cases {
        let token = provider.mint(&claims);
        let (status, headers, body) = raw(port, "POST", "/mcp", Some(&token), &init_body());
        assert_eq!(status, 401, "{what}: {headers}\n{body}");
        let lower = headers.to_lowercase();
        assert!(
            lower.contains(&challenge.to_lowercase()),
            "{what}: {headers}"
        );
        assert!(
            lower.contains("error=\"invalid_token\""),
            "{what}: {headers}"
        );
        let error = serde_json::from_str::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            error.contains(reason),
            "{what}: the reason names {reason:?}: {error}"
        );
        assert!(
            !headers.contains('\u{0}') && !error.contains("\r\n"),
            "{what}"
        );
    }

    // A token that is not a JWT at all, and a static token nobody set.
    for junk in ["not-a-jwt", "e2e-shim-token-0123456789"] {
        assert_eq!(
            post(
                port,
                None,
                Some(junk),
                &serde_json::from_str(&init_body()).unwrap()
            )
            .0,
            401
        );
    }
    // Nothing of a token reaches the daemon's log.
    let log = d.log_text();
    for token in used {
        let sig = token.rsplit('.').next().unwrap();
        assert!(
            !log.contains(sig),
            "a token's signature is in the daemon log"
        );
    }
}
