//! Container logs through the API server (which asks the node's kubelet),
//! capped to the answer's byte budget, keeping the newest lines.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use super::{Rendered, list::OpOptions};
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
};

/// Which log.
#[derive(Debug, Clone, Default)]
pub struct LogArgs {
    /// Namespace ("default" when empty).
    pub namespace: Option<String>,
    /// Pod.
    pub name: String,
    /// Container (required when the pod has several).
    pub container: Option<String>,
    /// The previous (crashed) container's log.
    pub previous: bool,
    /// Last N lines (0 = the server's default: all).
    pub tail: i64,
    /// Only lines newer than this many seconds.
    pub since_seconds: i64,
}

/// Reads a container's log.
pub async fn logs(
    cc: &ClusterClient,
    args: &LogArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    if args.name.trim().is_empty() {
        return Err(OpError::InvalidArgument(
            "`name` (the pod) is required".into(),
        ));
    }
    let ns = args
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let resource = format!("pods/log {} in namespace {ns}", args.name);
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "get",
        resource: &resource,
    };
    let params = LogParams {
        container: args.container.clone().filter(|c| !c.is_empty()),
        previous: args.previous,
        tail_lines: (args.tail > 0).then_some(args.tail),
        since_seconds: (args.since_seconds > 0).then_some(args.since_seconds),
        limit_bytes: Some((opts.max_bytes as i64) * 4),
        ..LogParams::default()
    };
    let api: Api<Pod> = Api::namespaced(cc.client.clone(), &ns);
    let text = match tokio::time::timeout(opts.timeout, api.logs(&args.name, &params)).await {
        Err(_) => return Err(ctx.timeout(opts.timeout)),
        Ok(Err(e)) => return Err(ctx.error(e)),
        Ok(Ok(t)) => t,
    };
    let total = text.lines().count() as u32;
    if text.len() <= opts.max_bytes {
        let text = if text.is_empty() {
            format!("(the log of {} is empty)\n", args.name)
        } else {
            text
        };
        return Ok(Rendered {
            text,
            items: total,
            omitted: 0,
            ..Default::default()
        });
    }
    // Keep the newest lines that fit.
    let mut kept: Vec<&str> = Vec::new();
    let mut used = 0;
    for line in text.lines().rev() {
        if used + line.len() + 1 > opts.max_bytes {
            break;
        }
        used += line.len() + 1;
        kept.push(line);
    }
    kept.reverse();
    let omitted = total - kept.len() as u32;
    Ok(Rendered {
        text: format!(
            "... {omitted} older lines left out (answer capped at {} bytes); use `tail` or `since` to choose\n{}\n",
            opts.max_bytes,
            kept.join("\n")
        ),
        items: kept.len() as u32,
        omitted,
        ..Default::default()
    })
}
