//! Endpoints that never work: a refused port and a black hole (accepts TCP,
//! never answers), for kubeconfigs of dead clusters.

use std::net::TcpListener;

/// A loopback port with nothing listening (connections are refused).
pub fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A listener that completes TCP handshakes (kernel backlog) and never
/// reads or answers. Alive as long as the value is.
#[derive(Debug)]
pub struct BlackHole {
    _listener: TcpListener,
    /// Its port.
    pub port: u16,
}

impl BlackHole {
    /// Opens one.
    pub fn open() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        Self {
            _listener: listener,
            port,
        }
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1:`port` (the daemon's metrics and
/// health port): status code and body. The port opens a moment after the
/// socket (a starting daemon): connecting is retried for up to 5 s.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("connect to the daemon's HTTP port {port}: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
