//! Configuration errors, all at once.

use std::process::Command;

use nskd_e2e::{bins::bin, daemon::text};

#[test]
fn check_config_lists_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        r#"kubeconfig_dir = "/nonexistent/kubeconfigs"
auto_discovry = true

[nsk]
refresh_interval = "every hour"
cluster_pattern = "c1-(sv5"
rancher_token = "${NSKD_E2E_UNSET_TOKEN}"

[server]
environment = "e2e"
"#,
    )
    .unwrap();
    let out = Command::new(bin("nskd"))
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .env_remove("NSKD_E2E_UNSET_TOKEN")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert!(!out.status.success(), "{all}");
    for want in [
        "auto_discovry",
        "auto_discovery",
        "nsk.refresh_interval",
        "nsk.cluster_pattern",
        "NSKD_E2E_UNSET_TOKEN",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }

    // The daemon refuses to start on it and points at check-config.
    let out = Command::new(bin("nskd"))
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(dir.path().join("run/e2e.sock"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("check-config"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = Command::new(bin("nskd"))
        .args(["check-config", "--config", "/nonexistent/nskd.toml"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("/nonexistent/nskd.toml"), "{stderr}");
}

#[test]
fn packaged_environment_configs_pass_check_config_with_their_variables_set() {
    let home = tempfile::tempdir().unwrap();
    let fake = nskd_e2e::fake_nsk::FakeNsk::create(&home.path().join("fake"), Default::default());
    let path = format!(
        "{}:{}",
        fake.dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let packaging = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging");
    for name in ["production", "staging", "development"] {
        let file = packaging.join(format!("config-{name}.toml"));
        let run = |with_token: bool| {
            let mut cmd = Command::new(bin("nskd"));
            cmd.arg("check-config")
                .arg("--config")
                .arg(&file)
                .env("HOME", home.path())
                .env("PATH", &path);
            for var in [
                "PROD_RANCHER_TOKEN",
                "STAGING_RANCHER_TOKEN",
                "DEV_RANCHER_TOKEN",
            ] {
                if with_token {
                    cmd.env(var, "token-pkgcf:PACKAGEDCONFIGTOKEN0123456789");
                } else {
                    cmd.env_remove(var);
                }
            }
            cmd.output().unwrap()
        };
        let ok = run(true);
        let (stdout, stderr) = text(&ok);
        assert!(ok.status.success(), "{name}: {stdout}{stderr}");
        assert!(!stdout.contains("PACKAGEDCONFIGTOKEN"), "{stdout}");
        let missing = run(false);
        let (stdout, _) = text(&missing);
        assert!(
            !missing.status.success(),
            "{name} without its token must fail"
        );
        assert!(
            stdout.contains("nsk.rancher_token") && stdout.contains("RANCHER_TOKEN"),
            "{stdout}"
        );
    }
}

#[test]
fn check_config_finds_a_missing_nsk_and_an_unknown_default_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kc");
    std::fs::create_dir(&kc).unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "kubeconfig_dir = {:?}\ndefault_cluster = \"c1-nowhere\"\n[nsk]\nsource = \"nsk\"\nnsk_path = \"/nonexistent/nsk\"\nrancher_url = \"https://rancher.example.com\"\n",
            kc.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(bin("nskd"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("nsk.nsk_path") && stdout.contains("/nonexistent/nsk"),
        "{stdout}"
    );
    assert!(
        stdout.contains("default_cluster") && stdout.contains("c1-nowhere"),
        "{stdout}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_real_flags() {
    let run = |bin_name: &str, args: &[&str]| {
        let out = Command::new(bin(bin_name)).args(args).output().unwrap();
        assert!(out.status.success(), "{bin_name} {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(run("nskctl", &["completions", "bash"]).contains("install-units"));
    assert!(run("nskctl", &["man"]).contains(".TH nskctl 1"));
    assert!(run("nskd", &["--man"]).contains("nsk\\-refresh\\-interval"));
    assert!(run("nskd", &["--completions", "zsh"]).contains("--kubeconfig-dir"));
    assert!(run("mcp-shim", &["--man"]).contains("start\\-daemon"));
    assert!(run("mcp-shim", &["--completions", "fish"]).contains("http-token-file"));
}
