//! nskd's command line. Flags win over environment variables (read by clap
//! where a flag has one), which win over the config file.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, parse_bool};

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

    /// Environment name: names the socket (<env>.sock) and systemd instance.
    #[arg(long = "env", env = "NSKD_ENV", global = true)]
    pub environment: Option<String>,

    /// Unix socket path (default: $XDG_RUNTIME_DIR/nskd/<env>.sock).
    #[arg(long, env = "NSKD_SOCKET", global = true)]
    pub socket: Option<PathBuf>,

    /// A single (multi-context) kubeconfig: one cluster per context.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Directory of kubeconfig files: one cluster per file.
    #[arg(long, global = true)]
    pub kubeconfig_dir: Option<PathBuf>,

    /// Cluster a new agent session starts on.
    #[arg(long, global = true)]
    pub default_cluster: Option<String>,

    /// Kubeconfig source: nsk, rancher or directory.
    #[arg(long, global = true)]
    pub nsk_source: Option<String>,

    /// Rancher URL.
    #[arg(long, env = "RANCHER_URL", global = true)]
    pub nsk_rancher_url: Option<String>,

    /// Skip TLS verification towards Rancher.
    #[arg(long, env = "RANCHER_INSECURE", global = true, num_args = 0..=1, default_missing_value = "true", value_parser = bool_value)]
    pub nsk_rancher_insecure: Option<bool>,

    /// nsk profile.
    #[arg(long, env = "NSK_PROFILE", global = true)]
    pub nsk_profile: Option<String>,

    /// nsk's config directory.
    #[arg(long, env = "NSK_CONFDIR", global = true)]
    pub nsk_config_dir: Option<PathBuf>,

    /// Refresh kubeconfigs on a schedule.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", value_parser = bool_value)]
    pub nsk_auto_refresh: Option<bool>,

    /// Time between refreshes, e.g. 30m, 1h.
    #[arg(long, global = true)]
    pub nsk_refresh_interval: Option<String>,

    /// HTTP port for /metrics, /healthz and /readyz.
    #[arg(long, global = true)]
    pub port: Option<u16>,

    /// Address the HTTP port binds to (default 127.0.0.1).
    #[arg(long, global = true)]
    pub http_bind: Option<String>,

    /// Log level or filter (error, warn, info, debug, trace, or nskd=debug).
    #[arg(long, env = "NSKD_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,

    /// More logging: -v debug, -vv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log format: text or json.
    #[arg(long, env = "NSKD_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,

    /// Serve read tools only.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// Refuse destructive tools (delete, exec, run, scale, overwriting apply).
    #[arg(long, global = true)]
    pub disable_destructive: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Check the configuration, print every problem, exit non-zero on errors.
    CheckConfig,
}

fn bool_value(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| format!("{s:?} is not true or false"))
}

impl Cli {
    /// The flags as configuration overrides (RANCHER_TOKEN from the
    /// environment: a token never goes on a command line).
    pub fn overrides(&self) -> Overrides {
        let log_level = match self.verbose {
            0 => self.log_level.clone(),
            1 => Some("debug".into()),
            _ => Some("trace".into()),
        };
        Overrides {
            environment: self.environment.clone(),
            socket: self.socket.clone(),
            kubeconfig: self.kubeconfig.clone(),
            kubeconfig_dir: self.kubeconfig_dir.clone(),
            default_cluster: self.default_cluster.clone(),
            rancher_url: self.nsk_rancher_url.clone().filter(|s| !s.is_empty()),
            rancher_token: std::env::var("RANCHER_TOKEN")
                .ok()
                .filter(|s| !s.is_empty()),
            rancher_insecure: self.nsk_rancher_insecure,
            profile: self.nsk_profile.clone().filter(|s| !s.is_empty()),
            config_dir: self.nsk_config_dir.clone(),
            auto_refresh: self.nsk_auto_refresh,
            refresh_interval: self.nsk_refresh_interval.clone(),
            source: self.nsk_source.clone(),
            port: self.port,
            http_bind: self.http_bind.clone(),
            log_level,
            log_format: self.log_format.clone(),
            read_only: self.read_only.then_some(true),
            disable_destructive: self.disable_destructive.then_some(true),
        }
    }

    /// The config file: --config / NSKD_CONFIG, else
    /// `~/.config/nskd/<env>.toml` if it exists.
    pub fn config_file(&self) -> Option<PathBuf> {
        if let Some(c) = &self.config {
            return Some(c.clone());
        }
        let env = self
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
