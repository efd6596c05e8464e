//! Container logs through the API server (which asks the node's kubelet),
//! streamed with only the newest bytes kept, capped to the answer's byte
//! budget. An answer that is not plain text is refused.

use kube::api::LogParams;

use super::{OpOptions, Rendered, call::Call, core_kind, shape::newest_lines};
use crate::{
    error::OpError,
    pool::ClusterClient,
    request::{
        names::{ContainerName, Namespace, ObjectName},
        path,
    },
    safety::Action,
};

/// Which log.
#[derive(Debug, Clone)]
pub struct LogArgs {
    /// Namespace ("default" when `None`).
    pub namespace: Option<Namespace>,
    /// Pod.
    pub name: ObjectName,
    /// Container (required when the pod has several).
    pub container: Option<ContainerName>,
    /// The previous (crashed) container's log.
    pub previous: bool,
    /// Last N lines (0 = the server's default: all).
    pub tail: i64,
    /// Only lines newer than this many seconds.
    pub since_seconds: i64,
}

/// How much more than the answer's budget is read: lines cut by the
/// budget are counted, not shown.
const READ_FACTOR: usize = 4;

/// Reads a container's log.
pub async fn logs(
    cc: &ClusterClient,
    args: &LogArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    let started = tokio::time::Instant::now();
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(Namespace::default_namespace);
    let pods = core_kind(cc, "Pod", opts.timeout).await?;
    let resource = format!("pods/log {} in namespace {ns}", args.name);
    opts.allow(
        cc,
        &pods,
        Action::Get,
        Some("log"),
        &format!("read the log of pod {} in namespace {ns}", args.name),
    )?;
    let params = LogParams {
        container: args.container.as_ref().map(|c| c.to_string()),
        previous: args.previous,
        tail_lines: (args.tail > 0).then_some(args.tail),
        since_seconds: (args.since_seconds > 0).then_some(args.since_seconds),
        ..LogParams::default()
    };
    let request = kube::core::Request::new(path::collection(&pods.resource, Some(&ns)))
        .logs(&path::segment(args.name.as_str()), &params)
        .map_err(|e| OpError::InvalidArgument(format!("cannot build the log request: {e}")))?;
    let call = Call::new(cc, "get", resource, opts).since(started);
    let keep = opts.max_bytes.saturating_mul(READ_FACTOR);
    let reply = call.tail(request, keep).await?;
    if reply.media_type() != "text/plain" {
        return Err(OpError::UnexpectedAnswer {
            cluster: cc.name.clone(),
            what: format!("get {}", call.resource()),
            expected: "a plain-text log".into(),
            got: format!("{:?} content", reply.media_type()),
        });
    }
    let text = reply.text();
    let newest = newest_lines(
        &text,
        reply.skipped_lines,
        reply.skipped_bytes > 0,
        0,
        opts.max_bytes.saturating_sub(200),
    );
    if newest.omitted == 0 {
        let text = if text.is_empty() {
            format!("(the log of {} is empty)\n", args.name)
        } else {
            text
        };
        return Ok(Rendered {
            text,
            items: newest.kept_lines,
            omitted: 0,
            ..Default::default()
        });
    }
    Ok(Rendered {
        text: format!(
            "... {} older lines left out (answer capped at {} bytes); use `tail` or `since` to choose\n{}\n",
            newest.omitted, opts.max_bytes, newest.text
        ),
        items: newest.kept_lines,
        omitted: newest.omitted,
        ..Default::default()
    })
}
