//! Reading from a node's kubelet through the API server's node proxy: its
//! logs (`/logs/...`) and its stats summary (`/stats/summary`), and nothing
//! else of the kubelet.

use serde_json::Value;

use super::{OpOptions, Rendered, call::Call, core_kind, shape::newest_lines};
use crate::{
    error::OpError,
    pool::ClusterClient,
    request::{
        names::NodeName,
        path::{self, KubeletPath},
    },
    safety::Action,
};

/// What to read from the node.
#[derive(Debug, Clone)]
pub struct NodeRead {
    /// Node name.
    pub node: NodeName,
    /// A log file (or the list), or the stats summary.
    pub what: KubeletPath,
    /// For logs: keep only the last N lines (0 = all that fit).
    pub tail: usize,
}

/// GETs `r.what` from the node's kubelet.
pub async fn read(cc: &ClusterClient, r: &NodeRead, opts: &OpOptions) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let nodes = core_kind(cc, "Node", opts.timeout).await?;
    let shown = r.what.display();
    opts.allow(
        cc,
        &nodes,
        Action::Get,
        Some("proxy"),
        &format!("read {shown} of node {}", r.node),
    )?;
    let call = Call::new(cc, "get", format!("nodes/proxy {}/{shown}", r.node), opts).since(started);
    let request = http::Request::get(path::node_proxy(&r.node, &r.what))
        .body(Vec::new())
        .map_err(|e| OpError::InvalidArgument(format!("bad node path {shown:?}: {e}")))?;
    let reply = call.tail(request, opts.max_bytes.saturating_mul(4)).await?;
    let text = match r.what {
        KubeletPath::StatsSummary => {
            // Pretty JSON is the point of the summary: a cut one is useless.
            if reply.skipped_bytes > 0 {
                return Err(OpError::TooLarge {
                    cluster: cc.name.clone(),
                    what: format!("get {}", call.resource()),
                    limit: opts.max_bytes * 4,
                    hint: "the node runs too many pods to summarize here; use pods_top / nodes_top"
                        .into(),
                });
            }
            let text = reply.text();
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(text),
                Err(_) => {
                    return Err(OpError::UnexpectedAnswer {
                        cluster: cc.name.clone(),
                        what: format!("get {}", call.resource()),
                        expected: "the kubelet's JSON stats summary".into(),
                        got: format!("{:?} content", reply.media_type()),
                    });
                }
            }
        }
        KubeletPath::Logs(_) => reply.text(),
    };
    let newest = newest_lines(
        &text,
        reply.skipped_lines,
        reply.skipped_bytes > 0,
        r.tail,
        opts.max_bytes.saturating_sub(200),
    );
    let mut out = String::new();
    if newest.omitted > 0 {
        out.push_str(&format!(
            "... {} earlier lines left out (answer capped at {} bytes)\n",
            newest.omitted, opts.max_bytes
        ));
    }
    out.push_str(&newest.text);
    out.push('\n');
    Ok(Rendered {
        text: out,
        items: newest.kept_lines,
        omitted: newest.omitted,
        ..Default::default()
    })
}
