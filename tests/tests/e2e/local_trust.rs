//! Local trust: clients refuse a socket, directory or daemon that is not
//! their user's before sending anything; `/metrics` and `/readyz` need a
//! bearer token beyond loopback; forced refreshes are spaced.

use std::{
    io::{Read, Write},
    os::unix::{
        fs::{PermissionsExt, chown},
        net::UnixListener,
    },
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use nskd_e2e::{
    bins::{as_other_user, bin},
    daemon::{Daemon, DaemonSpec, nskctl, text},
    endpoints::refused_port,
    fake_nsk::FakeState,
};
use serde_json::Value;

use crate::{nsk::nsk_daemon, rig_or_skip};

/// A socket that counts the bytes anyone sends it (it must stay at 0).
struct Planted {
    received: Arc<AtomicUsize>,
}

fn plant(path: &std::path::Path) -> Planted {
    let listener = UnixListener::bind(path).unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    Planted { received }
}

#[test]
fn clients_refuse_an_open_directory_or_a_non_socket_before_sending() {
    let home = tempfile::tempdir().unwrap();
    // A directory others can enter: they could have replaced the socket.
    let open = home.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = open.join("e2e.sock");
    let planted = plant(&socket);
    let out = nskctl(&socket, &["clusters"]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("refusing to talk to nskd")
            && stderr.contains("mode 0755")
            && stderr.contains(&format!("chmod 700 {}", open.display())),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(planted.received.load(Ordering::SeqCst), 0, "nothing sent");

    // A private directory holding a regular file where the socket should be.
    let private = home.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = private.join("e2e.sock");
    std::fs::write(&file, "").unwrap();
    let (_, stderr) = text(&nskctl(&file, &["clusters"]));
    assert!(stderr.contains("not a socket"), "{stderr}");

    // Every command checks first, `version` included.
    let out = Command::new(bin("nskctl"))
        .arg("--socket")
        .arg(&socket)
        .arg("version")
        .output()
        .unwrap();
    assert!(text(&out).1.contains("mode 0755"), "{}", text(&out).1);
    assert_eq!(planted.received.load(Ordering::SeqCst), 0);
}

/// As root: a socket and directory handed to uid 65534 (what another user
/// would plant), and a client of uid 65534 talking to a root daemon.
#[test]
fn clients_refuse_sockets_and_daemons_of_another_user() {
    if rustix::process::geteuid().as_raw() != 0
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!(
            "SKIPPED clients_refuse_sockets_and_daemons_of_another_user: needs root and setpriv"
        );
        return;
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = home.path().join("theirs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.join("e2e.sock");
    let planted = plant(&socket);
    // Another user's private directory: refused by us (root).
    chown(&dir, Some(65534), Some(65534)).unwrap();
    let (_, stderr) = text(&nskctl(&socket, &["clusters"]));
    assert!(
        stderr.contains("belongs to uid 65534") && stderr.contains("uid 0"),
        "{stderr}"
    );
    // Directory and socket of uid 65534, but the process serving it is
    // root: a client running as 65534 refuses it on the peer check.
    chown(&socket, Some(65534), Some(65534)).unwrap();
    let out = as_other_user(bin("nskctl"))
        .arg("--socket")
        .arg(&socket)
        .arg("clusters")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("runs as uid 0, not as you (uid 65534)"),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(planted.received.load(Ordering::SeqCst), 0, "nothing sent");
}

/// GET with an optional bearer token: status code.
fn get(port: u16, path: &str, token: Option<&str>) -> u16 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => panic!("connect {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn metrics_and_readyz_need_a_token_beyond_loopback() {
    let port = refused_port();
    // Beyond loopback without a token: check-config and the start refuse.
    let open = Daemon::prepare(
        &DaemonSpec {
            server: format!("http_bind = \"0.0.0.0\"\nport = {port}\n"),
            ..DaemonSpec::default()
        },
        |_| {},
    );
    let out = Command::new(bin("nskd"))
        .args(["check-config", "--config"])
        .arg(&open.config)
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("server.http_bind") && stdout.contains("http_token_file"),
        "{stdout}"
    );
    let out = Command::new(bin("nskd"))
        .arg("--config")
        .arg(&open.config)
        .arg("--socket")
        .arg(&open.socket)
        .env_remove("NSKD_HTTP_TOKEN")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("http_token_file"), "{stderr}");
    assert!(!open.socket.exists(), "never served");

    // With a token file: /metrics and /readyz's details need it, /healthz
    // does not; a probe without a token (a kubelet's) gets /readyz's status.
    let token = "e2e-metrics-token-0123456789";
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("http-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = Daemon::start(
        &DaemonSpec {
            server: format!(
                "http_bind = \"0.0.0.0\"\nport = {port}\nhttp_token_file = {:?}\n",
                token_file.display().to_string()
            ),
            ..DaemonSpec::default()
        },
        |_| {},
    );
    assert_eq!(get(port, "/healthz", None), 200);
    assert_eq!(get(port, "/metrics", None), 401, "/metrics without a token");
    for path in ["/readyz", "/ready"] {
        let (code, body) = nskd_e2e::endpoints::http_get(port, path);
        assert_eq!(code, 200, "{path} without a token: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], "ready", "{body}");
        assert!(
            body.get("components").is_none() && body.get("environment").is_none(),
            "{path} without a token shows details: {body}"
        );
    }
    for path in ["/metrics", "/readyz", "/ready"] {
        assert_eq!(
            get(port, path, Some("e2e-metrics-token-012345678X")),
            401,
            "{path} with a wrong token"
        );
    }
    assert_eq!(get(port, "/metrics", Some(token)), 200);
    // Ready or not (no clusters here), but answered: not 401.
    assert_ne!(get(port, "/readyz", Some(token)), 401);
    let detailed = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://127.0.0.1:{port}/readyz"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&detailed.stdout).contains("\"components\""),
        "{detailed:?}"
    );
    assert!(!d.log_text().contains(token), "the token is never logged");
}

#[test]
fn forced_refreshes_are_spaced_by_min_force_interval() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, fake, _home) = nsk_daemon(
        rig,
        FakeState::default(),
        false,
        "min_force_interval = \"30s\"\n",
    );
    let refresh = |args: &[&str]| -> Value {
        let mut all = vec!["--json", "refresh"];
        all.extend_from_slice(args);
        let out = d.nskctl(&all);
        assert!(out.status.success(), "{:?}", text(&out));
        serde_json::from_str(&text(&out).0).unwrap()
    };
    let first = refresh(&["--force"]);
    assert_eq!(first["outcome"], "Success", "{first}");
    assert!(first["note"].as_str().unwrap_or("").is_empty(), "{first}");
    let runs = fake.count();
    let second = refresh(&["--force"]);
    let note = second["note"].as_str().unwrap_or("");
    assert!(
        note.contains("a forced refresh ran 0s ago")
            && note.contains("next allowed in")
            && note.contains("min_force_interval"),
        "{second}"
    );
    assert_eq!(fake.count(), runs, "nsk was not run again");
    // A pattern does not get around it either.
    let third = refresh(&["--force", "--pattern", "c1-sv5"]);
    assert!(
        third["note"]
            .as_str()
            .unwrap_or("")
            .contains("a forced refresh ran"),
        "{third}"
    );
    assert_eq!(fake.count(), runs);
}
