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
    let named = keys::named_in(text);
    let missing: Vec<String> = keys::KEYS
        .iter()
        .filter(|k| !named.contains(&(k.section.to_string(), k.name.to_string())))
        .map(|k| format!("[{}] {}", k.section, k.name))
        .collect();
    assert!(
        missing.is_empty(),
        "packaging/example.toml does not name {missing:?}"
    );
    let (config, problems) = parse(text);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(config.environment(), "prod");
    assert_eq!(
        config.health.probe_timeout,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn http_port_beyond_loopback_needs_a_token() {
    let errors = |text: &str, env: fn(&str) -> Option<String>| {
        let (_, problems) = Config::from_toml_str(text, &Overrides::default(), env);
        problems
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    };
    let none: fn(&str) -> Option<String> = |_| None;
    // Loopback, or no port: no token needed.
    assert!(errors("[server]\nport = 9100\n", none).is_empty());
    assert!(errors("[server]\nhttp_bind = \"0.0.0.0\"\n", none).is_empty());
    // Beyond loopback without a token: refused, naming the fix.
    let e = errors("[server]\nport = 9100\nhttp_bind = \"0.0.0.0\"\n", none);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("server.http_bind")
            && e[0].contains("http_token_file")
            && e[0].contains("NSKD_HTTP_TOKEN"),
        "{e:?}"
    );
    let open = "[server]\nport = 9100\nhttp_bind = \"0.0.0.0\"\n";
    let (c, p) = Config::from_toml_str(
        &format!("{open}http_token_file = \"/run/secrets/metrics\"\n"),
        &Overrides::default(),
        none,
    );
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(
        c.server.http_token_file.as_deref(),
        Some(std::path::Path::new("/run/secrets/metrics"))
    );
    let long = |n: &str| (n == "NSKD_HTTP_TOKEN").then(|| "0123456789abcdef-metrics".to_string());
    let (c, p) = Config::from_toml_str(open, &Overrides::default(), long);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(
        c.server.http_token.as_ref().map(Secret::expose),
        Some("0123456789abcdef-metrics")
    );
    // Too short, or two sources at once.
    let e = errors(&format!("{open}http_token = \"short\"\n"), none);
    assert!(
        e.iter()
            .any(|e| e.contains("server.http_token") && e.contains("at least 16")),
        "{e:?}"
    );
    let e = errors(
        &format!("{open}http_token = \"0123456789abcdef\"\nhttp_token_file = \"/x\"\n"),
        none,
    );
    assert!(e.iter().any(|e| e.contains("not both")), "{e:?}");
}

#[test]
fn forced_refreshes_are_spaced_30s_by_default() {
    let (c, p) = parse("");
    assert!(p.is_empty());
    assert_eq!(c.nsk.min_force_interval, Duration::from_secs(30));
    let (c, _) = parse("[nsk]\nmin_force_interval = \"0s\"\n");
    assert_eq!(c.nsk.min_force_interval, Duration::ZERO);
}

/// Property tests: arbitrary files never panic, every problem names a field
/// of the file, and generated valid files read back to what was generated.
mod props {
    use proptest::prelude::*;
    use toml::Value;

    use super::*;

    use crate::config::keys::{self, Kind, SECTIONS};

    /// `(section, key, kind)` of every key; section "" is the top.
    fn typed() -> Vec<(&'static str, &'static str, Kind)> {
        keys::KEYS
            .iter()
            .map(|k| (k.section, k.name, k.kind))
            .collect()
    }

    fn dotted(section: &str, key: &str) -> String {
        if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        }
    }

    /// Any TOML value, strings with `${...}` references included.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            "\\PC{0,10}".prop_map(Value::String),
            "(\\$\\{[A-Z_]{0,6}(:-[a-z0-9 ]{0,4})?\\}?|\\$\\$|[0-9]{1,3}[smhd ]{0,2}){1,3}"
                .prop_map(Value::String),
            prop_oneof![
                Just("true"),
                Just("off"),
                Just("1h"),
                Just("0s"),
                Just("-5"),
                Just("127.0.0.1")
            ]
            .prop_map(|s| Value::String(s.into())),
            any::<i64>().prop_map(Value::Integer),
            (-5i64..100_000).prop_map(Value::Integer),
            any::<bool>().prop_map(Value::Boolean),
            any::<f64>().prop_map(Value::Float),
            proptest::collection::vec("[a-z]{0,2}".prop_map(Value::String), 0..3)
                .prop_map(Value::Array),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                    .prop_map(|m| Value::Table(m.into_iter().collect())),
            ]
        })
    }

    /// A key: mostly a known one of `section`, sometimes anything.
    fn key(section: &'static str) -> impl Strategy<Value = String> {
        let known: Vec<String> = typed()
            .iter()
            .filter(|(s, _, _)| *s == section)
            .map(|(_, k, _)| k.to_string())
            .collect();
        prop_oneof![
            3 => proptest::sample::select(known),
            1 => "[a-z_]{1,12}",
        ]
    }

    /// A whole configuration table of known and unknown keys.
    fn table() -> impl Strategy<Value = toml::Table> {
        let section =
            |name: &'static str| proptest::collection::btree_map(key(name), value(), 0..5);
        (
            section(""),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("nsk"),
                    Just("server"),
                    Just("health"),
                    Just("pool"),
                    Just("output"),
                    Just("cache"),
                    Just("bogus")
                ],
                prop_oneof![
                    section("nsk"),
                    section("server"),
                    section("health"),
                    section("pool")
                ],
                0..4,
            ),
        )
            .prop_map(|(top, sections)| {
                let mut table: toml::Table = top.into_iter().collect();
                for (name, keys) in sections {
                    table.insert(name.to_string(), Value::Table(keys.into_iter().collect()));
                }
                table
            })
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("1h".into()),
            "A" => Some("true".into()),
            _ => None,
        }
    }

    /// Every dotted key path of `table`, list entries as `key[i]`.
    fn paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let path = format!("{prefix}{k}");
            if let Value::Table(t) = v {
                paths(t, &format!("{path}."), out);
            }
            if let Value::Array(items) = v {
                out.extend((0..items.len()).map(|i| format!("{path}[{i}]")));
            }
            out.push(path);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*(\\n\\PC*){0,5}") {
            let (_, problems) = Config::from_toml_str(&text, &Overrides::default(), env);
            if text.parse::<toml::Table>().is_err() {
                prop_assert_eq!(problems[0].field.as_str(), "(file)");
            }
        }

        #[test]
        fn every_problem_names_a_field_of_the_file(table in table()) {
            let text = toml::to_string(&table).unwrap();
            let (_, problems) = Config::from_toml_str(&text, &Overrides::default(), env);
            let mut present = Vec::new();
            paths(&table, "", &mut present);
            for p in &problems {
                // A missing URL is the one problem about a key not written.
                let missing_url = p.field == "nsk.rancher_url" && p.message.contains("needs a Rancher URL");
                prop_assert!(
                    present.contains(&p.field) || missing_url,
                    "{} names no field of\n{}", p, text
                );
            }
            for (section, keys) in std::iter::once(("", &table)).chain(
                table
                    .iter()
                    .filter(|(k, _)| SECTIONS.contains(&k.as_str()))
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_table()?))),
            ) {
                for key in keys.keys() {
                    let known = typed().iter().any(|(s, k, _)| *s == section && k == key)
                        || (section.is_empty() && SECTIONS.contains(&key.as_str()))
                        || (section == "nsk" && ["kubeconfig_dir", "default_cluster", "auto_discovery"].contains(&key.as_str()));
                    if !known {
                        let field = dotted(section, key);
                        prop_assert!(
                            problems.iter().any(|p| p.field == field && p.message.contains("unknown key")),
                            "unknown {} not reported: {:?}", field, problems
                        );
                    }
                }
            }
        }

        #[test]
        fn a_wrongly_typed_value_is_an_error_naming_its_field(
            (section, key, kind) in proptest::sample::select(typed()),
            wrong in value(),
        ) {
            let right_type = matches!(
                (kind, &wrong),
                (Kind::String | Kind::Duration, Value::String(_))
                    | (Kind::Bool, Value::Boolean(_) | Value::String(_))
                    | (Kind::Integer, Value::Integer(_) | Value::String(_))
                    | (Kind::Strings | Kind::Tables, Value::Array(_))
                    // One `[section.key]` table is read as a list of one.
                    | (Kind::Tables, Value::Table(_))
            );
            prop_assume!(!right_type);
            let mut table = toml::Table::new();
            let mut inner = toml::Table::new();
            inner.insert(key.to_string(), wrong);
            if section.is_empty() {
                table = inner;
            } else {
                table.insert(section.to_string(), Value::Table(inner));
            }
            let text = toml::to_string(&table).unwrap();
            let (_, problems) = Config::from_toml_str(&text, &Overrides::default(), env);
            let field = dotted(section, key);
            prop_assert!(
                problems.iter().any(|p| p.field == field && p.severity == Severity::Error && p.message.contains("expected")),
                "{}: {:?}", text, problems
            );
        }

        #[test]
        fn an_unset_variable_is_an_error_naming_field_and_variable(
            (section, key, kind) in proptest::sample::select(typed()),
            var in "UNSET_[A-Z_]{1,8}",
        ) {
            let reference = Value::String(format!("${{{var}}}"));
            let value = if kind == Kind::Tables {
                let mut rule = toml::Table::new();
                rule.insert("operation".into(), reference);
                Value::Array(vec![Value::Table(rule)])
            } else if kind == Kind::Strings {
                Value::Array(vec![reference])
            } else {
                reference
            };
            let text = if section.is_empty() {
                format!("{key} = {value}\n")
            } else {
                format!("[{section}]\n{key} = {value}\n")
            };
            let (_, problems) = Config::from_toml_str(&text, &Overrides::default(), env);
            let field = dotted(section, key);
            prop_assert!(
                problems.iter().any(|p| p.field.starts_with(&field) && p.message.contains(&format!("{var} is not set"))),
                "{}: {:?}", text, problems
            );
        }

        #[test]
        fn generated_valid_configs_read_back(
            refresh in 60u64..7 * 24 * 3600,
            timeout in 1u64..3600,
            probe_interval in 1u64..600,
            unhealthy_after in 1u32..100,
            qps in 1u32..10_000,
            port in proptest::option::of(any::<u16>()),
            read_only in any::<bool>(),
            environment in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}",
            env_override in proptest::option::of("[a-z][a-z0-9-]{0,20}"),
            profile in "[^$]{0,12}",
            profile_override in proptest::option::of("\\PC{1,12}"),
            exclude in proptest::collection::vec("[a-z0-9-]{1,10}", 0..4),
            through_default in any::<bool>(),
        ) {
            let d = |s: u64| humantime::format_duration(Duration::from_secs(s)).to_string();
            let mut nsk = toml::Table::new();
            nsk.insert("refresh_interval".into(), d(refresh).into());
            nsk.insert("timeout".into(), d(timeout).into());
            // The profile goes through ${VAR:-default} or a `$$` escape.
            let profile_text = if through_default {
                format!("${{UNSET:-{}}}", profile.replace('}', ""))
            } else {
                profile.replace('$', "$$")
            };
            nsk.insert("profile".into(), profile_text.into());
            nsk.insert("exclude_clusters".into(), exclude.clone().into());
            let mut server = toml::Table::new();
            server.insert("environment".into(), environment.clone().into());
            if let Some(p) = port {
                server.insert("port".into(), i64::from(p).into());
            }
            let mut health = toml::Table::new();
            health.insert("probe_interval".into(), d(probe_interval).into());
            health.insert("unhealthy_after".into(), i64::from(unhealthy_after).into());
            let mut pool = toml::Table::new();
            pool.insert("qps".into(), format!("{qps}").into());
            let mut table = toml::Table::new();
            table.insert("read_only".into(), if read_only { "${A}" } else { "off" }.into());
            table.insert("nsk".into(), nsk.into());
            table.insert("server".into(), server.into());
            table.insert("health".into(), health.into());
            table.insert("pool".into(), pool.into());
            let text = toml::to_string(&table).unwrap();
            let overrides = Overrides {
                environment: env_override.clone(),
                profile: profile_override.clone(),
                ..Default::default()
            };
            let (c, problems) = Config::from_toml_str(&text, &overrides, env);
            prop_assert!(problems.iter().all(|p| p.severity == Severity::Warning), "{}\n{:?}", text, problems);
            prop_assert_eq!(c.nsk.refresh_interval, Duration::from_secs(refresh));
            prop_assert_eq!(c.nsk.timeout, Duration::from_secs(timeout));
            let expected_profile = if through_default { profile.replace('}', "") } else { profile };
            prop_assert_eq!(c.nsk.profile, Some(profile_override.unwrap_or(expected_profile)));
            prop_assert_eq!(c.nsk.exclude_clusters, exclude);
            prop_assert_eq!(c.server.environment, env_override.unwrap_or(environment));
            prop_assert_eq!(c.server.port, port);
            prop_assert_eq!(c.health.probe_interval, Duration::from_secs(probe_interval));
            prop_assert_eq!(c.health.unhealthy_after, unhealthy_after);
            prop_assert_eq!(c.pool.qps, qps);
            prop_assert_eq!(c.read_only, read_only);
        }

        #[test]
        fn environment_names_are_accepted_exactly_as_documented(name in "[A-Za-z0-9._/ -]{0,70}|\\PC{0,10}") {
            let documented = !name.is_empty()
                && name.len() <= 64
                && !name.starts_with('.')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
            let text = format!("[server]\nenvironment = {}\n", Value::String(name.clone()));
            let (_, problems) = Config::from_toml_str(&text, &Overrides::default(), env);
            let refused = problems.iter().any(|p| p.field == "server.environment");
            prop_assert_eq!(refused, !documented, "{:?}", name);
        }
    }
}

#[test]
fn an_empty_excluded_cluster_is_reported_on_its_own_field() {
    let (_, problems) =
        parse("allowed_clusters = [\"a\"]\n[nsk]\nexclude_clusters = [\"x\", \"\"]\n");
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["nsk.exclude_clusters[1]"], "{problems:?}");
}

#[test]
fn allow_exec_plugins_defaults_off_and_warns_where_it_cannot_apply() {
    let (config, problems) = parse("kubeconfig_dir = \"/k\"\n");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(!config.safety.allow_exec_plugins);
    let (config, problems) =
        parse("kubeconfig_dir = \"/k\"\n[safety]\nallow_exec_plugins = true\n");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(config.safety.allow_exec_plugins);
    let (_, problems) = parse(
        "[nsk]\nsource = \"rancher\"\nrancher_url = \"https://r.example.com\"\n[safety]\nallow_exec_plugins = true\n",
    );
    assert!(
        problems
            .iter()
            .any(|p| p.field.contains("allow_exec_plugins") && p.message.contains("no effect")),
        "{problems:?}"
    );
    let (_, problems) = parse("[safety]\nallow_exec_plugin = true\n");
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("allow_exec_plugins")),
        "{problems:?}"
    );
}

#[test]
fn prompts_are_read_and_each_bad_entry_is_named() {
    let text = r#"
[[prompts]]
name = "shop_check"
description = "Check the shop"
text = "Look at {ns}."
arguments = ["ns", "unused"]

[[prompts]]
name = "shop_check"
text = "again"

[[prompts]]
name = "x"
text = "y"
bogus = 1
"#;
    let (c, problems) = Config::from_toml_str(text, &Overrides::default(), env);
    assert_eq!(c.prompts.len(), 2, "{problems:?}");
    assert_eq!(c.prompts[0].arguments, ["ns", "unused"]);
    let named = |field: &str, words: &str| {
        problems
            .iter()
            .any(|p| p.field == field && p.message.contains(words))
    };
    assert!(named("prompts[0].arguments", "never used"), "{problems:?}");
    assert!(named("prompts[1].name", "defined twice"), "{problems:?}");
    assert!(named("prompts[2].bogus", "unknown key"), "{problems:?}");
}
