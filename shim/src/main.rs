//! mcp-shim: an MCP server on stdio for one agent session; every tool call
//! is forwarded to nskd over its Unix socket. Starts instantly: the daemon
//! is contacted on the first tool call, and again after it restarts.

mod args;
mod catalog;
mod change_tools;
mod confirm;
#[cfg(test)]
mod contract;
mod helm_tools;
#[cfg(feature = "http")]
mod http;
mod kube_tools;
mod nsk_tools;
#[cfg(feature = "http")]
mod oidc;
mod prompts;
mod render;
mod resources;
mod session;
mod stdio;
mod tools;
mod workload_tools;

use std::process::ExitCode;

use clap::Parser;
#[cfg(feature = "http")]
use nskd_proto::bearer;
use nskd_proto::socket::SocketLocation;
use rmcp::ServiceExt;

/// mcp-shim: MCP (stdio) front end of nskd for one agent session.
#[derive(Debug, Parser)]
#[command(name = "mcp-shim", version, about)]
struct Cli {
    /// Print shell completions (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    completions: Option<clap_complete::Shell>,
    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    man: bool,
    /// Environment whose daemon to use (names the socket).
    #[arg(long = "env", env = "NSKD_ENV")]
    environment: Option<String>,
    /// Socket path (default: $XDG_RUNTIME_DIR/nskd/<env>.sock).
    #[arg(long, env = "NSKD_SOCKET")]
    socket: Option<std::path::PathBuf>,
    /// Start nskd for this environment when it is not running (for hosts
    /// without systemd); many shims starting at once start one daemon.
    #[arg(long, env = "NSKD_START_DAEMON")]
    start_daemon: bool,
    /// Config file for a daemon started with --start-daemon (default: nskd's own).
    #[arg(long, requires = "start_daemon")]
    daemon_config: Option<std::path::PathBuf>,
    /// Serve MCP over streamable HTTP on this address (e.g. 127.0.0.1:8080,
    /// path /mcp) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// File holding the bearer token HTTP clients must send (default:
    /// $NSKD_SHIM_TOKEN; with neither, a token is generated and written to
    /// a 0600 file whose path is printed). At least 16 characters.
    #[arg(long, requires = "http")]
    http_token_file: Option<std::path::PathBuf>,
    /// Keep no MCP session between HTTP requests, so that several replicas
    /// can serve one client behind a plain load balancer: every call names
    /// its cluster (`cluster_use` is refused), no elicitation, no
    /// notifications.
    #[arg(long, requires = "http", env = "NSKD_SHIM_STATELESS")]
    stateless: bool,
    /// Accept OpenID Connect tokens checked by nskd's [http_auth] (issuer,
    /// audience, claims); each caller then acts as itself on the clusters.
    #[arg(long, env = "NSKD_SHIM_OIDC", requires = "http")]
    http_oidc: bool,
    /// Offer only the tools of these toolsets in this session, comma-separated
    /// (core, changes, nodes, helm, nsk, clusters); narrows what nskd offers.
    #[arg(long, value_delimiter = ',')]
    toolsets: Vec<String>,
    /// Log level for the shim's own stderr log.
    #[arg(long, env = "NSKD_LOG_LEVEL", default_value = "warn")]
    log_level: String,
}

/// The token `--http` clients must send: from the file, else from
/// `$NSKD_SHIM_TOKEN`, else generated at start.
#[cfg(feature = "http")]
fn http_token(file: Option<&std::path::Path>) -> Result<http::TokenSource, bearer::TokenError> {
    let given = match file {
        Some(f) => {
            use std::os::unix::fs::MetadataExt;
            if let Ok(m) = std::fs::metadata(f)
                && m.mode() & 0o077 != 0
            {
                eprintln!(
                    "mcp-shim: warning: --http-token-file {} has mode {:04o}: other users can read the token; run `chmod 600 {}`",
                    f.display(),
                    m.mode() & 0o7777,
                    f.display()
                );
            }
            Some((
                bearer::read_file(f)?,
                format!("--http-token-file {}", f.display()),
            ))
        }
        None => std::env::var("NSKD_SHIM_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| (t, "NSKD_SHIM_TOKEN".to_string())),
    };
    Ok(match given {
        Some((token, origin)) => http::TokenSource::Given(bearer::Bearer::new(&token, &origin)?),
        None => http::TokenSource::Generate,
    })
}

/// The shim's stderr log. `Targets` reads the same `level,target=level`
/// directives as an env filter without linking a regex engine into every
/// session (docs/benchmarks.md, shim memory).
fn init_log(directives: &str) {
    use tracing_subscriber::{filter::Targets, prelude::*};
    let filter = directives.parse::<Targets>().unwrap_or_else(|e| {
        eprintln!(
            "mcp-shim: --log-level {directives:?} is not a log filter ({e}); logging warnings only. Use e.g. warn or mcp_shim=debug,warn"
        );
        Targets::new().with_default(tracing::Level::WARN)
    });
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish()
        .with(filter)
        .init();
}

fn main() -> ExitCode {
    nskd_proto::memory::one_arena();
    let cli = Cli::parse();
    // The command is built again only when asked for: a session skips it.
    if (cli.completions.is_some() || cli.man)
        && nskd_proto::cli_docs::handle(
            <Cli as clap::CommandFactory>::command(),
            cli.completions,
            cli.man,
        )
    {
        return ExitCode::SUCCESS;
    }
    init_log(&cli.log_level);
    let toolsets: Vec<String> = cli
        .toolsets
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Err(e) = nskd_proto::tools::check_toolsets(&toolsets, "--toolsets") {
        eprintln!("mcp-shim: {e}");
        return ExitCode::from(2);
    }
    let location = match SocketLocation::resolve(cli.socket.as_deref(), cli.environment.as_deref())
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcp-shim: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-shim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let starter = if cli.start_daemon {
            match nskd_proto::autostart::Starter::find(cli.daemon_config.clone()) {
                Some(s) => Some(s),
                None => {
                    eprintln!(
                        "mcp-shim: --start-daemon: nskd not found next to mcp-shim or on PATH"
                    );
                    return ExitCode::from(2);
                }
            }
        } else {
            None
        };
        if let Some(addr) = cli.http {
            return serve_http(addr, &cli, location, starter, toolsets).await;
        }
        let session = session::Session::new(location)
            .with_starter(starter)
            .with_toolsets(toolsets);
        tracing::debug!(session = session.id(), "mcp-shim starting");
        let io = stdio::stdio();
        let server = match tools::NskdTools::new(session)
            .serve((io.reader, io.writer))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mcp-shim: MCP initialization failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let code = match server.waiting().await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mcp-shim: {e}");
                ExitCode::FAILURE
            }
        };
        let _ = io.flushed.await;
        code
    })
}

/// `--http`: serves MCP over streamable HTTP until stopped.
#[cfg(feature = "http")]
async fn serve_http(
    addr: std::net::SocketAddr,
    cli: &Cli,
    location: SocketLocation,
    starter: Option<nskd_proto::autostart::Starter>,
    toolsets: Vec<String>,
) -> ExitCode {
    let token = match http_token(cli.http_token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcp-shim: {e}");
            return ExitCode::from(2);
        }
    };
    match http::serve(
        addr,
        location,
        starter,
        token,
        cli.http_oidc,
        toolsets,
        cli.stateless,
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-shim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A stdio-only build (`--no-default-features`) cannot serve HTTP.
#[cfg(not(feature = "http"))]
async fn serve_http(
    addr: std::net::SocketAddr,
    _cli: &Cli,
    _location: SocketLocation,
    _starter: Option<nskd_proto::autostart::Starter>,
    _toolsets: Vec<String>,
) -> ExitCode {
    eprintln!(
        "mcp-shim: --http {addr}: this mcp-shim is the stdio-only build (scripts/build-shim); serve HTTP with the full build (cargo build -p mcp-shim, or the container image)"
    );
    ExitCode::from(2)
}
