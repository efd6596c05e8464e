//! Reading from a node's kubelet through the API server's node proxy:
//! its logs (`/logs/...`) and its stats summary (`/stats/summary`).

use serde_json::Value;

use super::{Rendered, list::OpOptions};
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
};

/// What to read from the node.
#[derive(Debug, Clone, Default)]
pub struct NodeRead {
    /// Node name.
    pub node: String,
    /// Path under the kubelet, e.g. `logs/kubelet.log` or `stats/summary`.
    pub path: String,
    /// For logs: keep only the last N lines (0 = all that fit).
    pub tail: usize,
}

/// GETs `path` from the node's kubelet.
pub async fn read(cc: &ClusterClient, r: &NodeRead, opts: &OpOptions) -> Result<Rendered, OpError> {
    if r.node.trim().is_empty() {
        return Err(OpError::InvalidArgument(
            "`name` (the node) is required; nodes_list shows them".into(),
        ));
    }
    let path = r.path.trim_start_matches('/');
    if path.contains("..") {
        return Err(OpError::InvalidArgument(format!(
            "{path:?}: `..` is not allowed in a node path"
        )));
    }
    let resource = format!("nodes/proxy {}/{path}", r.node);
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "get",
        resource: &resource,
    };
    let request = http::Request::get(format!("/api/v1/nodes/{}/proxy/{path}", r.node))
        .body(Vec::new())
        .map_err(|e| OpError::InvalidArgument(format!("bad node path {path:?}: {e}")))?;
    let text = match tokio::time::timeout(opts.timeout, cc.client.request_text(request)).await {
        Err(_) => return Err(ctx.timeout(opts.timeout)),
        Ok(Err(e)) => return Err(ctx.error(e)),
        Ok(Ok(t)) => t,
    };
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(text),
        Err(_) => text,
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let total = lines.len() as u32;
    if r.tail > 0 && lines.len() > r.tail {
        lines.drain(..lines.len() - r.tail);
    }
    // Keep the newest lines that fit.
    let mut used = 0;
    let mut start = lines.len();
    while start > 0 && used + lines[start - 1].len() < opts.max_bytes {
        used += lines[start - 1].len() + 1;
        start -= 1;
    }
    let kept = &lines[start..];
    let omitted = total - kept.len() as u32;
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!(
            "... {start} earlier lines left out (answer capped at {} bytes)\n",
            opts.max_bytes
        ));
    }
    out.push_str(&kept.join("\n"));
    out.push('\n');
    Ok(Rendered {
        text: out,
        items: kept.len() as u32,
        omitted,
        ..Default::default()
    })
}
