//! The nskd binary: parse flags, load config, run or check it.

use std::process::ExitCode;

use clap::Parser;
use nskd::{
    cli::{Cli, Command},
    config::{Config, Severity},
    obs, server,
};
use nskd_proto::socket::SocketLocation;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if nskd_proto::cli_docs::handle(
        <Cli as clap::CommandFactory>::command(),
        cli.completions,
        cli.man,
    ) {
        return ExitCode::SUCCESS;
    }
    let file = cli.config_file();
    let overrides = cli.overrides();
    match cli.command {
        Some(Command::CheckConfig) => check_config(file.as_deref(), &overrides),
        Some(Command::Run) | None => run(file.as_deref(), &overrides),
    }
}

fn check_config(file: Option<&std::path::Path>, overrides: &nskd::config::Overrides) -> ExitCode {
    let (config, problems) = match Config::load_all(file, overrides) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nskd check-config: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut problems = problems;
    problems.extend(nskd::check::runtime_checks(&config));
    let source = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "(no file: defaults, environment and flags)".into());
    println!("config: {source}");
    println!("environment: {}", config.environment());
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    for p in &problems {
        println!("{p}");
    }
    if errors > 0 {
        println!(
            "{errors} error(s), {} warning(s): not valid",
            problems.len() - errors
        );
        ExitCode::FAILURE
    } else {
        println!("ok ({} warning(s))", problems.len());
        ExitCode::SUCCESS
    }
}

fn run(file: Option<&std::path::Path>, overrides: &nskd::config::Overrides) -> ExitCode {
    let (config, warnings) = match Config::load(file, overrides) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nskd: {e}\nRun `nskd check-config` to see every problem.");
            return ExitCode::from(2);
        }
    };
    obs::init(&config.server.log_level, config.server.log_format);
    for w in &warnings {
        tracing::warn!(field = %w.field, "{}", w.message);
    }
    let location = match SocketLocation::resolve(
        config.server.socket.as_deref(),
        Some(config.environment()),
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nskd: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nskd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config, location)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("nskd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
