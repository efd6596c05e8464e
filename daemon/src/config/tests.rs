use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "PROD_RANCHER_TOKEN" => Some("token-abcde:secretsecretsecretsecret".into()),
        "HOME" => Some("/home/u".into()),
        _ => None,
    }
}

fn parse(text: &str) -> (Config, Vec<Problem>) {
    Config::from_toml_str(text, &Overrides::default(), env)
}

const SEED_PRODUCTION: &str = r#"
[nsk]
rancher_url = "https://rancher.netskope.io"
rancher_token = "${PROD_RANCHER_TOKEN}"
profile = "prod"
config_dir = "/etc/kubernetes/clusters/prod"
auto_refresh = true
refresh_interval = "1h"
cluster_pattern = "^c1-.*"

kubeconfig_dir = "/etc/kubernetes/clusters/prod"
default_cluster = "c1-sv5"
auto_discovery = true
"#;

#[test]
fn seed_production_example_parses() {
    // The seed puts top-level keys after [nsk]; in TOML they then belong to
    // [nsk]. They are honoured, with a warning each.
    let (c, problems) = parse(SEED_PRODUCTION);
    assert!(
        problems.iter().all(|p| p.severity == Severity::Warning),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.field == "nsk.kubeconfig_dir"),
        "{problems:?}"
    );
    assert_eq!(
        c.kubeconfig_dir.as_deref(),
        Some(Path::new("/etc/kubernetes/clusters/prod"))
    );
    assert_eq!(c.default_cluster.as_deref(), Some("c1-sv5"));
    assert_eq!(c.nsk.source, SourceKind::Nsk);
    assert_eq!(c.nsk.refresh_interval, Duration::from_secs(3600));
}

#[test]
fn full_config_reads_every_field() {
    let text = r#"
kubeconfig_dir = "/etc/kubernetes/clusters/prod"
default_cluster = "c1-sv5"
auto_discovery = true
read_only = true
denied_resources = ["/v1/Secret"]

[nsk]
rancher_url = "https://rancher.netskope.io"
rancher_token = "${PROD_RANCHER_TOKEN}"
profile = "prod"
config_dir = "/etc/kubernetes/clusters/prod"
auto_refresh = true
refresh_interval = "1h30m"
cluster_pattern = "^c1-.*"
exclude_clusters = ["legacy"]
timeout = "45s"

[server]
environment = "production"
port = 9464
log_format = "json"

[health]
probe_timeout = "2s"

[pool]
idle_timeout = "10m"
"#;
    let (c, problems) = parse(text);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(c.nsk.source, SourceKind::Nsk);
    assert_eq!(
        c.nsk.rancher_token.as_ref().unwrap().expose(),
        "token-abcde:secretsecretsecretsecret"
    );
    assert_eq!(c.nsk.refresh_interval, Duration::from_secs(5400));
    assert_eq!(c.nsk.timeout, Duration::from_secs(45));
    assert_eq!(c.server.environment, "production");
    assert_eq!(c.server.port, Some(9464));
    assert_eq!(c.server.log_format, LogFormat::Json);
    assert_eq!(c.health.probe_timeout, Duration::from_secs(2));
    assert_eq!(c.pool.idle_timeout, Duration::from_secs(600));
    assert!(c.read_only);
    assert!(c.cluster_selected("c1-sv5"));
    assert!(!c.cluster_selected("c2-sv5"));
    assert!(
        !format!("{c:?}").contains("secretsecret"),
        "token leaked through Debug"
    );
}

#[test]
fn every_problem_is_reported_with_its_field() {
    let text = r#"
kubeconfig_dirr = "/x"
[nsk]
refresh_interval = "soon"
cluster_pattern = "([a-z"
rancher_token = "${UNSET_TOKEN}"
rancher_url = "not a url"
[server]
log_format = "xml"
port = 70000
[bogus]
x = 1
"#;
    let (_, problems) = parse(text);
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    for expected in [
        "kubeconfig_dirr",
        "nsk.refresh_interval",
        "nsk.cluster_pattern",
        "nsk.rancher_token",
        "nsk.rancher_url",
        "server.log_format",
        "server.port",
        "bogus",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }
    let typo = problems
        .iter()
        .find(|p| p.field == "kubeconfig_dirr")
        .unwrap();
    assert!(
        typo.message.contains("did you mean `kubeconfig_dir`"),
        "{}",
        typo.message
    );
    let unset = problems
        .iter()
        .find(|p| p.field == "nsk.rancher_token")
        .unwrap();
    assert!(unset.message.contains("UNSET_TOKEN is not set"));
}

#[test]
fn flags_win_over_file_and_defaults_apply() {
    let overrides = Overrides {
        environment: Some("staging".into()),
        refresh_interval: Some("15m".into()),
        kubeconfig_dir: Some("/flag/dir".into()),
        ..Default::default()
    };
    let text = "kubeconfig_dir = \"/file/dir\"\n[nsk]\nrefresh_interval = \"1h\"\n[server]\nenvironment = \"prod\"\n";
    let (c, problems) = Config::from_toml_str(text, &overrides, env);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(c.server.environment, "staging");
    assert_eq!(c.nsk.refresh_interval, Duration::from_secs(900));
    assert_eq!(c.kubeconfig_dir.as_deref(), Some(Path::new("/flag/dir")));
    assert_eq!(c.health.probe_timeout, Duration::from_secs(5));
    assert_eq!(c.pool.idle_timeout, Duration::from_secs(300));
    assert_eq!(c.output.max_bytes, 32 * 1024);
    assert_eq!(c.nsk.source, SourceKind::Directory);
}

#[test]
fn too_short_refresh_interval_is_an_error_not_a_silent_default() {
    let (_, problems) = parse("[nsk]\nrefresh_interval = \"5s\"\n");
    assert!(
        problems
            .iter()
            .any(|p| p.field == "nsk.refresh_interval" && p.severity == Severity::Error)
    );
}

#[test]
fn insecure_rancher_is_a_warning() {
    let (_, problems) =
        parse("[nsk]\nrancher_url = \"https://r.example\"\nrancher_insecure = true\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].severity, Severity::Warning);
}

#[test]
fn invalid_toml_is_one_clear_error() {
    let (_, problems) = parse("kubeconfig_dir = \n");
    assert_eq!(problems[0].field, "(file)");
    assert!(problems[0].message.contains("not valid TOML"));
}

#[test]
fn packaged_example_has_every_key_and_parses_cleanly() {
    let text = include_str!("../../../packaging/example.toml");
    let (config, problems) = parse(text);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(config.environment(), "prod");
    assert_eq!(
        config.health.probe_timeout,
        std::time::Duration::from_secs(5)
    );
}
