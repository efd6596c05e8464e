//! Running a command in a container (websocket `v4.channel.k8s.io` through
//! the API server to the node's kubelet), collecting stdout, stderr and the
//! exit status within the deadline.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use super::{Rendered, list::OpOptions};
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ExecArgs {
    /// Namespace ("default" when empty).
    pub namespace: Option<String>,
    /// Pod.
    pub name: String,
    /// Container ("" = the pod's only one).
    pub container: Option<String>,
    /// argv.
    pub command: Vec<String>,
}

async fn read_all(r: Option<impl tokio::io::AsyncRead + Unpin>, cap: usize) -> String {
    let Some(mut r) = r else { return String::new() };
    let mut buf = Vec::new();
    let _ = (&mut r).take(cap as u64 + 1).read_to_end(&mut buf).await;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if buf.len() > cap {
        text.truncate(cap);
        text.push_str("\n... output truncated (answer size cap)");
    }
    text
}

/// Runs `args.command` in the container.
pub async fn exec(
    cc: &ClusterClient,
    args: &ExecArgs,
    opts: &OpOptions,
) -> Result<Rendered, OpError> {
    if args.name.trim().is_empty() || args.command.is_empty() {
        return Err(OpError::InvalidArgument(
            "`name` (the pod) and `command` (a list, e.g. [\"ls\", \"-l\"]) are required".into(),
        ));
    }
    let ns = args
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let resource = format!("pods/exec {} in namespace {ns}", args.name);
    let ctx = CallContext {
        cluster: &cc.name,
        server: &cc.server,
        path: &cc.path,
        verb: "create",
        resource: &resource,
    };
    let mut params = AttachParams::default()
        .stdout(true)
        .stderr(true)
        .stdin(false);
    if let Some(c) = args.container.clone().filter(|c| !c.is_empty()) {
        params = params.container(c);
    }
    let pod_kind = super::list::resolve_kind(cc, "v1", "Pod", opts.timeout).await?;
    crate::safety::check(
        &opts.policy,
        &cc.name,
        crate::safety::Verb::Destructive,
        &pod_kind,
        &format!("exec in pod {} in namespace {ns}", args.name),
    )?;
    let api: Api<Pod> = Api::namespaced(cc.client.clone(), &ns);
    let run = async {
        let mut process = api
            .exec(&args.name, args.command.clone(), &params)
            .await
            .map_err(|e| ctx.error(e))?;
        let status = process.take_status();
        let (stdout, stderr) = tokio::join!(
            read_all(process.stdout(), opts.max_bytes),
            read_all(process.stderr(), opts.max_bytes / 4)
        );
        let status = match status {
            Some(s) => s.await,
            None => None,
        };
        let _ = process.join().await;
        Ok::<_, OpError>((stdout, stderr, status))
    };
    let (stdout, stderr, status) = tokio::time::timeout(opts.timeout, run)
        .await
        .map_err(|_| ctx.timeout(opts.timeout))??;
    let mut text = stdout;
    if !stderr.is_empty() {
        text.push_str(&format!("\n--- stderr ---\n{stderr}"));
    }
    match status {
        Some(s) if s.status.as_deref() == Some("Failure") => {
            return Err(OpError::InvalidArgument(format!(
                "cluster {}: `{}` in {}/{}: {}{}",
                cc.name,
                args.command.join(" "),
                ns,
                args.name,
                s.message.unwrap_or_default(),
                if text.is_empty() {
                    String::new()
                } else {
                    format!("\noutput:\n{text}")
                }
            )));
        }
        _ => {}
    }
    if text.is_empty() {
        text = "(no output; exit code 0)\n".into();
    }
    Ok(Rendered {
        text,
        items: 1,
        omitted: 0,
        ..Default::default()
    })
}
