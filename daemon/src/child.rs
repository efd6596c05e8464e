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
