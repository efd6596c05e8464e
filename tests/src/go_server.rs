//! The Go kubernetes-mcp-server (installed from npm by
//! `scripts/go-mcp-server`) as an MCP server over stdio, for side-by-side
//! runs with nskd (`parity`, `bench`).

use std::path::Path;

use crate::mcp::Shim;

/// The command running the Go server on `kubeconfig`: every tool on its
/// current context, or with `multi_cluster` a `context` argument per call.
pub fn command(bin: &Path, kubeconfig: &Path, multi_cluster: bool) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--kubeconfig").arg(kubeconfig);
    if !multi_cluster {
        cmd.arg("--disable-multi-cluster");
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Starts the Go server and initializes MCP.
pub async fn start(bin: &Path, kubeconfig: &Path, multi_cluster: bool) -> anyhow::Result<Shim> {
    Shim::spawn(command(bin, kubeconfig, multi_cluster)).await
}
