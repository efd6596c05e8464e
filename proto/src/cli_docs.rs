//! Shell completions and man pages, generated from each binary's clap
//! definition (`--completions SHELL`, `--man`), so they never drift from the
//! real flags.

use std::io::Write;

/// Handles `--completions SHELL` / `--man` for `cmd`: prints to stdout and
/// returns true when one of them was asked for.
pub fn handle(
    mut cmd: clap::Command,
    completions: Option<clap_complete::Shell>,
    man: bool,
) -> bool {
    let name = cmd.get_name().to_string();
    if let Some(shell) = completions {
        clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
        return true;
    }
    if man {
        let mut out = Vec::new();
        if clap_mangen::Man::new(cmd).render(&mut out).is_ok() {
            let _ = std::io::stdout().write_all(&out);
        }
        return true;
    }
    false
}
