//! API version mismatch, against a fake daemon that speaks v99.

use std::path::Path;

use nskd_e2e::{
    daemon::{nskctl, text},
    mcp::Shim,
};
use nskd_proto::v1::{
    DaemonInfo, GetInfoRequest,
    daemon_server::{Daemon, DaemonServer},
};
use serde_json::json;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

struct FutureDaemon;

#[tonic::async_trait]
impl Daemon for FutureDaemon {
    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<DaemonInfo>, Status> {
        Ok(Response::new(DaemonInfo {
            version: "9.9.9".into(),
            api_version: 99,
            environment: "e2e".into(),
            ..Default::default()
        }))
    }
}

fn serve(socket: &Path) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DaemonServer::new(FutureDaemon))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_of_another_api_version_is_explained_to_nskctl_and_the_shim() {
    let dir = tempfile::tempdir().unwrap();
    // Clients talk only to sockets in a private directory of their user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.path().join("e2e.sock");
    serve(&socket);

    let s = socket.clone();
    let out = tokio::task::spawn_blocking(move || nskctl(&s, &["status"]))
        .await
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("API v99") && stderr.contains("v1") && stderr.contains("same release"),
        "{stderr}"
    );

    let shim = Shim::start(&socket).await;
    let a = shim.err("namespaces_list", json!({})).await;
    assert!(a.contains("API v99"), "{a}");
    shim.close().await;
}
