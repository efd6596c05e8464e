//! Where the workspace's binaries are (built by `cargo build --workspace`).

use std::path::PathBuf;

/// Path of the workspace binary `name` (nskd, mcp-shim, nskctl, fake-nsk...).
pub fn bin(name: &str) -> PathBuf {
    // Tests run from target/<profile>/deps/, the bench binaries from
    // target/<profile>/; the workspace binaries are in target/<profile>/.
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("target dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// A command that runs `program` as uid/gid 65534 (nobody), keeping only
/// the right to open root's files (`setpriv`; the caller must be root).
pub fn as_other_user(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+dac_override",
        "--ambient-caps=+dac_override",
    ])
    .arg(program);
    cmd
}
