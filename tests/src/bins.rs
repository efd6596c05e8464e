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
