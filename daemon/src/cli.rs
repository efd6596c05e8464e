//! nskd's command line. Flags win over environment variables (read by clap
//! where a flag has one), which win over the config file.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

/// nskd: one daemon per Rancher environment; serves kubeconfig-backed
/// Kubernetes access to mcp-shim and nskctl over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "nskd", version, about, long_about = None)]
pub struct Cli {
    /// Print shell completions (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<clap_complete::Shell>,
    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub man: bool,
    /// What to do (default: run the daemon).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Config file (TOML). Default: ~/.config/nskd/<env>.toml when it exists.
    #[arg(long, short = 'c', env = "NSKD_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Flags and variables that win over the config file.
    #[command(flatten)]
    pub overrides: Overrides,

    /// More logging: -v debug, -vv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Check the configuration, print every problem, exit non-zero on errors.
    CheckConfig,
}

impl Cli {
    /// The flags as configuration overrides (RANCHER_TOKEN from the
    /// environment: a token never goes on a command line).
    pub fn overrides(&self) -> Overrides {
        let mut o = self.overrides.clone();
        o.rancher_token = std::env::var("RANCHER_TOKEN")
            .ok()
            .filter(|s| !s.is_empty());
        match self.verbose {
            0 => {}
            1 => o.log_level = Some("debug".into()),
            _ => o.log_level = Some("trace".into()),
        }
        o
    }

    /// The config file: --config / NSKD_CONFIG, else
    /// `~/.config/nskd/<env>.toml` if it exists.
    pub fn config_file(&self) -> Option<PathBuf> {
        if let Some(c) = &self.config {
            return Some(c.clone());
        }
        let env = self
            .overrides
            .environment
            .clone()
            .unwrap_or_else(|| nskd_proto::socket::DEFAULT_ENVIRONMENT.to_string());
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        let candidate = base.join("nskd").join(format!("{env}.toml"));
        candidate.exists().then_some(candidate)
    }
}
