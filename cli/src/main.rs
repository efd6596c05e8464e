//! nskctl: the terminal client of nskd.
//!
//! Exit codes (docs/operations.md): 0 ok, 1 failure (daemon unreachable,
//! call failed, unknown cluster, a cluster neither Ready nor Degraded in
//! `status`, a failed check in `doctor`...), 2 usage.

mod audit;
mod doctor;
mod helm_cmd;
mod logs_cmd;
mod render;
mod source_cmds;
mod units;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use nskd_proto::{
    client::NskdClient,
    socket::SocketLocation,
    v1::{ClusterStatusRequest, GetClusterRequest, ListClustersRequest},
};

/// nskctl: status, clusters and version of an nskd environment.
#[derive(Debug, Parser)]
#[command(name = "nskctl", version, about)]
struct Cli {
    /// Environment (names the socket).
    #[arg(long = "env", env = "NSKD_ENV", global = true)]
    environment: Option<String>,
    /// Socket path (default: $XDG_RUNTIME_DIR/nskd/<env>.sock).
    #[arg(long, env = "NSKD_SOCKET", global = true)]
    socket: Option<std::path::PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Cluster status table (probed live, in parallel), or one cluster in detail;
    /// exits 1 when a cluster shown is neither Ready nor Degraded.
    Status {
        /// Show this cluster in detail.
        cluster: Option<String>,
        /// Answer from the daemon's health tracker instead of probing now.
        #[arg(long)]
        cached: bool,
        /// Redraw every --interval until interrupted.
        #[arg(long, short)]
        watch: bool,
        /// Redraw interval for --watch.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        interval: Duration,
    },
    /// Known clusters and their kubeconfigs (no network calls).
    Clusters,
    /// Versions of nskctl and the daemon.
    Version,
    /// Refresh kubeconfigs from Rancher now (joins a refresh already running).
    Refresh {
        /// Refresh even if the last refresh succeeded less than a minute ago
        /// (at most once per the daemon's `[nsk] min_force_interval`, default 30s).
        #[arg(long)]
        force: bool,
        /// Only clusters whose name matches this regular expression (adds and updates; removes nothing).
        #[arg(long)]
        pattern: Option<String>,
    },
    /// The refresh view: source, last and next refresh, history, each cluster Active/Inactive/Removed.
    History {
        /// How many refresh runs to show.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// Fetch one cluster's kubeconfig from the source and summarise it (never the credentials).
    Get {
        /// Cluster name as Rancher knows it.
        cluster: String,
        /// Store it in the kubeconfig directory.
        #[arg(long)]
        save: bool,
    },
    /// The kubeconfig source: Rancher URL, profile, token check (now), auto-refresh.
    Source,
    /// A pod's log, or the logs of the pods a label selector matches, searched with --grep
    /// (the newest matching lines that fit the daemon's answer budget).
    Logs(logs_cmd::LogsArgs),
    /// Check everything: socket, daemon, versions, token, refresh, each cluster, expiries.
    Doctor,
    /// Print shell completions for nskctl (e.g. `nskctl completions bash > /etc/bash_completion.d/nskctl`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print nskctl's man page (roff): `nskctl man > ~/.local/share/man/man1/nskctl.1`.
    Man,
    /// Install the systemd user units (nskd@.service, nskd@.socket) for this nskd.
    InstallUnits {
        /// Where to write them (default: ~/.config/systemd/user).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// The nskd binary the units run (default: the nskd next to nskctl, else on PATH).
        #[arg(long)]
        nskd: Option<std::path::PathBuf>,
    },
    /// Helm releases, read from Helm's own storage on the clusters.
    #[command(subcommand)]
    Helm(HelmCommand),
    /// The audit trail: the last entries of the daemon's audit log.
    Audit {
        /// How many entries to show.
        #[arg(long, default_value_t = 20)]
        tail: usize,
        /// Keep printing new entries as they come.
        #[arg(long, short)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
enum HelmCommand {
    /// The latest revision of each release (deployed and failed by default).
    List {
        /// One cluster (default: the daemon's default cluster).
        #[arg(long)]
        cluster: Option<String>,
        /// Several clusters, comma-separated, or '*' for every healthy cluster.
        #[arg(long, value_delimiter = ',')]
        clusters: Vec<String>,
        /// One namespace (default: all).
        #[arg(long, short)]
        namespace: Option<String>,
        /// Only releases of this chart.
        #[arg(long)]
        chart: Option<String>,
        /// "all" or statuses, comma-separated (default: deployed,failed).
        #[arg(long)]
        status: Option<String>,
        /// Count releases by chart x version x status instead of listing them.
        #[arg(long)]
        summary: bool,
        /// The next page: the token an answer's footer gave.
        #[arg(long = "continue")]
        continue_token: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nskctl: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::InstallUnits { dir, nskd } = &cli.command {
        return units::install(dir.clone(), nskd.clone(), cli.environment.as_deref());
    }
    let location = SocketLocation::resolve(cli.socket.as_deref(), cli.environment.as_deref())?;
    match &cli.command {
        Command::Completions { shell } => {
            nskd_proto::cli_docs::handle(
                <Cli as clap::CommandFactory>::command(),
                Some(*shell),
                false,
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            nskd_proto::cli_docs::handle(<Cli as clap::CommandFactory>::command(), None, true);
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Command::Doctor = cli.command {
        return doctor::run(&location).await;
    }
    let client_name = format!("nskctl {}", env!("CARGO_PKG_VERSION"));
    let client = NskdClient::connect(&location, &client_name).await?;
    match cli.command {
        Command::Version => {
            let info = client.info();
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&render::info_json(info))?
                );
            } else {
                print!("{}", render::version(info, env!("CARGO_PKG_VERSION")));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Clusters => {
            let resp = client
                .clusters()
                .list_clusters(client.request(ListClustersRequest {}))
                .await
                .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
                .into_inner();
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&render::clusters_json(&resp))?
                );
            } else {
                print!("{}", render::clusters(&resp));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Refresh { force, pattern } => {
            source_cmds::refresh(&client, force, pattern, cli.json).await
        }
        Command::History { limit } => source_cmds::history(&client, limit, cli.json).await,
        Command::Get { cluster, save } => source_cmds::get(&client, cluster, save, cli.json).await,
        Command::Source => source_cmds::source(&client, cli.json).await,
        Command::Logs(args) => logs_cmd::logs(&client, args.clone(), cli.json).await,
        Command::Audit { tail, follow } => audit::show(client.info(), tail, follow, cli.json).await,
        Command::Helm(HelmCommand::List {
            cluster,
            clusters,
            namespace,
            chart,
            status,
            summary,
            continue_token,
        }) => {
            let options = helm_cmd::ListOptions {
                cluster: cluster.unwrap_or_default(),
                clusters,
                namespace: namespace.unwrap_or_default(),
                chart: chart.unwrap_or_default(),
                status: status.unwrap_or_default(),
                summary,
                continue_token: continue_token.unwrap_or_default(),
            };
            helm_cmd::list(&client, options, cli.json).await
        }
        Command::InstallUnits { .. }
        | Command::Doctor
        | Command::Completions { .. }
        | Command::Man => {
            unreachable!("handled before connecting")
        }
        Command::Status {
            cluster,
            cached,
            watch,
            interval,
        } => {
            if watch {
                return watch_status(&client, cluster, interval).await;
            }
            status_once(&client, cluster, !cached, cli.json).await
        }
    }
}

async fn fetch_status(
    client: &NskdClient,
    cluster: &Option<String>,
    refresh: bool,
) -> anyhow::Result<nskd_proto::v1::ClusterStatusResponse> {
    let request = ClusterStatusRequest {
        clusters: cluster.iter().cloned().collect(),
        refresh,
        detail: cluster.is_some(),
    };
    if let Some(name) = cluster {
        // A precise "unknown cluster" error before any probing.
        client
            .clusters()
            .get_cluster(client.request(GetClusterRequest { name: name.clone() }))
            .await
            .map_err(|s| anyhow::anyhow!(client.explain(&s)))?;
    }
    Ok(client
        .clusters()
        .cluster_status(client.request(request))
        .await
        .map_err(|s| anyhow::anyhow!(client.explain(&s)))?
        .into_inner())
}

async fn status_once(
    client: &NskdClient,
    cluster: Option<String>,
    refresh: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let resp = fetch_status(client, &cluster, refresh).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&render::status_json(&resp))?
        );
    } else if cluster.is_some() {
        for h in &resp.clusters {
            print!(
                "{}",
                nskd_proto::present::detail_view(h, resp.next_refresh_ms)
            );
        }
    } else {
        print!("{}", render::status_table(&resp, client.info()));
    }
    Ok(status_code(&resp))
}

/// Exit 1 when any cluster shown is neither Ready nor Degraded (NotReady,
/// Unknown, Removed), as `nskctl doctor` fails them; 0 otherwise.
fn status_code(resp: &nskd_proto::v1::ClusterStatusResponse) -> ExitCode {
    let unhealthy = resp.clusters.iter().any(|h| {
        !matches!(
            nskd_proto::present::state_word(h.state),
            "Ready" | "Degraded"
        )
    });
    if unhealthy {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn watch_status(
    client: &NskdClient,
    cluster: Option<String>,
    interval: Duration,
) -> anyhow::Result<ExitCode> {
    loop {
        let text = match fetch_status(client, &cluster, false).await {
            Ok(resp) if cluster.is_some() => resp
                .clusters
                .iter()
                .map(|h| nskd_proto::present::detail_view(h, resp.next_refresh_ms))
                .collect::<String>(),
            Ok(resp) => render::status_table(&resp, client.info()),
            Err(e) => format!("nskctl: {e}\n"),
        };
        // Clear the screen and home the cursor, then draw.
        print!(
            "\x1b[2J\x1b[H{}\n(every {}; Ctrl-C to stop)\n",
            text,
            humantime::format_duration(interval)
        );
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}
