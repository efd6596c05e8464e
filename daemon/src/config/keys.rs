//! Every configuration key, declared once: the readers' lists of known keys
//! (for "unknown key" errors), the typed property tests and the check that
//! packaging/example.toml names every key all come from [`KEYS`].

/// The TOML type a key is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string (with `${VAR}` expansion).
    String,
    /// `true`/`false` (or a string such as `"on"`).
    Bool,
    /// An integer (or a string of one).
    Integer,
    /// A humantime string such as `"30s"`.
    Duration,
    /// An array of strings.
    Strings,
    /// An array of tables (`[{ key = "value" }]`).
    Tables,
}

/// One key: its section (`""` for the top of the file), name and type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    /// `""` for the top of the file, else the `[section]`.
    pub section: &'static str,
    /// The key's name inside its section.
    pub name: &'static str,
    /// The type it is read as.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the typed tests"))]
    pub kind: Kind,
}

/// Declares [`KEYS`] section by section, in the order the error messages
/// list them.
macro_rules! config_keys {
    ($($section:literal { $($name:ident: $kind:ident),* $(,)? })*) => {
        /// Every key of the configuration file.
        pub(crate) const KEYS: &[Key] = &[
            $($(Key { section: $section, name: stringify!($name), kind: Kind::$kind },)*)*
        ];
    };
}

config_keys! {
    "" {
        kubeconfig: String,
        kubeconfig_dir: String,
        default_cluster: String,
        auto_discovery: Bool,
        read_only: Bool,
        disable_destructive: Bool,
        denied_resources: Strings,
        allowed_clusters: Strings,
        reveal_secrets: Bool,
    }
    "nsk" {
        source: String,
        rancher_url: String,
        rancher_token: String,
        rancher_token_file: String,
        rancher_insecure: Bool,
        rancher_ca_file: String,
        profile: String,
        config_dir: String,
        auto_refresh: Bool,
        refresh_interval: Duration,
        nsk_path: String,
        timeout: Duration,
        cluster_pattern: String,
        exclude_clusters: Strings,
        bulk_refresh: Bool,
        min_force_interval: Duration,
    }
    "server" {
        environment: String,
        socket: String,
        http_bind: String,
        port: Integer,
        log_level: String,
        log_format: String,
        audit_log: String,
        audit_reads: Bool,
        http_token: String,
        http_token_file: String,
        toolsets: Strings,
        enabled_tools: Strings,
        disabled_tools: Strings,
    }
    "health" {
        probe_interval: Duration,
        probe_timeout: Duration,
        degraded_latency: Duration,
        unhealthy_after: Integer,
        probe_concurrency: Integer,
    }
    "pool" {
        idle_timeout: Duration,
        qps: Integer,
        burst: Integer,
        request_timeout: Duration,
        kubeconfig_ttl: Duration,
        max_response_bytes: Integer,
    }
    "output" {
        max_bytes: Integer,
    }
    "helm" {
        helm_path: String,
        allowed_repositories: Strings,
        chart_dirs: Strings,
        timeout: Duration,
    }
    "cache" {
        enabled: Bool,
        idle_timeout: Duration,
        max_objects: Integer,
        max_bytes: Integer,
        max_cluster_bytes: Integer,
        max_cluster_caches: Integer,
        kinds: Strings,
    }
    "safety" {
        sensitive_kinds: Strings,
        allow_exec_plugins: Bool,
        require_plan: Strings,
        plan_ttl: Duration,
        confirm: Tables,
        confirm_fallback: String,
    }
    "replication" {
        namespace: String,
        lease: String,
        lease_duration: Duration,
        kubeconfig: String,
    }
    "http_auth" {
        issuer: String,
        audience: String,
        required_claims: Strings,
        username_claim: String,
        groups_claim: String,
        clock_skew: Duration,
        resource: String,
        impersonate: Bool,
        per_user_qps: Integer,
        per_user_burst: Integer,
    }
    "access" {
        group: String,
        read_only: Bool,
        disable_destructive: Bool,
        toolsets: Strings,
        tools: Strings,
        clusters: Strings,
    }
    "prompts" {
        name: String,
        description: String,
        text: String,
        arguments: Strings,
    }
}

/// The keys of one `[safety] confirm` rule.
pub(crate) const CONFIRM_RULE_KEYS: &[&str] = &["operation", "kind", "namespace", "cluster"];

/// The `[sections]` of the file, in order.
pub(crate) const SECTIONS: &[&str] = &[
    "nsk",
    "server",
    "health",
    "pool",
    "output",
    "helm",
    "cache",
    "safety",
    "replication",
    "prompts",
    "http_auth",
    "access",
];

/// The keys known in `section` (`""`: the top keys, then the sections).
pub(crate) fn known(section: &str) -> Vec<&'static str> {
    let keys = KEYS.iter().filter(|k| k.section == section).map(|k| k.name);
    if section.is_empty() {
        keys.chain(SECTIONS.iter().copied()).collect()
    } else {
        keys.collect()
    }
}

/// The `(section, key)` pairs a TOML text names, commented-out `# key = `
/// lines included (an example file documents keys it leaves unset).
#[cfg(test)]
pub(crate) fn named_in(text: &str) -> std::collections::BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut named = std::collections::BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        // `# [replication]`: a section the example leaves off.
        let header = line.trim_start_matches('#').trim_start();
        if let Some(name) = header.strip_prefix('[').and_then(|l| l.strip_suffix(']'))
            && (line.starts_with('[') || name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        {
            // `[[prompts]]` names the section `prompts`.
            section = name.trim_matches(['[', ']']).trim().to_string();
            continue;
        }
        let line = line.trim_start_matches('#').trim_start();
        // A commented-out example table, `# [[access]]`.
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]"))
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            section = name.to_string();
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                named.insert((section.clone(), key.to_string()));
            }
        }
    }
    named
}
