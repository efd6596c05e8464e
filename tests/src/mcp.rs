//! An MCP client driving the real `mcp-shim` binary (or any MCP server,
//! e.g. the Go kubernetes-mcp-server) over stdio.

use std::path::Path;

use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, Tool},
    service::RunningService,
    transport::TokioChildProcess,
};
use serde_json::Value;

use crate::bins::bin;

/// One agent session (one shim process, or another MCP server's).
pub struct Shim {
    client: RunningService<RoleClient, ()>,
    pid: Option<u32>,
}

/// How the line under an answer from nskd's watch cache begins
/// (shim/src/render.rs).
pub const FROM_CACHE: &str = "(from nskd's watch cache";

/// Whether an answer's text came from nskd's watch cache.
pub fn is_cached(text: &str) -> bool {
    text.lines().any(|l| l.starts_with(FROM_CACHE))
}

/// A tool's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// All text content joined.
    pub text: String,
    /// Each text content item (the answer, then notes such as the
    /// watch-cache line).
    pub parts: Vec<String>,
    /// The tool reported an error.
    pub is_error: bool,
}

impl Shim {
    /// Starts `mcp-shim --socket SOCKET` and initializes MCP.
    pub async fn start(socket: &Path) -> Shim {
        Self::start_with(socket, &[]).await
    }

    /// Same, with extra arguments.
    pub async fn start_with(socket: &Path, extra: &[&str]) -> Shim {
        let mut cmd = tokio::process::Command::new(bin("mcp-shim"));
        cmd.arg("--socket")
            .arg(socket)
            .args(extra)
            .env_remove("NSKD_ENV");
        Self::spawn(cmd).await.expect("start mcp-shim")
    }

    /// Spawns any MCP server speaking stdio and initializes MCP.
    pub async fn spawn(cmd: tokio::process::Command) -> anyhow::Result<Shim> {
        let transport = TokioChildProcess::new(cmd)?;
        let pid = transport.id();
        let client = ().serve(transport).await?;
        Ok(Shim { client, pid })
    }

    /// The server process's id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Calls a tool with JSON arguments; `Err` when the session itself
    /// failed (transport closed, server gone).
    pub async fn try_call(&self, tool: &str, args: Value) -> Result<Answer, String> {
        let params = CallToolRequestParams::new(tool.to_string())
            .with_arguments(args.as_object().cloned().unwrap_or_default());
        let result = match self.client.call_tool(params).await {
            Ok(r) => r,
            // Invalid arguments come back as a JSON-RPC error: an error answer too.
            Err(rmcp::ServiceError::McpError(e)) => {
                return Ok(Answer {
                    text: e.message.to_string(),
                    parts: vec![e.message.to_string()],
                    is_error: true,
                });
            }
            Err(e) => return Err(format!("{tool}: MCP call failed: {e}")),
        };
        let parts: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        Ok(Answer {
            text: parts.join("\n"),
            parts,
            is_error: result.is_error.unwrap_or(false),
        })
    }

    /// Calls a tool with JSON arguments (panics when the session failed).
    pub async fn call(&self, tool: &str, args: Value) -> Answer {
        self.try_call(tool, args)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Calls a tool that must succeed; returns its text.
    pub async fn ok(&self, tool: &str, args: Value) -> String {
        let a = self.call(tool, args.clone()).await;
        assert!(!a.is_error, "{tool} {args} failed: {}", a.text);
        a.text
    }

    /// Calls a tool that must fail; returns its error text.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let a = self.call(tool, args.clone()).await;
        assert!(a.is_error, "{tool} {args} should have failed: {}", a.text);
        a.text
    }

    /// tools/list.
    pub async fn tools(&self) -> Vec<Tool> {
        self.client.list_all_tools().await.expect("tools/list")
    }

    /// Closes the session.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
    }
}
