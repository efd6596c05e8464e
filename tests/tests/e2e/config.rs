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
