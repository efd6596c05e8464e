//! A real OpenID provider for the team tests: npm `oidc-provider` (installed
//! once by tests/oidc/setup.sh into the test cache), started on loopback by
//! [`Provider::start`] and stopped when dropped. It serves discovery and its
//! JWKS itself; [`Provider::mint`] gets tokens signed with its own key (or
//! deliberately flawed ones) through its test-only `/test/mint` endpoint.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
};

use serde_json::{Value, json};

/// Runs tests/oidc/setup.sh once per test process: the directory holding
/// provider.mjs and its node_modules. Panics with the script's stderr when
/// it fails (a missing provider must not pass as a skip).
pub fn install() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc/setup.sh");
    let dir = DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(PathBuf::from(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or("")
                .trim(),
        ))
    });
    dir.clone().unwrap_or_else(|e| panic!("{e}"))
}

/// A running provider.
#[derive(Debug)]
pub struct Provider {
    child: Child,
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
}

impl Provider {
    /// Installs (once) and starts the provider on a free loopback port.
    pub fn start() -> Provider {
        let dir = install();
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg("0")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start node tests/oidc/provider.mjs (is nodejs installed?)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("provider's first line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("provider printed {line:?} instead of its issuer: {e}"));
        let issuer = ready["issuer"].as_str().expect("issuer").to_string();
        Provider { child, issuer }
    }

    /// A token for `claims` (see tests/oidc/provider.mjs: sub, email,
    /// groups, aud, iss, exp, extra, flaw).
    pub fn mint(&self, claims: &Value) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "--max-time", "10", "-X", "POST"])
            .args(["-H", "Content-Type: application/json", "--data"])
            .arg(claims.to_string())
            .arg(format!("{}/test/mint", self.issuer))
            .output()
            .expect("cannot run curl");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(out.status.success(), "mint {claims}: {text}");
        text
    }

    /// A valid token for `email` in `groups`.
    pub fn token(&self, email: &str, groups: &[&str]) -> String {
        self.mint(&json!({ "email": email, "groups": groups }))
    }

    /// The `[http_auth]` section of a daemon trusting this provider for
    /// audience `nskd`.
    pub fn http_auth_section(&self) -> String {
        format!(
            "[http_auth]\nissuer = \"{}\"\naudience = \"nskd\"\nclock_skew = \"5s\"\n",
            self.issuer
        )
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RBAC on `c` for the team test: group `readers` may read everything
/// (ClusterRole e2e-team-read), group `shop-editors` may change namespace
/// `shop` (Role binding to ClusterRole e2e-team-edit). Idempotent.
pub fn grant_team_rbac(c: &crate::rig::RigCluster) {
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    let group = |name: &str| json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name}]);
    let role_ref = |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name});
    let objects = [
        (
            format!("{rbac}/clusterroles"),
            json!({"metadata": {"name": "e2e-team-read"}, "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]}),
        ),
        (
            format!("{rbac}/clusterroles"),
            json!({"metadata": {"name": "e2e-team-edit"}, "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        ),
        (
            format!("{rbac}/clusterrolebindings"),
            json!({"metadata": {"name": "e2e-team-readers"}, "roleRef": role_ref("e2e-team-read"), "subjects": group("readers")}),
        ),
        (
            format!("{rbac}/namespaces/shop/rolebindings"),
            json!({"metadata": {"name": "e2e-team-shop-editors"}, "roleRef": role_ref("e2e-team-edit"), "subjects": group("shop-editors")}),
        ),
    ];
    for (path, body) in objects {
        match crate::kubeapi::try_call(c, "POST", &path, Some(&body.to_string())) {
            Ok(_) => {}
            Err(e) if e.contains("AlreadyExists") => {}
            Err(e) => panic!("{e}"),
        }
    }
}
