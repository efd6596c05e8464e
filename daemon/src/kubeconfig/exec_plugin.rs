//! Running `users[].user.exec` credential plugins of the user's own
//! kubeconfigs (only with `[safety] allow_exec_plugins`), instead of letting
//! kube-rs run them: a cleared environment (PATH, HOME, the plugin's own
//! `env` and KUBERNETES_EXEC_INFO), its own process group killed at the
//! timeout, capped output, off the async runtime's threads. The credential
//! it prints replaces the plugin in the kubeconfig kube-rs gets.

use std::time::{Duration, SystemTime};

use kube::config::{AuthInfo, ExecConfig, Kubeconfig};
use secrecy::SecretString;
use tokio::io::AsyncReadExt;

/// Most bytes of standard output read from a plugin.
pub const MAX_STDOUT: u64 = 1024 * 1024;
/// Most bytes of standard error kept for an error message.
const MAX_STDERR: u64 = 2048;
/// Variables of the daemon's environment a plugin gets.
pub const PASS_THROUGH: &[&str] = &["PATH", "HOME"];

/// Why a plugin gave no credential. Names the plugin, its user and the
/// kubeconfig; never the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// It could not be started.
    #[error(
        "exec plugin {command:?} of user {user:?} ({origin}) could not be started: {reason}; install it or fix users[].user.exec.command"
    )]
    Spawn {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// The kubeconfig file.
        origin: String,
        /// The OS error.
        reason: String,
    },
    /// It ran past the timeout and was killed.
    #[error(
        "exec plugin {command:?} of user {user:?} ({origin}) did not finish within {timeout:?} and was killed (with its process group); nskd runs plugins without a terminal, so one that waits for a login cannot work: log in first, or use a token"
    )]
    Timeout {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// The kubeconfig file.
        origin: String,
        /// The limit.
        timeout: Duration,
    },
    /// It failed or printed something unusable.
    #[error("exec plugin {command:?} of user {user:?} ({origin}) {reason}")]
    Failed {
        /// The command.
        command: String,
        /// The kubeconfig user.
        user: String,
        /// The kubeconfig file.
        origin: String,
        /// What went wrong and what to do.
        reason: String,
    },
}

/// The credential a plugin printed.
#[derive(Clone)]
pub struct Credential {
    token: Option<SecretString>,
    client_certificate_data: Option<String>,
    client_key_data: Option<SecretString>,
    /// When it must be fetched again (`status.expirationTimestamp`).
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "client_certificate",
                &self.client_certificate_data.is_some(),
            )
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The kubeconfig user of `context`, if it has an exec plugin.
pub fn plugin_user(config: &Kubeconfig, context: &str) -> Option<(String, ExecConfig)> {
    let user = config
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let exec = config
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .as_ref()?
        .exec
        .clone()?;
    Some((user, exec))
}

/// `config` with the exec plugin of `user` replaced by `credential`.
pub fn with_credential(config: &Kubeconfig, user: &str, credential: &Credential) -> Kubeconfig {
    let mut out = config.clone();
    for named in out.auth_infos.iter_mut().filter(|a| a.name == user) {
        let old = named.auth_info.take().unwrap_or_default();
        named.auth_info = Some(AuthInfo {
            exec: None,
            token: credential.token.clone(),
            token_file: None,
            client_certificate_data: credential.client_certificate_data.clone(),
            client_certificate: None,
            client_key_data: credential.client_key_data.clone(),
            client_key: None,
            ..old
        });
    }
    out
}

/// Runs `exec` for `user` (of the kubeconfig `origin`) and parses the
/// ExecCredential it prints.
pub async fn run(
    exec: &ExecConfig,
    user: &str,
    origin: &str,
    timeout: Duration,
) -> Result<Credential, ExecError> {
    let command = exec.command.clone().unwrap_or_default();
    let failed = |reason: String| ExecError::Failed {
        command: command.clone(),
        user: user.to_string(),
        origin: origin.to_string(),
        reason,
    };
    let api_version = exec
        .api_version
        .clone()
        .unwrap_or_else(|| "client.authentication.k8s.io/v1".to_string());
    let info = serde_json::json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": false},
    });
    let mut cmd = crate::child::confined(&command, exec.args.iter().flatten(), PASS_THROUGH);
    for pair in exec.env.iter().flatten() {
        if let (Some(name), Some(value)) = (pair.get("name"), pair.get("value")) {
            cmd.env(name, value);
        }
    }
    cmd.env("KUBERNETES_EXEC_INFO", info.to_string());
    let mut child = cmd.spawn().map_err(|e| ExecError::Spawn {
        command: command.clone(),
        user: user.to_string(),
        origin: origin.to_string(),
        reason: e.to_string(),
    })?;
    let pid = child.id();
    let kill_group = || {
        if let Some(pgid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // Standard error is drained to its end (a plugin blocked on a full pipe
    // would look hung); only its start is kept.
    let stderr_task = tokio::spawn(async move {
        let mut kept = Vec::new();
        let _ = (&mut stderr).take(MAX_STDERR).read_to_end(&mut kept).await;
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        kept
    });
    let work = async {
        let mut out = Vec::new();
        (&mut stdout)
            .take(MAX_STDOUT + 1)
            .read_to_end(&mut out)
            .await?;
        if out.len() as u64 > MAX_STDOUT {
            return Ok(None);
        }
        let status = child.wait().await?;
        let err = stderr_task.await.unwrap_or_default();
        Ok::<_, std::io::Error>(Some((status, out, err)))
    };
    let (status, out, err) = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(Some(done))) => done,
        Ok(Ok(None)) => {
            kill_group();
            return Err(failed(format!(
                "printed more than {MAX_STDOUT} bytes (it was killed); an ExecCredential is far smaller"
            )));
        }
        Ok(Err(e)) => {
            kill_group();
            return Err(failed(format!("could not be read from: {e}")));
        }
        Err(_) => {
            kill_group();
            return Err(ExecError::Timeout {
                command,
                user: user.to_string(),
                origin: origin.to_string(),
                timeout,
            });
        }
    };
    if !status.success() {
        let stderr =
            crate::redact::redact(&crate::kubeconfig::one_line(&String::from_utf8_lossy(&err)));
        return Err(failed(format!(
            "failed ({status}): {stderr}; run it by hand to see why"
        )));
    }
    parse(&out).map_err(|why| failed(format!("printed no usable ExecCredential: {why}")))
}

/// Parses an ExecCredential (`client.authentication.k8s.io/v1` or
/// `v1beta1`): a token or client certificate and key data.
pub fn parse(out: &[u8]) -> Result<Credential, String> {
    #[derive(serde::Deserialize)]
    struct ExecCredential {
        #[serde(rename = "apiVersion", default)]
        api_version: String,
        #[serde(default)]
        kind: String,
        status: Option<Status>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        expiration_timestamp: Option<String>,
        token: Option<String>,
        client_certificate_data: Option<String>,
        client_key_data: Option<String>,
    }
    let cred: ExecCredential =
        serde_json::from_slice(out).map_err(|e| format!("not JSON ({})", e.classify_name()))?;
    if cred.kind != "ExecCredential"
        || !cred
            .api_version
            .starts_with("client.authentication.k8s.io/")
    {
        return Err(format!(
            "kind {:?} apiVersion {:?}, expected an ExecCredential of client.authentication.k8s.io",
            cred.kind, cred.api_version
        ));
    }
    let status = cred.status.ok_or("it has no status")?;
    let expires = match status.expiration_timestamp.as_deref() {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<k8s_openapi::jiff::Timestamp>()
                .map_err(|e| format!("expirationTimestamp {t:?} is not RFC 3339: {e}"))?
                .into(),
        ),
    };
    let b64 = |pem: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(pem)
    };
    match (
        status.token,
        status.client_certificate_data,
        status.client_key_data,
    ) {
        (Some(token), _, _) if !token.is_empty() => Ok(Credential {
            token: Some(token.into()),
            client_certificate_data: None,
            client_key_data: None,
            expires,
        }),
        (_, Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => Ok(Credential {
            token: None,
            // The kubeconfig's `*-data` fields are base64 of the PEM.
            client_certificate_data: Some(b64(cert)),
            client_key_data: Some(b64(key).into()),
            expires,
        }),
        _ => Err("status has neither a token nor clientCertificateData with clientKeyData".into()),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The kind of JSON error, without echoing the input (it may hold a
    /// credential).
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &std::path::Path, body: &str) -> String {
        let p = dir.join("plugin.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn exec(command: &str) -> ExecConfig {
        ExecConfig {
            api_version: Some("client.authentication.k8s.io/v1".into()),
            command: Some(command.into()),
            env: Some(vec![
                [
                    ("name".to_string(), "PLUGIN_OWN".to_string()),
                    ("value".to_string(), "yes".to_string()),
                ]
                .into_iter()
                .collect(),
            ]),
            ..Default::default()
        }
    }

    const TOKEN_OUT: &str = r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-123","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;

    #[test]
    fn parse_reads_token_cert_and_expiry_and_refuses_the_rest() {
        let c = parse(TOKEN_OUT.as_bytes()).unwrap();
        assert_eq!(
            c.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000))
        );
        assert!(!format!("{c:?}").contains("tok-123"));
        let cert = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"clientCertificateData":"-----BEGIN CERTIFICATE-----","clientKeyData":"k"}}"#;
        assert!(
            parse(cert.as_bytes())
                .unwrap()
                .client_certificate_data
                .is_some()
        );
        for bad in [
            "nope",
            r#"{"kind":"Secret","apiVersion":"v1","status":{"token":"x"}}"#,
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}"#,
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}"#,
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert!(!e.contains("nope"), "the output is not echoed: {e}");
        }
    }

    #[tokio::test]
    async fn plugin_runs_with_a_cleared_environment() {
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("env.txt");
        let cmd = script(
            dir.path(),
            &format!("env > {}\necho '{TOKEN_OUT}'", dump.display()),
        );
        // SAFETY-free: the test sets no variable; it checks the daemon's own
        // variables (e.g. CARGO_*) do not reach the plugin.
        let cred = run(&exec(&cmd), "u", "kubeconfig /k", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(cred.token.is_some());
        let env = std::fs::read_to_string(&dump).unwrap();
        let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        assert!(
            names.contains(&"PLUGIN_OWN") && names.contains(&"KUBERNETES_EXEC_INFO"),
            "{env}"
        );
        let allowed = [
            "PATH",
            "HOME",
            "PLUGIN_OWN",
            "KUBERNETES_EXEC_INFO",
            "PWD",
            "SHLVL",
            "_",
            "OLDPWD",
        ];
        for n in &names {
            assert!(allowed.contains(n), "{n} reached the plugin:\n{env}");
        }
    }

    #[tokio::test]
    async fn a_plugin_that_hangs_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let cmd = script(
            dir.path(),
            &format!("sleep 300 &\necho $! > {}\nwait", pidfile.display()),
        );
        let t0 = std::time::Instant::now();
        let e = run(
            &exec(&cmd),
            "u",
            "kubeconfig /k",
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(matches!(e, ExecError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("was killed"), "{e}");
        let child: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The whole process group went: the grandchild too.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{child}")).exists()
            && std::fs::read_to_string(format!("/proc/{child}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {child} still runs"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[tokio::test]
    async fn failures_and_oversized_output_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = script(dir.path(), "echo 'login required' >&2\nexit 3");
        let e = run(&exec(&cmd), "u", "kubeconfig /k", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("login required") && e.contains("kubeconfig /k"),
            "{e}"
        );
        let cmd = script(dir.path(), "head -c 2000000 /dev/zero");
        let e = run(&exec(&cmd), "u", "kubeconfig /k", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than"), "{e}");
        let e = run(
            &exec("/nonexistent/plugin"),
            "u",
            "kubeconfig /k",
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ExecError::Spawn { .. }), "{e}");
    }

    #[test]
    fn the_credential_replaces_the_plugin() {
        let config = Kubeconfig::from_yaml(
            "clusters: [{name: c, cluster: {server: 'https://10.0.0.1'}}]\nusers: [{name: u, user: {exec: {command: x}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n",
        )
        .unwrap();
        let (user, _) = plugin_user(&config, "c").unwrap();
        let cred = parse(TOKEN_OUT.as_bytes()).unwrap();
        let out = with_credential(&config, &user, &cred);
        let a = out.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(a.exec.is_none() && a.token.is_some());
        assert!(plugin_user(&out, "c").is_none());
    }
}
