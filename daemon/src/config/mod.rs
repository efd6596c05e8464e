//! Configuration: TOML file, environment and flags, resolved into [`Config`].
//!
//! Precedence: flags > environment > file (with `${VAR}` / `${VAR:-default}`
//! expansion) > defaults. Every problem is collected, so `nskd check-config`
//! can print them all at once.
//!
//! ```
//! use nskd::config::{Config, Overrides};
//! let (config, problems) = Config::from_toml_str(
//!     "kubeconfig_dir = \"/tmp/kc\"\n[nsk]\nrefresh_interval = \"30m\"\n",
//!     &Overrides::default(),
//!     |_| None,
//! );
//! assert!(problems.is_empty());
//! assert_eq!(config.nsk.refresh_interval.as_secs(), 1800);
//! ```

mod access;
mod expand;
mod fields;
pub use access::AccessRule;
mod http_auth;
pub use http_auth::HttpAuthConfig;
mod keys;
mod prompts;
pub use prompts::PromptConfig;

use nskd_proto::bearer::{self, Bearer};
use std::{
    cell::RefCell,
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    rc::Rc,
    time::Duration,
};

pub use fields::{Problem, Severity, parse_bool, parse_duration};
use fields::{Problems, Reader};
use regex::Regex;

/// A secret string (Rancher token): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value itself; only for handing to a child process or HTTP header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where kubeconfigs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A plain directory and/or kubeconfig file; nothing is fetched.
    Directory,
    /// The `nsk` CLI.
    Nsk,
    /// The Rancher v3 API.
    Rancher,
}

impl SourceKind {
    /// The config spelling (`"directory"`, `"nsk"`, `"rancher"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Directory => "directory",
            SourceKind::Nsk => "nsk",
            SourceKind::Rancher => "rancher",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The `[nsk]` section: the Rancher environment this daemon is paired with.
#[derive(Debug, Clone)]
pub struct NskConfig {
    /// Where kubeconfigs come from.
    pub source: SourceKind,
    /// Rancher server URL (RANCHER_URL).
    pub rancher_url: Option<String>,
    /// Rancher API token (RANCHER_TOKEN); never logged.
    pub rancher_token: Option<Secret>,
    /// File holding the token (re-read when it changes).
    pub rancher_token_file: Option<PathBuf>,
    /// Skip TLS verification towards Rancher (RANCHER_INSECURE).
    pub rancher_insecure: bool,
    /// CA bundle for Rancher's certificate.
    pub rancher_ca_file: Option<PathBuf>,
    /// nsk profile (NSK_PROFILE).
    pub profile: Option<String>,
    /// nsk's own config directory (NSK_CONFDIR).
    pub config_dir: Option<PathBuf>,
    /// Refresh kubeconfigs on a schedule.
    pub auto_refresh: bool,
    /// Time between scheduled refreshes.
    pub refresh_interval: Duration,
    /// The nsk executable (name on PATH or a path).
    pub nsk_path: String,
    /// Timeout of one nsk run / Rancher request.
    pub timeout: Duration,
    /// Only clusters whose name matches.
    pub cluster_pattern: Option<Regex>,
    /// Clusters never used, by exact name.
    pub exclude_clusters: Vec<String>,
    /// Fetch with one bulk `nsk cluster kubeconfig [--name-pattern P]`
    /// (nsk writes the files, nskd validates and stores them) instead of one
    /// `--name X --stdout` per cluster.
    pub bulk_refresh: bool,
    /// Forced refreshes asked for by clients run at most once per this
    /// long; one asked sooner joins the running one or is answered with
    /// when the next is allowed.
    pub min_force_interval: Duration,
}

/// The `[server]` section.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Environment name: names the socket and systemd instance.
    pub environment: String,
    /// Explicit socket path (else derived from the environment).
    pub socket: Option<PathBuf>,
    /// Address of the HTTP listener (metrics, health).
    pub http_bind: IpAddr,
    /// Port of the HTTP listener; `None` = no HTTP listener.
    pub port: Option<u16>,
    /// tracing filter, e.g. `info` or `nskd=debug`.
    pub log_level: String,
    /// Text or JSON logs.
    pub log_format: LogFormat,
    /// JSON-lines audit log path.
    pub audit_log: Option<PathBuf>,
    /// Also audit read calls.
    pub audit_reads: bool,
    /// Bearer token for `/metrics` and `/readyz` (`NSKD_HTTP_TOKEN` or
    /// `http_token`); required, or `http_token_file`, off loopback.
    pub http_token: Option<Secret>,
    /// File holding that token (re-read at start).
    pub http_token_file: Option<PathBuf>,
    /// The MCP tools sessions are offered (`toolsets`, `enabled_tools`,
    /// `disabled_tools`).
    pub tools: nskd_proto::tools::ToolSelection,
}

impl ServerConfig {
    /// The token `/metrics` and `/readyz` require, if one is configured
    /// (`NSKD_HTTP_TOKEN`, `http_token` or `http_token_file`).
    pub fn http_bearer(&self) -> Result<Option<Bearer>, String> {
        let server = self;
        if let Some(t) = &server.http_token {
            return Bearer::new(t.expose(), "[server] http_token / NSKD_HTTP_TOKEN")
                .map(Some)
                .map_err(|e| e.to_string());
        }
        let Some(file) = &server.http_token_file else {
            return Ok(None);
        };
        let token =
            bearer::read_file(file).map_err(|e| format!("[server] http_token_file: {e}"))?;
        Bearer::new(
            &token,
            &format!("[server] http_token_file {}", file.display()),
        )
        .map(Some)
        .map_err(|e| e.to_string())
    }
}

/// The `[health]` section.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Time between background probes of each cluster.
    pub probe_interval: Duration,
    /// Deadline of one probe.
    pub probe_timeout: Duration,
    /// A probe slower than this marks the cluster Degraded.
    pub degraded_latency: Duration,
    /// Consecutive failures before a cluster is NotReady.
    pub unhealthy_after: u32,
    /// Probes running at once.
    pub probe_concurrency: usize,
}

/// The `[pool]` section.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Drop a cluster's client after this long unused.
    pub idle_timeout: Duration,
    /// Client-side request rate per cluster, shared by all sessions.
    pub qps: u32,
    /// Burst above `qps`.
    pub burst: u32,
    /// Deadline of one Kubernetes call.
    pub request_timeout: Duration,
    /// Re-read kubeconfig files at least this often (safety net for missed
    /// file events).
    pub kubeconfig_ttl: Duration,
    /// Most bytes read from one API server answer (lists, gets); logs and
    /// node reads keep only their newest bytes whatever their size.
    pub max_response_bytes: usize,
}

/// The `[output]` section.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Cap of one cluster's answer, bytes.
    pub max_bytes: usize,
}

/// The `[helm]` section: how the Helm write tools run the helm CLI.
#[derive(Debug, Clone)]
pub struct HelmConfig {
    /// The helm executable (`helm`: found on PATH).
    pub helm_path: String,
    /// Chart references allowed: `https://` repository URL prefixes and
    /// `oci://` prefixes. Empty: no remote chart is allowed.
    pub allowed_repositories: Vec<String>,
    /// Directories local charts may be read from. Empty: no local chart.
    pub chart_dirs: Vec<PathBuf>,
    /// Longest one helm run may take before its process group is killed.
    pub timeout: Duration,
}

/// Kinds cached when `[cache] kinds` is not set: what agents ask for most,
/// with small, slowly changing objects. Events are left out on purpose
/// (many, short-lived, always wanted fresh).
pub const DEFAULT_CACHE_KINDS: &[&str] = &[
    "pods",
    "namespaces",
    "nodes",
    "services",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "persistentvolumeclaims",
    "persistentvolumes",
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "daemonsets.apps",
    "ingresses.networking.k8s.io",
];

/// The `[cache]` section.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Serve hot kinds from watch caches.
    pub enabled: bool,
    /// Drop a watch cache after this long unused.
    pub idle_timeout: Duration,
    /// Do not cache a kind with more objects than this.
    pub max_objects: usize,
    /// Memory cap of all caches, bytes.
    pub max_bytes: usize,
    /// Memory cap of one cluster's caches, bytes.
    pub max_cluster_bytes: usize,
    /// Most caches of one cluster; the least recently used goes first.
    pub max_cluster_caches: usize,
    /// Kinds to cache, as plural names (`pods`, `deployments.apps`);
    /// `"*"` caches every kind that can be listed and watched.
    pub kinds: Vec<String>,
}

/// The `[safety]` section.
#[derive(Debug, Clone, Default)]
pub struct SafetyConfig {
    /// Kinds masked like Secrets, beyond the built-in ones (Secret and
    /// Rancher's tokens); patterns as in `denied_resources`.
    pub sensitive_kinds: Vec<String>,
    /// Run `users[].user.exec` credential plugins of the user's own
    /// kubeconfigs (directory source only; never for fetched ones). nskd
    /// runs them itself: cleared environment, timeout, capped output.
    pub allow_exec_plugins: bool,
    /// Operations (words of `nskd_proto::tools::OPERATIONS`) that need a
    /// plan: a dry-run first, then the apply with its `plan` id.
    pub require_plan: Vec<String>,
    /// How long a plan stays valid.
    pub plan_ttl: Duration,
    /// Changes the user must confirm (asked by the shim through MCP
    /// elicitation).
    pub confirm: Vec<ConfirmRule>,
    /// What happens when a confirm rule matches and the MCP client cannot
    /// ask the user.
    pub confirm_fallback: ConfirmFallback,
}

/// Default of `[safety] plan_ttl`.
pub const DEFAULT_PLAN_TTL: Duration = Duration::from_secs(600);

/// One `[safety] confirm` rule: a change matches when every part given
/// matches (absent parts match anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfirmRule {
    /// An operation word ("delete", "scale_to_zero", ...).
    pub operation: Option<String>,
    /// A kind ("Deployment"), plural ("deployments") or `plural.group`,
    /// any case.
    pub kind: Option<String>,
    /// A namespace, exactly.
    pub namespace: Option<String>,
    /// A cluster name pattern (`*` matches any run of characters).
    pub cluster: Option<String>,
}

/// `[safety] confirm_fallback`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConfirmFallback {
    /// Refuse the change (the default).
    #[default]
    Deny,
    /// Apply it, saying the user was not asked.
    Allow,
}

/// Records an error on `field` unless `word` is an operation word.
fn check_operation(r: &Reader, field: &str, word: &str) {
    if nskd_proto::tools::Operation::parse(word).is_none() {
        r.error(
            field,
            format!(
                "unknown operation {word:?}; known: {}",
                nskd_proto::tools::Operation::words().join(", ")
            ),
        );
    }
}

/// Reads `[safety] confirm`: a list of `{ operation, kind, namespace,
/// cluster }` tables.
fn read_confirm_rules(safety: &mut Reader) -> Vec<ConfirmRule> {
    let mut rules = Vec::new();
    for (i, mut r) in safety.tables("confirm").into_iter().enumerate() {
        let rule = ConfirmRule {
            operation: r.string("operation"),
            kind: r.string("kind"),
            namespace: r.string("namespace"),
            cluster: r.string("cluster"),
        };
        if let Some(word) = &rule.operation {
            check_operation(&r, "operation", word);
        }
        if rule == ConfirmRule::default() {
            safety.error(
                &format!("confirm[{i}]"),
                "matches every change; name at least one of operation, kind, namespace, cluster",
            );
        }
        r.finish(keys::CONFIRM_RULE_KEYS);
        rules.push(rule);
    }
    rules
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
    /// A single (multi-context) kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// Directory of kubeconfig files, one cluster per file.
    pub kubeconfig_dir: Option<PathBuf>,
    /// Cluster a new session starts on.
    pub default_cluster: Option<String>,
    /// Watch the kubeconfig files and pick up changes without a restart.
    pub auto_discovery: bool,
    /// Only read tools.
    pub read_only: bool,
    /// No delete/exec/run/scale/overwriting apply.
    pub disable_destructive: bool,
    /// Kinds nobody may touch, as `group/version/kind` (`*` wildcards).
    pub denied_resources: Vec<String>,
    /// If non-empty, only these clusters are served.
    pub allowed_clusters: Vec<String>,
    /// Show Secret values instead of masking them.
    pub reveal_secrets: bool,
    /// `[nsk]`.
    pub nsk: NskConfig,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[health]`.
    pub health: HealthConfig,
    /// `[pool]`.
    pub pool: PoolConfig,
    /// `[output]`.
    pub output: OutputConfig,
    /// `[helm]`.
    pub helm: HelmConfig,
    /// `[cache]`.
    pub cache: CacheConfig,
    /// `[safety]`.
    pub safety: SafetyConfig,
    /// `[replication]`: several replicas, one refresher (absent: one
    /// daemon that refreshes by itself).
    pub replication: Option<ReplicationConfig>,
    /// `[http_auth]`.
    pub http_auth: HttpAuthConfig,
    /// `[[access]]`.
    pub access: Vec<AccessRule>,
    /// `[[prompts]]`.
    pub prompts: Vec<PromptConfig>,
}

/// The `[replication]` section: the replicas share a Lease and the
/// fetched kubeconfigs as Secrets in their home cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// nskd's own namespace (`None`: the service account's, read at start).
    pub namespace: Option<String>,
    /// Name of the `coordination.k8s.io/v1` Lease.
    pub lease: String,
    /// How long a holder keeps the Lease without renewing it.
    pub lease_duration: Duration,
    /// Kubeconfig reaching the home cluster (`None`: in-cluster service account).
    pub kubeconfig: Option<PathBuf>,
}

/// The shortest `[replication] lease_duration`.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(3);

/// Values given on the command line (or by clap from the environment), which
/// win over the file. Each is declared once, here: its flag, its variable
/// and its help text (`nskd --help`, the man page and completions).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
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
    #[arg(long = "nsk-source", global = true)]
    pub source: Option<String>,
    /// Rancher URL.
    #[arg(long = "nsk-rancher-url", env = "RANCHER_URL", global = true)]
    pub rancher_url: Option<String>,
    /// RANCHER_TOKEN (environment only: a token never goes on a command line).
    #[arg(skip)]
    pub rancher_token: Option<String>,
    /// Skip TLS verification towards Rancher.
    #[arg(long = "nsk-rancher-insecure", env = "RANCHER_INSECURE", global = true, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub rancher_insecure: Option<bool>,
    /// nsk profile.
    #[arg(long = "nsk-profile", env = "NSK_PROFILE", global = true)]
    pub profile: Option<String>,
    /// nsk's config directory.
    #[arg(long = "nsk-config-dir", env = "NSK_CONFDIR", global = true)]
    pub config_dir: Option<PathBuf>,
    /// Refresh kubeconfigs on a schedule.
    #[arg(long = "nsk-auto-refresh", global = true, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub auto_refresh: Option<bool>,
    /// Time between refreshes, e.g. 30m, 1h.
    #[arg(long = "nsk-refresh-interval", global = true)]
    pub refresh_interval: Option<String>,
    /// HTTP port for /metrics, /healthz and /readyz.
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Address the HTTP port binds to (default 127.0.0.1).
    #[arg(long, global = true)]
    pub http_bind: Option<String>,
    /// Log level or filter (error, warn, info, debug, trace, or nskd=debug).
    #[arg(long, env = "NSKD_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "NSKD_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Serve read tools only.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_flag)]
    pub read_only: Option<bool>,
    /// Refuse destructive tools (delete, exec, run, scale, overwriting apply).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = bool_flag)]
    pub disable_destructive: Option<bool>,
    /// MCP toolsets offered, comma-separated (core, changes, nodes, helm, nsk, clusters).
    #[arg(long, global = true, value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// MCP tools offered beyond the toolsets, comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    pub enabled_tools: Option<Vec<String>>,
    /// MCP tools never offered, comma-separated.
    #[arg(long, global = true, value_delimiter = ',')]
    pub disabled_tools: Option<Vec<String>>,
}

/// A flag's `true`/`false` (and the spellings [`parse_bool`] accepts).
fn bool_flag(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| format!("{s:?} is not true or false"))
}

/// Why the configuration could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error(
        "cannot read config file {path}: {source}; check the path given by --config / NSKD_CONFIG"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// One or more errors (warnings are not fatal).
    #[error("invalid configuration{}:\n{}", file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file, if any.
        file: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl Config {
    /// Loads `file` (if any), applies `overrides`, and fails if any problem is
    /// an error. Warnings are returned alongside the config.
    pub fn load(
        file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<(Config, Vec<Problem>), LoadError> {
        let (config, problems) = Self::load_all(file, overrides)?;
        if problems.iter().any(|p| p.severity == Severity::Error) {
            return Err(LoadError::Invalid {
                file: file.map(Path::to_path_buf),
                problems,
            });
        }
        Ok((config, problems))
    }

    /// Like [`Config::load`] but returns every problem, errors included.
    pub fn load_all(
        file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<(Config, Vec<Problem>), LoadError> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                path: path.to_path_buf(),
                source,
            })?,
            None => String::new(),
        };
        let (mut config, problems) =
            Self::from_toml_str(&text, overrides, |name| std::env::var(name).ok());
        config.file = file.map(Path::to_path_buf);
        Ok((config, problems))
    }

    /// Parses TOML text with `env` as the environment for `${VAR}`.
    pub fn from_toml_str(
        text: &str,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String> + 'static,
    ) -> (Config, Vec<Problem>) {
        let problems: Problems = Rc::new(RefCell::new(Vec::new()));
        let table = match text.parse::<toml::Table>() {
            Ok(t) => t,
            Err(e) => {
                problems.borrow_mut().push(Problem {
                    field: "(file)".into(),
                    message: format!("not valid TOML: {}", e.to_string().trim()),
                    severity: Severity::Error,
                });
                toml::Table::new()
            }
        };
        let env: fields::EnvLookup = Rc::new(env);
        let mut top = Reader::new(table, problems.clone(), env.clone());
        let config = read_config(&mut top, overrides, &*env);
        top.finish(&keys::known(""));
        let list = problems.borrow().clone();
        (config, list)
    }

    /// The environment name.
    pub fn environment(&self) -> &str {
        &self.server.environment
    }

    /// Whether `name` passes cluster_pattern, exclude_clusters and
    /// allowed_clusters.
    pub fn cluster_selected(&self, name: &str) -> bool {
        if let Some(re) = &self.nsk.cluster_pattern
            && !re.is_match(name)
        {
            return false;
        }
        if self.nsk.exclude_clusters.iter().any(|c| c == name) {
            return false;
        }
        self.allowed_clusters.is_empty() || self.allowed_clusters.iter().any(|c| c == name)
    }
}

fn read_config(top: &mut Reader, o: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Config {
    let mut nsk_r = top.section("nsk");
    let nsk = read_nsk(&mut nsk_r, o);
    // Older example configs write these after `[nsk]`, which TOML
    // reads as part of that section: accept them there, with a warning.
    let misplaced_dir = nsk_r.string("kubeconfig_dir");
    let misplaced_default = nsk_r.string("default_cluster");
    let misplaced_discovery = nsk_r.bool("auto_discovery");
    for (key, present) in [
        ("kubeconfig_dir", misplaced_dir.is_some()),
        ("default_cluster", misplaced_default.is_some()),
        ("auto_discovery", misplaced_discovery.is_some()),
    ] {
        if present {
            nsk_r.warn(
                key,
                format!("belongs at the top of the file (before [nsk]); read as top-level `{key}`"),
            );
        }
    }
    nsk_r.finish(&keys::known("nsk"));

    let mut server_r = top.section("server");
    let server = read_server(&mut server_r, o, env);
    server_r.finish(&keys::known("server"));

    let mut health_r = top.section("health");
    let health = read_health(&mut health_r);
    health_r.finish(&keys::known("health"));

    let mut pool_r = top.section("pool");
    let pool = read_pool(&mut pool_r);
    pool_r.finish(&keys::known("pool"));

    let mut output_r = top.section("output");
    let output = OutputConfig {
        max_bytes: output_r.integer("max_bytes").unwrap_or(32 * 1024),
    };
    if output.max_bytes < 1024 {
        output_r.error(
            "max_bytes",
            "must be at least 1024 (answers smaller than that are useless to an agent)",
        );
    }
    output_r.finish(&keys::known("output"));

    let mut helm_r = top.section("helm");
    let helm = HelmConfig {
        helm_path: helm_r.string("helm_path").unwrap_or_else(|| "helm".into()),
        allowed_repositories: helm_r.strings("allowed_repositories").unwrap_or_default(),
        chart_dirs: helm_r
            .strings("chart_dirs")
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        timeout: helm_r
            .duration("timeout")
            .unwrap_or(Duration::from_secs(300)),
    };
    for prefix in &helm.allowed_repositories {
        if !(prefix.starts_with("https://") || prefix.starts_with("oci://")) {
            helm_r.error(
                "allowed_repositories",
                "each entry must start with https:// or oci:// (a repository URL prefix)",
            );
        }
    }
    helm_r.finish(&keys::known("helm"));

    let mut cache_r = top.section("cache");
    let cache = CacheConfig {
        enabled: cache_r.bool("enabled").unwrap_or(true),
        idle_timeout: cache_r
            .duration("idle_timeout")
            .unwrap_or(Duration::from_secs(600)),
        max_objects: cache_r.integer("max_objects").unwrap_or(5000),
        max_bytes: cache_r.integer("max_bytes").unwrap_or(256 * 1024 * 1024),
        max_cluster_bytes: cache_r
            .integer("max_cluster_bytes")
            .unwrap_or(64 * 1024 * 1024),
        max_cluster_caches: cache_r.integer("max_cluster_caches").unwrap_or(32),
        kinds: cache_r
            .strings("kinds")
            .map(|k| k.into_iter().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_else(|| DEFAULT_CACHE_KINDS.iter().map(|k| k.to_string()).collect()),
    };
    cache_r.finish(&keys::known("cache"));

    let file_kubeconfig = top.string("kubeconfig").map(PathBuf::from);
    let file_dir = top
        .string("kubeconfig_dir")
        .or(misplaced_dir)
        .map(PathBuf::from);
    let kubeconfig_dir = o.kubeconfig_dir.clone().or(file_dir).or_else(|| {
        (nsk.source != SourceKind::Directory)
            .then(|| nsk.config_dir.clone())
            .flatten()
    });
    let kubeconfig = o.kubeconfig.clone().or(file_kubeconfig);
    let mut http_auth_r = top.section("http_auth");
    let http_auth = http_auth::read(&mut http_auth_r);
    http_auth_r.finish(&keys::known("http_auth"));
    let mut safety_r = top.section("safety");
    let safety = SafetyConfig {
        sensitive_kinds: safety_r.strings("sensitive_kinds").unwrap_or_default(),
        allow_exec_plugins: safety_r.bool("allow_exec_plugins").unwrap_or(false),
        require_plan: safety_r.strings("require_plan").unwrap_or_default(),
        plan_ttl: safety_r.duration("plan_ttl").unwrap_or(DEFAULT_PLAN_TTL),
        confirm: read_confirm_rules(&mut safety_r),
        confirm_fallback: match safety_r.string("confirm_fallback").as_deref() {
            None | Some("deny") => ConfirmFallback::Deny,
            Some("allow") => ConfirmFallback::Allow,
            Some(other) => {
                safety_r.error(
                    "confirm_fallback",
                    format!("expected \"deny\" or \"allow\", found {other:?}"),
                );
                ConfirmFallback::Deny
            }
        },
    };
    check_kind_patterns(&mut safety_r, "sensitive_kinds", &safety.sensitive_kinds);
    for (i, word) in safety.require_plan.iter().enumerate() {
        check_operation(&safety_r, &format!("require_plan[{i}]"), word);
    }
    if safety.plan_ttl.is_zero() {
        safety_r.error("plan_ttl", "must be longer than 0s (e.g. \"10m\")");
    }
    if safety.allow_exec_plugins && nsk.source != SourceKind::Directory && kubeconfig.is_none() {
        safety_r.warn(
            "allow_exec_plugins",
            format!(
                "has no effect: it applies to the user's own kubeconfig files (directory source, `kubeconfig`), and kubeconfigs fetched by the {} source never run a plugin",
                nsk.source.as_str()
            ),
        );
    }
    safety_r.finish(&keys::known("safety"));
    let replication = read_replication(top, &server.environment, nsk.source);
    let prompts = prompts::read(top);
    let access = access::read(top);
    let default_cluster = o
        .default_cluster
        .clone()
        .or(top.string("default_cluster"))
        .or(misplaced_default);
    let auto_discovery = top
        .bool("auto_discovery")
        .or(misplaced_discovery)
        .unwrap_or(true);
    let read_only = o.read_only.or(top.bool("read_only")).unwrap_or(false);
    let disable_destructive = o
        .disable_destructive
        .or(top.bool("disable_destructive"))
        .unwrap_or(false);
    let denied_resources = top.strings("denied_resources").unwrap_or_default();
    let allowed_clusters = top.strings("allowed_clusters").unwrap_or_default();
    let reveal_secrets = top.bool("reveal_secrets").unwrap_or(false);
    check_kind_patterns(top, "denied_resources", &denied_resources);

    for (key, names) in [
        ("allowed_clusters", &allowed_clusters),
        ("nsk.exclude_clusters", &nsk.exclude_clusters),
    ] {
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                top.error(&format!("{key}[{i}]"), "is empty: remove the entry");
            }
        }
    }

    Config {
        file: None,
        kubeconfig,
        kubeconfig_dir,
        default_cluster,
        auto_discovery,
        read_only,
        disable_destructive,
        denied_resources,
        allowed_clusters,
        reveal_secrets,
        nsk,
        server,
        health,
        pool,
        output,
        helm,
        cache,
        safety,
        replication,
        http_auth,
        access,
        prompts,
    }
}

/// `[replication]`, when the section is present.
fn read_replication(
    top: &mut Reader,
    environment: &str,
    source: SourceKind,
) -> Option<ReplicationConfig> {
    if !top.has("replication") {
        return None;
    }
    if source == SourceKind::Directory {
        top.error(
            "replication",
            "needs a fetching source: with [nsk] source = \"directory\" every replica reads its own files and there is nothing to share; set source = \"rancher\" or \"nsk\", or remove [replication]",
        );
    }
    let mut r = top.section("replication");
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    let namespace = r.string("namespace");
    if let Some(ns) = &namespace
        && !dns_label(ns)
    {
        r.error(
            "namespace",
            format!(
                "{ns:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
            ),
        );
    }
    let lease = r
        .string("lease")
        .unwrap_or_else(|| format!("nskd-{environment}-refresher"));
    let lease_ok = !lease.is_empty() && lease.len() <= 253 && lease.split('.').all(dns_label);
    if !lease_ok {
        r.error(
            "lease",
            format!("{lease:?} is not a Lease name (lower-case letters, digits, '-' and '.', at most 253)"),
        );
    }
    let lease_duration = r
        .duration("lease_duration")
        .unwrap_or(Duration::from_secs(15));
    if lease_duration < MIN_LEASE_DURATION {
        r.error("lease_duration", "must be at least 3s (e.g. \"15s\")");
    }
    let kubeconfig = r.string("kubeconfig").map(PathBuf::from);
    r.finish(&keys::known("replication"));
    Some(ReplicationConfig {
        namespace,
        lease,
        lease_duration,
        kubeconfig,
    })
}

/// Every pattern of `key` must be able to match a kind: one that cannot
/// would silently deny (or mask) nothing.
fn check_kind_patterns(r: &mut Reader, key: &str, patterns: &[String]) {
    for (i, pattern) in patterns.iter().enumerate() {
        if let Err(e) = crate::kinds::KindPattern::parse(pattern) {
            r.error(&format!("{key}[{i}]"), e.to_string());
        }
    }
}

fn read_nsk(r: &mut Reader, o: &Overrides) -> NskConfig {
    let rancher_url = o
        .rancher_url
        .clone()
        .filter(|s| !s.is_empty())
        .or(r.string("rancher_url"));
    let file_token = r.string("rancher_token");
    let rancher_token = o
        .rancher_token
        .clone()
        .or(file_token)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let rancher_token_file = r.string("rancher_token_file").map(PathBuf::from);
    let rancher_insecure = o
        .rancher_insecure
        .or(r.bool("rancher_insecure"))
        .unwrap_or(false);
    let rancher_ca_file = r.string("rancher_ca_file").map(PathBuf::from);
    let profile = o
        .profile
        .clone()
        .filter(|s| !s.is_empty())
        .or(r.string("profile"));
    let config_dir = o
        .config_dir
        .clone()
        .or(r.string("config_dir").map(PathBuf::from));
    let auto_refresh = o.auto_refresh.or(r.bool("auto_refresh")).unwrap_or(false);
    let file_interval = r.duration("refresh_interval");
    let refresh_interval = match &o.refresh_interval {
        Some(raw) => match parse_duration(raw) {
            Ok(d) => Some(d),
            Err(e) => {
                r.error("refresh_interval", format!("--nsk-refresh-interval: {e}"));
                None
            }
        },
        None => file_interval,
    }
    .unwrap_or(Duration::from_secs(3600));
    if refresh_interval < Duration::from_secs(60) {
        r.error(
            "refresh_interval",
            format!(
                "{} is too short: Rancher would be asked for every kubeconfig more than once a minute; use at least \"1m\" (typical: \"15m\" to \"1h\")",
                humantime::format_duration(refresh_interval)
            ),
        );
    } else if refresh_interval > Duration::from_secs(7 * 24 * 3600) {
        r.warn(
            "refresh_interval",
            "longer than a week: kubeconfig tokens may expire before the next refresh",
        );
    }
    let nsk_path = r.string("nsk_path").unwrap_or_else(|| "nsk".to_string());
    let timeout = r.duration("timeout").unwrap_or(Duration::from_secs(30));
    if timeout.is_zero() {
        r.error("timeout", "must be more than 0 (e.g. \"30s\")");
    }
    let cluster_pattern = r
        .string("cluster_pattern")
        .and_then(|p| match Regex::new(&p) {
            Ok(re) => Some(re),
            Err(e) => {
                r.error(
                    "cluster_pattern",
                    format!("regex {p:?} does not compile: {e}"),
                );
                None
            }
        });
    let exclude_clusters = r.strings("exclude_clusters").unwrap_or_default();
    let bulk_refresh = r.bool("bulk_refresh").unwrap_or(false);
    let min_force_interval = r
        .duration("min_force_interval")
        .unwrap_or(Duration::from_secs(30));

    let explicit_source = o.source.clone().or(r.string("source"));
    let source = match explicit_source.as_deref() {
        Some("directory") => SourceKind::Directory,
        Some("nsk") => SourceKind::Nsk,
        Some("rancher") => SourceKind::Rancher,
        Some(other) => {
            r.error(
                "source",
                format!("unknown source {other:?}: use \"nsk\", \"rancher\" or \"directory\""),
            );
            SourceKind::Directory
        }
        // The seed's configs name a Rancher URL and expect nsk to be used.
        None if rancher_url.is_some() || profile.is_some() => SourceKind::Nsk,
        None => SourceKind::Directory,
    };
    if let Some(url) = &rancher_url {
        match url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("https")) && uri.host().is_some() => {}
            Ok(uri) if matches!(uri.scheme_str(), Some("http")) && uri.host().is_some() => {
                r.warn(
                    "rancher_url",
                    format!(
                        "{url} is plain http: the Rancher token would travel unencrypted; use https"
                    ),
                );
            }
            _ => r.error(
                "rancher_url",
                format!("{url:?} is not a URL like https://rancher.example.com"),
            ),
        }
    }
    if rancher_insecure {
        r.warn(
            "rancher_insecure",
            "TLS verification towards Rancher is off; prefer rancher_ca_file with Rancher's CA",
        );
    }
    if source == SourceKind::Rancher && rancher_url.is_none() {
        r.error(
            "rancher_url",
            "the rancher source needs a Rancher URL: set [nsk] rancher_url or RANCHER_URL",
        );
    }

    NskConfig {
        source,
        rancher_url,
        rancher_token,
        rancher_token_file,
        rancher_insecure,
        rancher_ca_file,
        profile,
        config_dir,
        auto_refresh,
        refresh_interval,
        nsk_path,
        timeout,
        cluster_pattern,
        exclude_clusters,
        bulk_refresh,
        min_force_interval,
    }
}

fn read_server(
    r: &mut Reader,
    o: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> ServerConfig {
    let environment = o
        .environment
        .clone()
        .or(r.string("environment"))
        .unwrap_or_else(|| nskd_proto::socket::DEFAULT_ENVIRONMENT.to_string());
    if let Err(e) = nskd_proto::socket::validate_environment(&environment) {
        r.error("environment", e.to_string());
    }
    let socket = o.socket.clone().or(r.string("socket").map(PathBuf::from));
    let http_bind_raw = o.http_bind.clone().or(r.string("http_bind"));
    let http_bind = match http_bind_raw {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(raw) => raw.parse().unwrap_or_else(|_| {
            r.error("http_bind", format!("{raw:?} is not an IP address (e.g. \"127.0.0.1\", or \"0.0.0.0\" in a container)"));
            IpAddr::from([127, 0, 0, 1])
        }),
    };
    let port = o.port.or(r.integer::<u16>("port"));
    let log_level = o
        .log_level
        .clone()
        .or(r.string("log_level"))
        .unwrap_or_else(|| "info".to_string());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        r.error("log_level", format!("{log_level:?} is not a log level or filter (use error, warn, info, debug, trace or e.g. \"nskd=debug\")"));
    }
    let log_format = match o.log_format.clone().or(r.string("log_format")).as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            r.error("log_format", format!("{other:?}: use \"text\" or \"json\""));
            LogFormat::Text
        }
    };
    let (http_token, http_token_file) = read_http_token(r, env, http_bind, port);
    let tools = read_tool_selection(r, o);
    ServerConfig {
        environment,
        socket,
        http_bind,
        port,
        log_level,
        log_format,
        audit_log: r.string("audit_log").map(PathBuf::from),
        audit_reads: r.bool("audit_reads").unwrap_or(false),
        http_token,
        http_token_file,
        tools,
    }
}

/// `toolsets`, `enabled_tools`, `disabled_tools` (flags win); an unknown
/// name is an error naming the valid ones.
fn read_tool_selection(r: &mut Reader, o: &Overrides) -> nskd_proto::tools::ToolSelection {
    use nskd_proto::tools::{ToolSelection, check_tools, check_toolsets};
    let mut pick = |key: &str, flag: &Option<Vec<String>>| match flag {
        Some(v) => (v.clone(), format!("--{}", key.replace('_', "-"))),
        None => (
            r.strings(key).unwrap_or_default(),
            format!("[server] {key}"),
        ),
    };
    let (toolsets, sets_origin) = pick("toolsets", &o.toolsets);
    let (enabled, enabled_origin) = pick("enabled_tools", &o.enabled_tools);
    let (disabled, disabled_origin) = pick("disabled_tools", &o.disabled_tools);
    let trim = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let selection = ToolSelection {
        toolsets: trim(toolsets),
        enabled: trim(enabled),
        disabled: trim(disabled),
    };
    let checks = [
        (
            "toolsets",
            check_toolsets(&selection.toolsets, &sets_origin),
        ),
        (
            "enabled_tools",
            check_tools(&selection.enabled, &enabled_origin),
        ),
        (
            "disabled_tools",
            check_tools(&selection.disabled, &disabled_origin),
        ),
    ];
    for (key, check) in checks {
        if let Err(e) = check {
            r.error(key, e.to_string());
        }
    }
    selection
}

/// The HTTP port's bearer token: `NSKD_HTTP_TOKEN`, else `http_token`, or
/// `http_token_file`; one of them is required when the port listens
/// beyond loopback.
fn read_http_token(
    r: &mut Reader,
    env: &dyn Fn(&str) -> Option<String>,
    http_bind: IpAddr,
    port: Option<u16>,
) -> (Option<Secret>, Option<PathBuf>) {
    let from_file_key = r.string("http_token").filter(|t| !t.is_empty());
    let token = match env("NSKD_HTTP_TOKEN").filter(|t| !t.is_empty()) {
        Some(t) => Some((t, "NSKD_HTTP_TOKEN")),
        None => from_file_key.map(|t| (t, "[server] http_token")),
    };
    if let Some((t, origin)) = &token
        && let Err(e) = nskd_proto::bearer::Bearer::new(t, origin)
    {
        r.error("http_token", e.to_string());
    }
    let file = r.string("http_token_file").map(PathBuf::from);
    if token.is_some() && file.is_some() {
        r.error(
            "http_token_file",
            "set either http_token (or NSKD_HTTP_TOKEN) or http_token_file, not both",
        );
    }
    if port.is_some() && !http_bind.is_loopback() && token.is_none() && file.is_none() {
        r.error(
            "http_bind",
            format!(
                "{http_bind} is reachable beyond this host, and /metrics and /readyz would answer anyone: set [server] http_token_file (or http_token = \"${{VAR}}\", or NSKD_HTTP_TOKEN) so that clients must send `Authorization: Bearer <token>`, or bind 127.0.0.1"
            ),
        );
    }
    (token.map(|(t, _)| Secret::new(t)), file)
}

fn read_health(r: &mut Reader) -> HealthConfig {
    let h = HealthConfig {
        probe_interval: r
            .duration("probe_interval")
            .unwrap_or(Duration::from_secs(30)),
        probe_timeout: r
            .duration("probe_timeout")
            .unwrap_or(Duration::from_secs(5)),
        degraded_latency: r
            .duration("degraded_latency")
            .unwrap_or(Duration::from_secs(1)),
        unhealthy_after: r.integer("unhealthy_after").unwrap_or(3),
        probe_concurrency: r.integer("probe_concurrency").unwrap_or(64),
    };
    if h.probe_timeout.is_zero() {
        r.error("probe_timeout", "must be more than 0 (e.g. \"5s\")");
    }
    if h.probe_interval < Duration::from_secs(1) {
        r.error("probe_interval", "must be at least 1s");
    }
    if h.unhealthy_after == 0 {
        r.error("unhealthy_after", "must be at least 1");
    }
    if h.probe_concurrency == 0 {
        r.error("probe_concurrency", "must be at least 1");
    }
    h
}

fn read_pool(r: &mut Reader) -> PoolConfig {
    let p = PoolConfig {
        idle_timeout: r
            .duration("idle_timeout")
            .unwrap_or(Duration::from_secs(300)),
        qps: r.integer("qps").unwrap_or(50),
        burst: r.integer("burst").unwrap_or(100),
        request_timeout: r
            .duration("request_timeout")
            .unwrap_or(Duration::from_secs(15)),
        kubeconfig_ttl: r
            .duration("kubeconfig_ttl")
            .unwrap_or(Duration::from_secs(60)),
        max_response_bytes: r.integer("max_response_bytes").unwrap_or(64 * 1024 * 1024),
    };
    if p.max_response_bytes < 64 * 1024 {
        r.error("max_response_bytes", "must be at least 65536 (64 KiB)");
    }
    if p.qps == 0 {
        r.error("qps", "must be at least 1");
    }
    if p.request_timeout.is_zero() {
        r.error("request_timeout", "must be more than 0 (e.g. \"15s\")");
    }
    if p.kubeconfig_ttl < Duration::from_secs(1) {
        r.error("kubeconfig_ttl", "must be at least 1s");
    }
    p
}

#[cfg(test)]
mod tests;
