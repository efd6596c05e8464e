//! Running a command in a container (websocket `v4.channel.k8s.io` through
//! the API server to the node's kubelet), collecting stdout, stderr and the
//! exit status within the deadline.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use super::{OpOptions, Rendered, core_kind};
use crate::{
    error::{CallContext, OpError},
    pool::ClusterClient,
    request::{
        InvalidInput,
        names::{ContainerName, Namespace, ObjectName},
        path,
    },
    safety::Action,
};

/// What to run.
#[derive(Debug, Clone)]
pub struct ExecArgs {
    /// Namespace ("default" when `None`).
    pub namespace: Option<Namespace>,
    /// Pod.
    pub name: ObjectName,
    /// Container (`None` = the pod's only one).
    pub container: Option<ContainerName>,
    /// argv.
    pub command: Vec<String>,
}

/// Most arguments in a command.
pub const MAX_ARGS: usize = 256;
/// Most bytes of all arguments together.
pub const MAX_ARGV_BYTES: usize = 64 * 1024;

impl ExecArgs {
    /// Checks the argv: present, bounded, no NUL (which no program can
    /// receive).
    pub fn check_command(command: &[String]) -> Result<(), InvalidInput> {
        let joined = command.join(" ");
        if command.is_empty() || command[0].is_empty() {
            return Err(InvalidInput::new(
                "command",
                &joined,
                "must be a non-empty list such as [\"ls\", \"-l\"]",
            ));
        }
        if command.len() > MAX_ARGS || joined.len() > MAX_ARGV_BYTES {
            return Err(InvalidInput::new(
                "command",
                &joined,
                format!("may have at most {MAX_ARGS} arguments and {MAX_ARGV_BYTES} bytes"),
            ));
        }
        if command.iter().any(|a| a.contains('\0')) {
            return Err(InvalidInput::new(
                "command",
                &joined,
                "must not contain NUL characters",
            ));
        }
        Ok(())
    }
}

/// Reads at most `cap` bytes, cut on a character boundary.
async fn read_all(r: Option<impl tokio::io::AsyncRead + Unpin>, cap: usize) -> String {
    let Some(mut r) = r else { return String::new() };
    let mut buf = Vec::new();
    let _ = (&mut r).take(cap as u64 + 1).read_to_end(&mut buf).await;
    let over = buf.len() > cap;
    buf.truncate(cap);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if over {
        // A character cut by the cap shows as U+FFFD at the end: drop it.
        if text.ends_with('\u{fffd}') {
            text.pop();
        }
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
    ExecArgs::check_command(&args.command)?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(Namespace::default_namespace);
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
    if let Some(c) = &args.container {
        params = params.container(c.as_str());
    }
    let pod_kind = core_kind(cc, "Pod", opts.timeout).await?;
    opts.allow(
        cc,
        &pod_kind,
        Action::Exec,
        Some("exec"),
        &format!("exec in pod {} in namespace {ns}", args.name),
    )?;
    let api: Api<Pod> = Api::namespaced(cc.client.clone(), ns.as_str());
    let run = async {
        let mut process = api
            .exec(
                &path::segment(args.name.as_str()),
                args.command.clone(),
                &params,
            )
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
