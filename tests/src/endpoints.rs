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
