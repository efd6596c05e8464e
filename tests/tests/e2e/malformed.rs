//! Malformed protocol input against the real binaries: the shim answers
//! garbage on stdin with JSON-RPC errors and keeps serving;
//! the daemon drops bad socket clients and keeps serving the others.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{Receiver, RecvTimeoutError, channel},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

/// `mcp-shim` driven line by line over stdio, without an MCP library in
/// between, so that anything can be sent.
struct RawShim {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    next_id: u64,
}

impl RawShim {
    /// Starts the shim on `socket` and completes the MCP handshake.
    fn start(socket: &std::path::Path) -> RawShim {
        let mut child = Command::new(bin("mcp-shim"))
            .arg("--socket")
            .arg(socket)
            .env_remove("NSKD_ENV")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mcp-shim");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shim = RawShim {
            child,
            stdin,
            lines,
            next_id: 1000,
        };
        let init = shim.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "malformed", "version": "1"}}),
        );
        assert!(init.1.get("result").is_some(), "initialize: {}", init.1);
        shim.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        shim
    }

    fn send(&mut self, line: &str) {
        self.stdin
            .write_all(line.as_bytes())
            .expect("write to shim");
        self.stdin.write_all(b"\n").expect("write to shim");
        self.stdin.flush().unwrap();
    }

    /// Sends a request; returns the messages that came before its answer,
    /// and the answer.
    fn request(&mut self, method: &str, params: Value) -> (Vec<Value>, Value) {
        self.next_id += 1;
        let id = self.next_id;
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        self.answer(id)
    }

    /// Reads messages until the one with `id`.
    fn answer(&mut self, id: u64) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => panic!("no answer to id {id}; got {before:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "mcp-shim closed stdout (exit {:?}) before answering id {id}; got {before:?}",
                        self.child.try_wait()
                    )
                }
            };
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("shim printed a non-JSON line ({e}): {line:?}"));
            assert_eq!(msg["jsonrpc"], "2.0", "{msg}");
            if msg["id"] == json!(id) {
                return (before, msg);
            }
            before.push(msg);
        }
    }

    /// Sends `line`, then a ping that must be answered; returns what came
    /// before the pong.
    fn send_then_ping(&mut self, line: &str) -> Vec<Value> {
        self.send(line);
        let (before, pong) = self.request("ping", json!({}));
        assert_eq!(pong["result"], json!({}), "after {line:.80}: {pong}");
        before
    }
}

impl Drop for RawShim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn error_code(msg: &Value) -> Option<i64> {
    msg["error"]["code"].as_i64()
}

#[test]
fn shim_answers_malformed_json_rpc_with_errors_and_keeps_serving() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-sv5"]));
    let mut shim = RawShim::start(&d.socket);

    // Not JSON: a parse error (-32700, id null) each; a blank line is no
    // message at all.
    for garbage in [
        "garbage",
        "{",
        "\u{0}\u{1}\u{ff}",
        "{\"jsonrpc\": \"2.0\", \"id\": 1,",
    ] {
        let before = shim.send_then_ping(garbage);
        assert!(
            before.len() == 1
                && error_code(&before[0]) == Some(-32700)
                && before[0]["id"].is_null(),
            "{garbage:?} -> {before:?}"
        );
    }
    assert_eq!(shim.send_then_ping("  "), Vec::<Value>::new());

    // JSON that is not a JSON-RPC request, or of the wrong version.
    for not_rpc in [
        json!([1, 2]),
        json!({"foo": 1}),
        json!("a string"),
        json!({"jsonrpc": "1.0", "id": 5, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": {"nested": true}, "method": "ping"}),
    ] {
        let before = shim.send_then_ping(&not_rpc.to_string());
        assert!(
            before.len() == 1 && error_code(&before[0]) == Some(-32600),
            "{not_rpc} -> {before:?}"
        );
    }

    let (_, unknown) = shim.request("no/such/method", json!({}));
    assert_eq!(error_code(&unknown), Some(-32601), "{unknown}");

    let (_, no_tool) = shim.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert_eq!(error_code(&no_tool), Some(-32602), "{no_tool}");
    assert!(
        no_tool["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{no_tool}"
    );

    // Wrong argument types and unknown arguments: an error the agent can read.
    for (tool, args, says) in [
        ("pods_list", json!({"namespace": 5}), "invalid type"),
        (
            "cluster_use",
            json!({"cluster": ["a", "b"]}),
            "invalid type",
        ),
        (
            "resources_scale",
            json!({"kind": "Deployment", "name": "x", "replicas": "many"}),
            "invalid type",
        ),
        (
            "namespaces_list",
            json!({"labelSelector": "a=b", "bogus_field": 1}),
            "unknown field `bogus_field`",
        ),
    ] {
        let (_, answer) = shim.request("tools/call", json!({"name": tool, "arguments": args}));
        let text = answer["error"]["message"]
            .as_str()
            .or(answer["result"]["content"][0]["text"].as_str())
            .unwrap_or_default();
        let is_error = answer.get("error").is_some() || answer["result"]["isError"] == json!(true);
        assert!(is_error && text.contains(says), "{tool} {args}: {answer}");
    }
    let (_, not_object) = shim.request(
        "tools/call",
        json!({"name": "pods_list", "arguments": [1, 2]}),
    );
    assert!(not_object.get("error").is_some(), "{not_object}");

    // A 5 MB message: refused or answered, then the shim goes on.
    let huge = "x".repeat(5 * 1024 * 1024);
    let (_, big) = shim.request(
        "tools/call",
        json!({"name": "pods_list", "arguments": {"namespace": huge}}),
    );
    assert!(
        big.get("error").is_some() || big["result"]["isError"] == json!(true),
        "5 MB namespace accepted: {:.300}",
        big.to_string()
    );
    let before = shim.send_then_ping(&format!("{{\"junk\": \"{huge}\"}}"));
    assert!(
        before.iter().all(|m| m.get("error").is_some()),
        "{before:.300?}"
    );

    // Still a working MCP server.
    let (_, ok) = shim.request(
        "tools/call",
        json!({"name": "namespaces_list", "arguments": {}}),
    );
    let text = ok["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("kube-system"), "{ok}");
}

/// A raw connection to the daemon's socket that sends `bytes` and reports
/// whether the daemon closed it (read returns EOF or an error) in time.
fn daemon_drops(socket: &std::path::Path, bytes: &[u8]) -> bool {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue, // a GOAWAY or SETTINGS frame first
        }
    }
    false
}

/// One gRPC call over HTTP/2 with a hand-made body; returns the HTTP status
/// and `grpc-status` (header or trailer).
async fn grpc_raw(socket: &std::path::Path, path: &str, body: Vec<u8>) -> (u16, Option<String>) {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let req = http::Request::post(format!("http://nskd{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = sender.send_request(req).await.expect("gRPC response");
    let status = resp.status().as_u16();
    let header = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    let collected = resp.into_body().collect().await.expect("body");
    let trailer = collected
        .trailers()
        .and_then(|t| t.get("grpc-status"))
        .map(|v| v.to_str().unwrap().to_string());
    (status, header.or(trailer))
}

/// A gRPC message frame: uncompressed flag, big-endian length, payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend((payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_drops_malformed_socket_clients_and_keeps_serving() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let socket = d.socket.clone();

    let serves = |d: &Daemon| {
        let out = d.nskctl(&["clusters"]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("c1-sv5"),
            "daemon stopped serving: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log_text()
        );
    };

    // A client that never finishes its preface must not block others.
    let mut stuck = UnixStream::connect(&socket).unwrap();
    stuck.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    serves(&d);

    let random: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
    let junk = tokio::task::spawn_blocking({
        let socket = socket.clone();
        move || {
            (
                daemon_drops(&socket, &random),
                daemon_drops(&socket, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                daemon_drops(
                    &socket,
                    &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff"[..],
                ),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(
        junk,
        (true, true, true),
        "random bytes / HTTP/1 / bad frames"
    );
    // A truncated preface, then the client goes away.
    drop(stuck);
    serves(&d);

    // Valid gRPC framing, but the body is not the method's protobuf.
    let (http, grpc) = grpc_raw(
        &socket,
        "/nskd.v1.Kube/List",
        frame(&[0xff, 0xff, 0xff, 0xff]),
    )
    .await;
    assert_eq!(http, 200);
    assert!(
        matches!(grpc.as_deref(), Some(s) if s != "0"),
        "grpc-status {grpc:?}"
    );
    // A frame that claims more bytes than it carries.
    let mut short = frame(&[0x0a, 0x00]);
    short[4] = 200;
    let (_, grpc) = grpc_raw(&socket, "/nskd.v1.Daemon/GetInfo", short).await;
    assert!(
        matches!(grpc.as_deref(), Some(s) if s != "0"),
        "grpc-status {grpc:?}"
    );
    // Over the 16 MiB message limit (nskd_proto::client::MAX_MESSAGE_BYTES):
    // refused before decoding (tonic says OUT_OF_RANGE, 11;
    // RESOURCE_EXHAUSTED, 8, would do as well).
    let mut huge = vec![0x12, 0x80, 0x80, 0x80, 0x09]; // field 2, length 18 MiB
    huge.extend(std::iter::repeat_n(b'a', 18 * 1024 * 1024));
    let (_, grpc) = grpc_raw(&socket, "/nskd.v1.Kube/List", frame(&huge)).await;
    assert!(
        matches!(grpc.as_deref(), Some("8" | "11")),
        "oversized message: grpc-status {grpc:?}"
    );
    // An unknown method: UNIMPLEMENTED (12).
    let (_, grpc) = grpc_raw(&socket, "/nskd.v1.Kube/NoSuchMethod", frame(&[])).await;
    assert_eq!(grpc.as_deref(), Some("12"));

    serves(&d);
}
