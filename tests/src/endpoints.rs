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

/// A TCP proxy to `127.0.0.1:upstream` that holds every chunk of bytes, both
/// ways, for a delay that can be changed at any time: a cluster that works,
/// but late. Latency only; throughput is not limited. Stops accepting when
/// dropped.
#[derive(Debug)]
pub struct DelayProxy {
    /// Its port.
    pub port: u16,
    delay_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DelayProxy {
    /// Starts one in front of `upstream`.
    pub fn start(upstream: u16, delay: std::time::Duration) -> Self {
        use std::sync::{
            Arc,
            atomic::{AtomicBool, AtomicU64, Ordering},
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let delay_ms = Arc::new(AtomicU64::new(delay.as_millis() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (delay_ms.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                forward(client, upstream, &d);
            }
        });
        Self {
            port,
            delay_ms,
            stop,
        }
    }

    /// Changes the delay (applies to bytes read from now on).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.delay_ms.store(
            delay.as_millis() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What a Kubernetes Service does at layer 4: each new TCP connection goes
/// to the next of several upstream ports in turn (round robin), bytes are
/// copied as they are. Alive as long as the value is.
#[derive(Debug)]
pub struct ServiceProxy {
    /// Its port.
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Connections sent to each upstream, in the order given.
    sent: std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>>,
}

impl ServiceProxy {
    /// Starts one in front of `upstreams` (loopback ports).
    pub fn start(upstreams: Vec<u16>) -> Self {
        use std::sync::{
            Arc,
            atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let sent: Arc<Vec<AtomicUsize>> =
            Arc::new(upstreams.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = sent.clone();
        let no_delay = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                counts[n % upstreams.len()].fetch_add(1, Ordering::SeqCst);
                forward(client, upstreams[n % upstreams.len()], &no_delay);
            }
        });
        Self { port, stop, sent }
    }

    /// How many connections each upstream was sent so far.
    pub fn connections(&self) -> Vec<usize> {
        self.sent
            .iter()
            .map(|n| n.load(std::sync::atomic::Ordering::SeqCst))
            .collect()
    }
}

impl Drop for ServiceProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Connects to loopback `upstream` and copies both ways between it and
/// `client`, each chunk `delay` ms late (nothing when the connect fails).
fn forward(
    client: std::net::TcpStream,
    upstream: u16,
    delay: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
        delayed_pipe(client, s2, delay.clone());
        delayed_pipe(server, c2, delay.clone());
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
fn delayed_pipe(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    delay: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::io::{Read, Write};
    let (tx, rx) = std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let ms = delay.load(std::sync::atomic::Ordering::SeqCst);
                    let due = std::time::Instant::now() + std::time::Duration::from_millis(ms);
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// Sums the Prometheus series `name` on `port`'s /metrics whose labels
/// contain every one of `labels` (e.g. `cluster="c1"`).
pub fn metric_sum(port: u16, name: &str, labels: &[&str]) -> f64 {
    let (_, text) = http_get(port, "/metrics");
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
