//! Hostile kubeconfigs for the fake nsk and the fake Rancher: each mode
//! makes the fake hand out a kubeconfig that, if nskd used it, would run a
//! command, read a local file, or send the credential somewhere else. Tests
//! assert nothing of the sort happens and the refused field is named.

use std::path::Path;

use serde_json::{Map, Value, json};

/// One way a fetched kubeconfig can carry more than data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hostile {
    /// `users[0].user.exec`: a shell command that creates `marker` (and
    /// prints a valid credential, so it would "work").
    Exec {
        /// File the command would create.
        marker: String,
    },
    /// `users[0].user.tokenFile`: a local file sent as the bearer token.
    TokenFile {
        /// The file.
        path: String,
    },
    /// `users[0].user.client-certificate` / `client-key`: file paths.
    ClientCertFile {
        /// The certificate file.
        path: String,
    },
    /// `users[0].user.auth-provider`.
    AuthProvider,
    /// `clusters[0].cluster.proxy-url`: every request through `url`.
    ProxyUrl {
        /// The proxy (a listener the test owns).
        url: String,
    },
    /// `clusters[0].cluster.insecure-skip-tls-verify: true`.
    InsecureSkipTls,
    /// `clusters[0].cluster.server` on another host or port.
    ForeignServer {
        /// The server (a listener the test owns).
        server: String,
    },
}

impl Hostile {
    /// The field nskd must name when it refuses this kubeconfig.
    pub fn field(&self) -> &'static str {
        match self {
            Hostile::Exec { .. } => "users[0].user.exec",
            Hostile::TokenFile { .. } => "users[0].user.tokenFile",
            Hostile::ClientCertFile { .. } => "users[0].user.client-certificate",
            Hostile::AuthProvider => "users[0].user.auth-provider",
            Hostile::ProxyUrl { .. } => "clusters[0].cluster.proxy-url",
            Hostile::InsecureSkipTls => "clusters[0].cluster.insecure-skip-tls-verify",
            Hostile::ForeignServer { .. } => "clusters[0].cluster.server",
        }
    }

    /// The whole `user` map, when this mode replaces it (the real token is
    /// dropped so that only the hostile field could authenticate).
    pub fn user(&self) -> Option<Map<String, Value>> {
        let v = match self {
            Hostile::Exec { marker } => json!({"exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "/bin/sh",
                "args": ["-c", format!("touch {}; echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"x\"}}}}'", shell_quote(marker))],
                "interactiveMode": "Never",
            }}),
            Hostile::TokenFile { path } => json!({"tokenFile": path}),
            Hostile::ClientCertFile { path } => {
                json!({"client-certificate": path, "client-key": path})
            }
            Hostile::AuthProvider => {
                json!({"auth-provider": {"name": "oidc", "config": {"id-token": "x", "idp-issuer-url": "https://127.0.0.1:1"}}})
            }
            _ => return None,
        };
        v.as_object().cloned()
    }

    /// Keys added to the `cluster` map.
    pub fn cluster_extra(&self) -> Map<String, Value> {
        let v = match self {
            Hostile::ProxyUrl { url } => json!({"proxy-url": url}),
            Hostile::InsecureSkipTls => json!({"insecure-skip-tls-verify": true}),
            _ => json!({}),
        };
        v.as_object().cloned().unwrap_or_default()
    }

    /// The server that replaces the real one, if any.
    pub fn server(&self) -> Option<String> {
        match self {
            Hostile::ForeignServer { server } => Some(server.clone()),
            _ => None,
        }
    }

    /// Every mode, with markers and files under `dir` and the listeners of
    /// the test (`proxy`, `foreign`: `https://host:port`).
    pub fn all(dir: &Path, proxy: &str, foreign: &str) -> Vec<Hostile> {
        let f = |name: &str| dir.join(name).display().to_string();
        vec![
            Hostile::Exec {
                marker: f("exec-ran"),
            },
            Hostile::TokenFile {
                path: f("token-file"),
            },
            Hostile::ClientCertFile {
                path: f("client.pem"),
            },
            Hostile::AuthProvider,
            Hostile::ProxyUrl {
                url: proxy.to_string(),
            },
            Hostile::InsecureSkipTls,
            Hostile::ForeignServer {
                server: foreign.to_string(),
            },
        ]
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A TCP listener that counts connections (and answers none): the proxy
/// or foreign server of a hostile kubeconfig, which must never be reached.
#[derive(Debug)]
pub struct Tripwire {
    addr: std::net::SocketAddr,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Tripwire {
    /// Listens on `ip` (any port), counting accepted connections.
    pub fn bind(ip: &str) -> Self {
        let listener = std::net::TcpListener::bind((ip, 0))
            .unwrap_or_else(|e| panic!("cannot listen on {ip}: {e}"));
        let addr = listener.local_addr().unwrap();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(conn);
            }
        });
        Self { addr, hits }
    }

    /// `scheme://ip:port`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}
