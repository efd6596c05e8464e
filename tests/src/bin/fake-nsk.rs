//! A fake `nsk` CLI for nskd's tests:
//! `fake-nsk --fake-state STATE.json <nsk args...>`.
//!
//! It answers like the real `nsk` described in `docs/nsk-contract.md`, with
//! clusters and faults taken from STATE.json, which is re-read on every run
//! (tests drive it through `nskd_e2e::fake_nsk`, which also writes the `nsk`
//! wrapper script). Every run appends one line to the calls log, if any; the
//! value of RANCHER_TOKEN is never written anywhere.
//!
//! STATE.json's schema is the library's `nskd_e2e::fake_nsk::FakeState`, so
//! the tests and the fake read and write the same fields.

use std::{
    fs::{self, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    time::Duration,
};

use nskd_e2e::fake_nsk::{FakeCluster, FakeFailure, FakeState};
use regex::Regex;
use serde::Serialize;

/// What `nsk version` prints.
const VERSION: &str = "nsk version 1.8.2 (fake)";
/// Rancher URL used in messages when RANCHER_URL is not set.
const DEFAULT_URL: &str = "https://rancher.example.com";
/// The user `auth verify` reports.
const USER: &str = "alice";
/// Provider shown for every cluster.
const PROVIDER: &str = "rke2";
/// Minimum widths of the table's first four columns (the header fits them).
const TABLE_MIN_WIDTHS: [usize; 4] = [16, 11, 9, 11];
/// Error text of an invalid RANCHER_TOKEN.
const INVALID_TOKEN: &str = "invalid token (401 Unauthorized): check RANCHER_TOKEN";
/// Error text of an expired RANCHER_TOKEN.
const EXPIRED_TOKEN: &str =
    "token expired (401 Unauthorized): renew it with 'nsk auth login' or set RANCHER_TOKEN";
/// Reason of a cluster listed in `fail_clusters`.
const CLUSTER_FAILURE: &str = "rancher returned 500 Internal Server Error";
/// Output in `garbage` mode: neither JSON nor YAML.
const GARBAGE: &str = "<html><body>502 Bad Gateway</body></html>\n\t{[\"garbage\": \u{7}\n";
/// Exit code of a usage error (unknown flag or command).
const EXIT_USAGE: u8 = 2;
/// Exit code of a bulk run where some clusters failed.
const EXIT_PARTIAL: u8 = 3;
/// Exit code when the fake itself is misused or broken (never a real nsk code).
const EXIT_FAKE_BROKEN: u8 = 70;
const USAGE: &str = "nsk (fake): Rancher cluster helper

Usage:
  nsk auth verify
  nsk cluster list [--output json]
  nsk cluster kubeconfig --name NAME [--stdout]
  nsk cluster kubeconfig [--name-pattern REGEX]
  nsk version
";

/// One element of `nsk cluster list --output json`.
#[derive(Debug, Serialize)]
struct ListItem<'a> {
    id: &'a str,
    name: &'a str,
    state: &'a str,
    provider: &'a str,
    #[serde(rename = "kubernetesVersion")]
    kubernetes_version: &'a str,
}

/// The environment nskd gives nsk.
#[derive(Debug)]
struct Env {
    url: Option<String>,
    /// Only compared, never printed.
    token: Option<String>,
    insecure: Option<String>,
    profile: Option<String>,
    confdir: Option<String>,
    debug: Option<String>,
    home: Option<String>,
    github_token_set: bool,
    names: Vec<String>,
}

impl Env {
    fn capture() -> Env {
        let var = |name: &str| std::env::var(name).ok();
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        names.sort();
        Env {
            url: var("RANCHER_URL"),
            token: var("RANCHER_TOKEN").filter(|t| !t.is_empty()),
            insecure: var("RANCHER_INSECURE"),
            profile: var("NSK_PROFILE"),
            confdir: var("NSK_CONFDIR"),
            debug: var("NSK_DEBUG"),
            home: var("HOME"),
            github_token_set: var("GITHUB_TOKEN").is_some_and(|t| !t.is_empty()),
            names,
        }
    }

    /// RANCHER_URL without a trailing slash, or the default.
    fn rancher_url(&self) -> String {
        self.url
            .as_deref()
            .unwrap_or(DEFAULT_URL)
            .trim_end_matches('/')
            .to_string()
    }

    fn debug(&self) -> bool {
        self.debug.as_deref() == Some("true")
    }
}

/// A parsed nsk command line.
#[derive(Debug)]
enum Cmd {
    Help,
    Version,
    AuthVerify,
    List { json: bool },
    Kubeconfig(KubeconfigArgs),
}

impl Cmd {
    /// Whether the real nsk would talk to Rancher (only those runs see faults).
    fn is_network(&self) -> bool {
        !matches!(self, Cmd::Help | Cmd::Version)
    }

    /// The Rancher API path the command starts with (for network errors).
    fn api_path(&self) -> &'static str {
        match self {
            Cmd::AuthVerify => "/v3/users?me=true",
            _ => "/v3/clusters",
        }
    }
}

/// Flags of `nsk cluster kubeconfig`.
#[derive(Debug, Default)]
struct KubeconfigArgs {
    name: Option<String>,
    pattern: Option<String>,
    stdout: bool,
}

/// What a run prints and its exit code.
#[derive(Debug, Default)]
struct Output {
    stdout: String,
    stderr: String,
    code: u8,
}

impl Output {
    fn ok(stdout: String) -> Output {
        Output {
            stdout,
            ..Output::default()
        }
    }

    /// `Error: MSG` on stderr.
    fn error(code: u8, msg: &str) -> Output {
        Output {
            stderr: format!("Error: {msg}\n"),
            code,
            ..Output::default()
        }
    }

    /// A forced failure, printed verbatim.
    fn forced(f: &FakeFailure) -> Output {
        let mut stderr = f.stderr.clone();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Output {
            stderr,
            code: u8::try_from(f.exit).unwrap_or(1),
            ..Output::default()
        }
    }

    fn emit(self) -> ExitCode {
        let _ = io::stdout().write_all(self.stdout.as_bytes());
        let _ = io::stdout().flush();
        let _ = io::stderr().write_all(self.stderr.as_bytes());
        ExitCode::from(self.code)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some((state_path, argv)) = split_state_flag(&args) else {
        eprintln!("fake-nsk: usage: fake-nsk --fake-state STATE.json <nsk args...>");
        return ExitCode::from(EXIT_FAKE_BROKEN);
    };
    match fake_nsk(&state_path, argv) {
        Ok(out) => out.emit(),
        Err(e) => {
            eprintln!("fake-nsk: {e:#}");
            ExitCode::from(EXIT_FAKE_BROKEN)
        }
    }
}

/// `--fake-state PATH` (or `--fake-state=PATH`) must come first.
fn split_state_flag(args: &[String]) -> Option<(PathBuf, &[String])> {
    let first = args.first()?;
    if let Some(path) = first.strip_prefix("--fake-state=") {
        return Some((PathBuf::from(path), &args[1..]));
    }
    (first == "--fake-state" && args.len() >= 2).then(|| (PathBuf::from(&args[1]), &args[2..]))
}

/// One invocation: log it, then answer (or hang).
fn fake_nsk(state_path: &Path, argv: &[String]) -> anyhow::Result<Output> {
    let state = load_state(state_path)?;
    let env = Env::capture();
    let cmd = parse(argv, &state);
    let network = cmd.as_ref().is_ok_and(Cmd::is_network);
    let grandchild = if state.hang && network {
        Some(spawn_grandchild()?)
    } else {
        None
    };
    log_call(&state, &env, argv, grandchild)?;
    let cmd = match cmd {
        Ok(cmd) => cmd,
        Err(usage) => return Ok(Output::error(EXIT_USAGE, &usage)),
    };
    if !network {
        return Ok(local(&cmd));
    }
    let mut out = remote(&cmd, &state, &env, state_path)?;
    if env.debug() {
        let url = env.rancher_url();
        out.stderr = format!("DEBUG GET {url}{}\n{}", cmd.api_path(), out.stderr);
    }
    Ok(out)
}

fn load_state(path: &Path) -> anyhow::Result<FakeState> {
    let text = fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read state {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("bad state {}: {e}", path.display()))
}

// ---------------------------------------------------------------- parsing

/// A flag a command accepts.
struct FlagSpec {
    long: &'static str,
    short: Option<char>,
    takes_value: bool,
}

/// Parses the nsk command line; `Err` is a usage error (exit 2).
fn parse(argv: &[String], state: &FakeState) -> Result<Cmd, String> {
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Cmd::Help);
    }
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => Ok(Cmd::Help),
        ["version", rest @ ..] | ["--version", rest @ ..] => {
            flags(rest, &[], "nsk version").map(|_| Cmd::Version)
        }
        ["auth", "verify", rest @ ..] => {
            flags(rest, &[], "nsk auth verify").map(|_| Cmd::AuthVerify)
        }
        ["cluster", "list", rest @ ..] => parse_list(rest, state),
        ["cluster", "kubeconfig", rest @ ..] => parse_kubeconfig(rest),
        ["auth" | "cluster", sub, ..] => {
            Err(format!("unknown command {sub:?} for \"nsk {}\"", words[0]))
        }
        ["auth" | "cluster"] => Ok(Cmd::Help),
        [other, ..] => Err(format!("unknown command {other:?} for \"nsk\"")),
    }
}

fn parse_list(args: &[&str], state: &FakeState) -> Result<Cmd, String> {
    let output = FlagSpec {
        long: "output",
        short: Some('o'),
        takes_value: true,
    };
    let specs = if state.no_json_output {
        Vec::new()
    } else {
        vec![output]
    };
    let set = flags(args, &specs, "nsk cluster list")?;
    match flag_value(&set, "output") {
        None | Some("table") => Ok(Cmd::List { json: false }),
        Some("json") => Ok(Cmd::List { json: true }),
        Some(other) => Err(format!(
            "invalid argument {other:?} for \"-o, --output\" flag: must be one of: json, table"
        )),
    }
}

fn parse_kubeconfig(args: &[&str]) -> Result<Cmd, String> {
    let spec = |long, takes_value| FlagSpec {
        long,
        short: None,
        takes_value,
    };
    let specs = [
        spec("name", true),
        spec("name-pattern", true),
        spec("stdout", false),
    ];
    let set = flags(args, &specs, "nsk cluster kubeconfig")?;
    let parsed = KubeconfigArgs {
        name: flag_value(&set, "name").map(str::to_string),
        pattern: flag_value(&set, "name-pattern").map(str::to_string),
        stdout: flag_value(&set, "stdout") == Some("true"),
    };
    if parsed.name.is_some() && parsed.pattern.is_some() {
        return Err("--name and --name-pattern cannot be used together".into());
    }
    if parsed.stdout && parsed.name.is_none() {
        return Err("--stdout requires --name".into());
    }
    Ok(Cmd::Kubeconfig(parsed))
}

fn flag_value<'a>(set: &'a [(&'static str, String)], long: &str) -> Option<&'a str> {
    set.iter()
        .rev()
        .find(|(l, _)| *l == long)
        .map(|(_, v)| v.as_str())
}

/// pflag-style parsing: `--long v`, `--long=v`, `-s v`, `-sv`, bool flags.
fn flags(
    args: &[&str],
    specs: &[FlagSpec],
    cmd: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    let mut set = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (spec, inline, shown) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = split_inline(long);
            let spec = specs.iter().find(|s| s.long == name);
            (
                spec.ok_or(format!("unknown flag: --{name}"))?,
                inline,
                format!("--{name}"),
            )
        } else if let Some(short) = arg.strip_prefix('-').and_then(|s| s.chars().next()) {
            let spec = specs.iter().find(|s| s.short == Some(short));
            let inline = arg[1 + short.len_utf8()..].trim_start_matches('=');
            let inline = (!inline.is_empty()).then_some(inline);
            let unknown = format!("unknown shorthand flag: '{short}' in {arg}");
            (spec.ok_or(unknown)?, inline, format!("'{short}' in {arg}"))
        } else {
            return Err(format!("unknown command {arg:?} for {cmd:?}"));
        };
        let value = match (spec.takes_value, inline) {
            (_, Some(v)) => v.to_string(),
            (false, None) => "true".to_string(),
            (true, None) => rest
                .next()
                .ok_or(format!("flag needs an argument: {shown}"))?
                .to_string(),
        };
        set.push((spec.long, value));
    }
    Ok(set)
}

fn split_inline(long: &str) -> (&str, Option<&str>) {
    match long.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (long, None),
    }
}

// ---------------------------------------------------------------- running

/// Commands that never talk to Rancher and see no fault.
fn local(cmd: &Cmd) -> Output {
    match cmd {
        Cmd::Version => Output::ok(format!("{VERSION}\n")),
        _ => Output::ok(USAGE.to_string()),
    }
}

/// Commands that talk to Rancher, after the faults in order: hang, slow,
/// transient failures, forced failure, token checks.
fn remote(cmd: &Cmd, state: &FakeState, env: &Env, state_path: &Path) -> anyhow::Result<Output> {
    if state.hang {
        hang_forever();
    }
    if state.slow_ms > 0 {
        std::thread::sleep(Duration::from_millis(state.slow_ms));
    }
    let run = bump_counter(state_path)?;
    if run <= state.transient_failures {
        return Ok(Output::error(
            1,
            &refused(&env.rancher_url(), cmd.api_path()),
        ));
    }
    if let Some(fail) = &state.fail {
        return Ok(Output::forced(fail));
    }
    if let Some(msg) = token_error(state, env) {
        return Ok(Output::error(1, msg));
    }
    Ok(match cmd {
        Cmd::AuthVerify => auth_verify(state, env),
        Cmd::List { json } => list(state, *json),
        Cmd::Kubeconfig(args) => kubeconfig(state, env, args),
        Cmd::Help | Cmd::Version => local(cmd),
    })
}

fn hang_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// `sleep 3600` in our process group, inheriting stdout/stderr like a real
/// helper process would (so a reader waiting for EOF waits for it too).
fn spawn_grandchild() -> anyhow::Result<i32> {
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("sleep");
    let child = std::process::Command::new(sleep)
        .arg("3600")
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot spawn the grandchild {sleep}: {e}"))?;
    Ok(i32::try_from(child.id()).unwrap_or(-1))
}

/// Go's dial error towards RANCHER_URL.
fn refused(url: &str, path: &str) -> String {
    format!(
        "Get \"{url}{path}\": dial tcp {}: connect: connection refused",
        dial_addr(url)
    )
}

/// `host:port` of the URL as Go would print it: an IP literal stays, a
/// name is shown as a made-up resolved address.
fn dial_addr(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let default_port = if scheme == "http" { "80" } else { "443" };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (authority, default_port),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => format!("[{bare}]:{port}"),
        Ok(_) => format!("{bare}:{port}"),
        Err(_) => format!("10.0.0.1:{port}"),
    }
}

fn token_error(state: &FakeState, env: &Env) -> Option<&'static str> {
    if let Some(expected) = &state.expected_token
        && env.token.as_ref() != Some(expected)
    {
        return Some(INVALID_TOKEN);
    }
    state.token_expired.then_some(EXPIRED_TOKEN)
}

fn auth_verify(state: &FakeState, env: &Env) -> Output {
    let expires = state.token_expires_at.as_deref().unwrap_or("never");
    Output::ok(format!(
        "Token is valid (user: {USER}, rancher: {}, expires: {expires})\n",
        env.rancher_url()
    ))
}

/// Clusters `cluster list` (and bulk kubeconfig) sees.
fn listed(state: &FakeState) -> impl Iterator<Item = &FakeCluster> {
    state.clusters.iter().filter(|c| {
        state
            .list_only
            .as_ref()
            .is_none_or(|only| only.contains(&c.name))
    })
}

fn list(state: &FakeState, json: bool) -> Output {
    if state.garbage {
        return Output::ok(GARBAGE.to_string());
    }
    let clusters: Vec<&FakeCluster> = listed(state).collect();
    if json {
        Output::ok(list_json(&clusters))
    } else {
        Output::ok(list_table(&clusters))
    }
}

fn list_json(clusters: &[&FakeCluster]) -> String {
    let items: Vec<ListItem> = clusters
        .iter()
        .map(|c| ListItem {
            id: &c.id,
            name: &c.name,
            state: &c.state,
            provider: PROVIDER,
            kubernetes_version: &c.version,
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

/// A tabwriter-like table: every column at least its header's width in
/// the contract, and at least two spaces wider than its longest cell.
fn list_table(clusters: &[&FakeCluster]) -> String {
    let mut rows = vec![["ID", "NAME", "STATE", "PROVIDER", "VERSION"]];
    rows.extend(
        clusters
            .iter()
            .map(|c| [c.id.as_str(), &c.name, &c.state, PROVIDER, &c.version]),
    );
    let widths: Vec<usize> = TABLE_MIN_WIDTHS
        .iter()
        .enumerate()
        .map(|(col, min)| {
            let longest = rows.iter().map(|r| r[col].chars().count()).max();
            (*min).max(longest.unwrap_or(0) + 2)
        })
        .collect();
    let mut text = String::new();
    for row in &rows {
        for (cell, width) in row.iter().zip(&widths) {
            text.push_str(&format!("{cell:<width$}"));
        }
        text.push_str(row[4]);
        text.push('\n');
    }
    text
}

fn kubeconfig(state: &FakeState, env: &Env, args: &KubeconfigArgs) -> Output {
    match (&args.name, args.stdout) {
        (Some(name), true) => match one_kubeconfig(state, name) {
            Ok(yaml) => Output::ok(yaml),
            Err(msg) => Output::error(1, &msg),
        },
        (Some(name), false) => save_one(state, env, name),
        (None, _) => save_bulk(state, env, args.pattern.as_deref()),
    }
}

/// The kubeconfig of cluster `name` (any cluster, listed or not).
fn one_kubeconfig(state: &FakeState, name: &str) -> Result<String, String> {
    let cluster = state
        .clusters
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("cluster {name:?} not found"))?;
    cluster_kubeconfig(state, cluster).map_err(|reason| format!("cluster {name:?}: {reason}"))
}

/// The kubeconfig Rancher generates for `c`, or why it failed.
fn cluster_kubeconfig(state: &FakeState, c: &FakeCluster) -> Result<String, String> {
    if state.fail_clusters.contains(&c.name) {
        return Err(CLUSTER_FAILURE.into());
    }
    if state.garbage {
        return Ok(GARBAGE.to_string());
    }
    Ok(render_kubeconfig(c) + &padding(state))
}

/// `# generation N` and `pad_bytes` of comment lines (large, versioned
/// kubeconfigs); empty when both are 0.
fn padding(state: &FakeState) -> String {
    if state.generation == 0 && state.pad_bytes == 0 {
        return String::new();
    }
    let mut text = format!("# generation {}\n", state.generation);
    let line = format!("# {}\n", "x".repeat(77));
    while text.len() < state.pad_bytes {
        text.push_str(&line);
    }
    text
}

/// Rancher's kubeconfig template (token auth, one cluster, quoted strings).
fn render_kubeconfig(c: &FakeCluster) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let name = q(&c.name);
    let ca = if c.ca_data.is_empty() {
        String::new()
    } else {
        format!("\n    certificate-authority-data: {}", q(&c.ca_data))
    };
    // JSON values are YAML flow values: hostile keys go in verbatim.
    let lines = |m: &serde_json::Map<String, serde_json::Value>| {
        m.iter()
            .map(|(k, v)| format!("\n    {}: {v}", q(k)))
            .collect::<String>()
    };
    let ca = ca + &lines(&c.cluster_extra);
    let token = match &c.user_override {
        Some(user) if !user.is_empty() => lines(user),
        Some(_) => " {}".to_string(),
        None if c.token.is_empty() => " {}".to_string(),
        None => format!("\n    token: {}", q(&c.token)),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {server}{ca}\n\n\
         users:\n- name: {name}\n  user:{token}\n\n\
         contexts:\n- name: {name}\n  context:\n    user: {name}\n    cluster: {name}\n\n\
         current-context: {name}\n",
        server = q(&c.server),
    )
}

/// `$NSK_CONFDIR/kubeconfigs` (NSK_CONFDIR defaults to `$HOME/.nsk`).
fn kubeconfig_dir(env: &Env) -> Result<PathBuf, String> {
    let confdir = match (&env.confdir, &env.home) {
        (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
        (_, Some(home)) => Path::new(home).join(".nsk"),
        _ => return Err("cannot find the nsk config directory: set NSK_CONFDIR or HOME".into()),
    };
    let dir = confdir.join("kubeconfigs");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("mkdir {}: {}", dir.display(), go_error(&e)))?;
    Ok(dir)
}

/// `cluster kubeconfig --name NAME` without `--stdout`: one file.
fn save_one(state: &FakeState, env: &Env, name: &str) -> Output {
    let result = one_kubeconfig(state, name).and_then(|yaml| {
        let dir = kubeconfig_dir(env)?;
        write_kubeconfig(&dir, name, &yaml)
    });
    match result {
        Ok(path) => Output::ok(saved_line(name, &path)),
        Err(msg) => Output::error(1, &msg),
    }
}

/// Bulk mode: every listed (and matching) cluster; exit 0, 3 or 1.
fn save_bulk(state: &FakeState, env: &Env, pattern: Option<&str>) -> Output {
    let matcher = match pattern.map(name_pattern).transpose() {
        Ok(m) => m,
        Err(e) => {
            let pattern = pattern.unwrap_or_default();
            return Output::error(1, &format!("invalid --name-pattern {pattern:?}: {e}"));
        }
    };
    let dir = match state
        .bulk_dir
        .clone()
        .map(Ok)
        .unwrap_or_else(|| kubeconfig_dir(env))
    {
        Ok(dir) => dir,
        Err(msg) => return Output::error(1, &msg),
    };
    let targets: Vec<&FakeCluster> = listed(state)
        .filter(|c| matcher.as_ref().is_none_or(|m| m.is_match(&c.name)))
        .collect();
    let mut out = Output::default();
    let mut failed = 0;
    for c in &targets {
        match cluster_kubeconfig(state, c).and_then(|yaml| write_kubeconfig(&dir, &c.name, &yaml)) {
            Ok(path) => out.stdout.push_str(&saved_line(&c.name, &path)),
            Err(reason) => {
                failed += 1;
                let line = format!("Failed to get kubeconfig for {}: {reason}\n", c.name);
                out.stderr.push_str(&line);
            }
        }
    }
    out.code = bulk_exit(&mut out, failed, targets.len());
    out
}

fn bulk_exit(out: &mut Output, failed: usize, total: usize) -> u8 {
    match failed {
        0 => 0,
        n if n < total => EXIT_PARTIAL,
        n => {
            let line =
                format!("Error: failed to get any kubeconfig ({n} of {n} clusters failed)\n");
            out.stderr.push_str(&line);
            1
        }
    }
}

/// Compiles `--name-pattern` (unanchored, like Go's `regexp.MatchString`);
/// the error reads like Go's, `error parsing regexp: WHY: ` and the pattern.
fn name_pattern(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let text = e.to_string();
        let why = text.lines().last().unwrap_or_default();
        let why = why.strip_prefix("error: ").unwrap_or(why);
        format!("error parsing regexp: {why}: `{pattern}`")
    })
}

fn saved_line(name: &str, path: &Path) -> String {
    format!("Saved kubeconfig for {name} to {}\n", path.display())
}

/// Writes `dir/NAME.yaml` in place with mode 0600 (like Go's
/// `os.WriteFile`, plus a chmod so an existing file is 0600 too).
fn write_kubeconfig(dir: &Path, name: &str, yaml: &str) -> Result<PathBuf, String> {
    let path = dir.join(format!("{name}.yaml"));
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(yaml.as_bytes())
    };
    write().map_err(|e| format!("open {}: {}", path.display(), go_error(&e)))?;
    Ok(path)
}

/// An I/O error as Go prints it: "permission denied", no "(os error 13)".
fn go_error(e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- bookkeeping

/// `STATE.json.count`: runs that reached Rancher, under an exclusive lock.
fn bump_counter(state_path: &Path) -> anyhow::Result<u64> {
    let mut name = state_path.as_os_str().to_os_string();
    name.push(".count");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&name)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let run = text.trim().parse::<u64>().unwrap_or(0) + 1;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(run.to_string().as_bytes())?;
    Ok(run)
}

/// Appends this run to the calls log (one JSON line, one write).
fn log_call(
    state: &FakeState,
    env: &Env,
    argv: &[String],
    grandchild: Option<i32>,
) -> anyhow::Result<()> {
    let Some(log) = &state.calls_log else {
        return Ok(());
    };
    let matches = state
        .expected_token
        .as_ref()
        .is_none_or(|e| env.token.as_ref() == Some(e));
    let entry = serde_json::json!({
        "argv": argv,
        "rancher_url": env.url,
        "rancher_token_set": env.token.is_some(),
        "rancher_token_matches": matches,
        "rancher_insecure": env.insecure,
        "nsk_profile": env.profile,
        "nsk_confdir": env.confdir,
        "nsk_debug": env.debug,
        "github_token_set": env.github_token_set,
        "env_names": env.names,
        "pid": rustix::process::getpid().as_raw_nonzero().get(),
        "pgid": rustix::process::getpgrp().as_raw_nonzero().get(),
        "grandchild_pid": grandchild,
    });
    let mut line = serde_json::to_string(&entry)?;
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| anyhow::anyhow!("cannot append to calls log {}: {e}", log.display()))
}
