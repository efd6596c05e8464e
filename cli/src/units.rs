//! nskctl install-units: writes the systemd user units with the path of
//! this installation's nskd.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

const SERVICE: &str = include_str!("../../systemd/nskd@.service");
const SOCKET: &str = include_str!("../../systemd/nskd@.socket");
/// The ExecStart path in the unit templates, replaced on install.
const TEMPLATE_BIN: &str = "%h/.local/bin/nskd";

/// The nskd to run: next to nskctl, else on PATH.
fn find_nskd() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()?.with_file_name("nskd");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("nskd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!("nskd not found next to nskctl or on PATH; pass --nskd PATH")
        })
}

fn units_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| anyhow::anyhow!("neither XDG_CONFIG_HOME nor HOME is set; pass --dir"))?;
    Ok(base.join("systemd/user"))
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Installs both units and says what to run next.
pub fn install(
    dir: Option<PathBuf>,
    nskd: Option<PathBuf>,
    environment: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let nskd = match nskd {
        Some(p) => std::path::absolute(p)?,
        None => find_nskd()?,
    };
    let dir = match dir {
        Some(d) => d,
        None => units_dir()?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let service = SERVICE.replace(TEMPLATE_BIN, &nskd.display().to_string());
    let written = [
        write(&dir, "nskd@.service", &service)?,
        write(&dir, "nskd@.socket", SOCKET)?,
    ];
    for path in &written {
        println!("wrote {}", path.display());
    }
    let env = environment.unwrap_or("ENV");
    println!(
        "\nnskd: {}\nNext:\n  mkdir -p ~/.config/nskd && $EDITOR ~/.config/nskd/{env}.toml   # see packaging/example.toml\n  nskd check-config --config ~/.config/nskd/{env}.toml\n  systemctl --user daemon-reload\n  systemctl --user enable --now nskd@{env}.socket\n  nskctl --env {env} status",
        nskd.display()
    );
    Ok(ExitCode::SUCCESS)
}
