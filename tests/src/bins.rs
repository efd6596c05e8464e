//! Where the workspace's binaries are (built by `cargo build --workspace`).

use std::path::PathBuf;

/// Path of the workspace binary `name` (nskd, mcp-shim, nskctl).
pub fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}
