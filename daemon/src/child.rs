//! Child processes nskd starts (the nsk CLI, credential plugins): a
//! cleared environment but for the variables named, no stdin, captured
//! output, a process group of their own, killed when dropped.

use std::{ffi::OsStr, process::Stdio};

use tokio::process::Command;

/// `program` with `args`, confined as above; only the variables of
/// `pass_through` that are set are passed on.
pub fn confined(
    program: impl AsRef<OsStr>,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    pass_through: &[&str],
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in pass_through {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd
}

/// Why [`output_within`] produced no output.
#[derive(Debug)]
pub enum Unfinished {
    /// The program could not be started or read.
    Io(std::io::Error),
    /// It ran past the limit; it and its process group were killed.
    TimedOut,
}

/// Runs `cmd` (built by [`confined`]) to completion within `limit`;
/// past it, the whole process group is killed, grandchildren included.
pub async fn output_within(
    cmd: &mut Command,
    limit: std::time::Duration,
) -> Result<std::process::Output, Unfinished> {
    let child = cmd.spawn().map_err(Unfinished::Io)?;
    let pid = child.id();
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(out) => out.map_err(Unfinished::Io),
        Err(_) => {
            // The child itself is killed on drop; its group goes too.
            if let Some(pgid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
            }
            Err(Unfinished::TimedOut)
        }
    }
}
