//! Reading kubeconfig files into per-context summaries, without ever letting
//! a credential out: only the kind of authentication and expiry times.

pub mod exec_plugin;
pub mod trust;

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use kube::config::{AuthInfo, Kubeconfig};

/// A parsed kubeconfig file.
#[derive(Debug, Clone)]
pub struct KubeconfigFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Hash of the file's bytes: a change of content means a new client.
    pub hash: u64,
    /// Modification time.
    pub modified: SystemTime,
    /// Size in bytes (with `modified`, detects changes cheaply).
    pub len: u64,
    /// Owner (uid) of the file as read.
    pub uid: u32,
    /// Permission bits of the file as read.
    pub mode: u32,
    /// The parsed configuration (relative paths made absolute).
    pub config: Arc<Kubeconfig>,
}

/// Why a kubeconfig file cannot be used. Always names the file.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KubeconfigError {
    /// Unreadable.
    #[error("cannot read kubeconfig {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// Not YAML, or not a kubeconfig.
    #[error(
        "kubeconfig {path} is malformed: {reason}; fix or replace the file (e.g. `nskctl refresh --force`)"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Parsed, but a context is unusable.
    #[error("kubeconfig {path}, context {context:?}: {reason}")]
    Context {
        /// The file.
        path: PathBuf,
        /// The context.
        context: String,
        /// What is missing.
        reason: String,
    },
    /// Parsed, but it carries something nskd does not run or send
    /// (see [`crate::kubeconfig::trust`]).
    #[error(transparent)]
    Untrusted(#[from] crate::kubeconfig::trust::TrustError),
}

/// What one context of a kubeconfig gives us, with no secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSummary {
    /// Context name.
    pub context: String,
    /// API server URL.
    pub server: String,
    /// Authentication kind: token, token-file, client-certificate, exec,
    /// auth-provider, basic or none.
    pub auth: &'static str,
    /// Expiry of a JWT bearer token, if it is one.
    pub token_expiry: Option<SystemTime>,
    /// Expiry of the client certificate, else of the cluster's CA.
    pub cert_expiry: Option<SystemTime>,
}

/// Reads and parses `path`. The bytes, owner and mode come from one open
/// file, so what is checked is what is parsed; relative file paths in it
/// are made absolute against the file's directory (as kubectl does).
pub fn read(path: &Path) -> Result<KubeconfigFile, KubeconfigError> {
    use std::{io::Read, os::unix::fs::MetadataExt};
    let read_err = |e: std::io::Error| KubeconfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(KubeconfigError::Read {
            path: path.to_path_buf(),
            reason: "not a regular file".into(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes).map_err(read_err)?;
    let malformed = |reason: String| KubeconfigError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let mut config =
        Kubeconfig::from_yaml(text).map_err(|e| malformed(one_line(&e.to_string())))?;
    if config.contexts.is_empty() {
        return Err(malformed("it defines no contexts".into()));
    }
    if let Some(dir) = path.parent() {
        make_paths_absolute(&mut config, dir);
    }
    Ok(KubeconfigFile {
        path: path.to_path_buf(),
        hash: hash_bytes(&bytes),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        len: meta.len(),
        uid: meta.uid(),
        mode: meta.mode(),
        config: Arc::new(config),
    })
}

/// Makes the file paths of a kubeconfig absolute against `dir`.
fn make_paths_absolute(config: &mut Kubeconfig, dir: &Path) {
    let abs = |p: &mut Option<String>| {
        if let Some(rel) = p.as_deref().filter(|r| Path::new(r).is_relative())
            && let Some(joined) = dir.join(rel).to_str()
        {
            *p = Some(joined.to_string());
        }
    };
    for c in config
        .clusters
        .iter_mut()
        .filter_map(|c| c.cluster.as_mut())
    {
        abs(&mut c.certificate_authority);
    }
    for a in config
        .auth_infos
        .iter_mut()
        .filter_map(|a| a.auth_info.as_mut())
    {
        abs(&mut a.client_certificate);
        abs(&mut a.client_key);
        abs(&mut a.token_file);
    }
}

/// Hash used to tell kubeconfig contents apart (not cryptographic).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl KubeconfigFile {
    /// Names of the contexts, in file order.
    pub fn context_names(&self) -> Vec<String> {
        self.config
            .contexts
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Summarises one context, checking it names a cluster with a server.
    pub fn summarize(&self, context: &str) -> Result<ContextSummary, KubeconfigError> {
        let err = |reason: String| KubeconfigError::Context {
            path: self.path.clone(),
            context: context.to_string(),
            reason,
        };
        let ctx = self
            .config
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .ok_or_else(|| err("context not found or empty".into()))?;
        let cluster = self
            .config
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.cluster.as_ref())
            .ok_or_else(|| {
                err(format!(
                    "cluster {:?} is not defined in the file",
                    ctx.cluster
                ))
            })?;
        let server = cluster
            .server
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(format!("cluster {:?} has no server URL", ctx.cluster)))?;
        if server
            .parse::<http::Uri>()
            .map(|u| u.host().is_none())
            .unwrap_or(true)
        {
            return Err(err(format!("server {server:?} is not a URL")));
        }
        let auth_info = ctx.user.as_ref().and_then(|user| {
            self.config
                .auth_infos
                .iter()
                .find(|a| &a.name == user)
                .and_then(|a| a.auth_info.as_ref())
        });
        Ok(ContextSummary {
            context: context.to_string(),
            server,
            auth: auth_kind(auth_info),
            token_expiry: auth_info.and_then(token_expiry),
            cert_expiry: auth_info
                .and_then(client_cert_expiry)
                .or_else(|| pem_data_expiry(cluster.certificate_authority_data.as_deref())),
        })
    }
}

/// `notAfter` of base64-encoded PEM data (the `*-data` fields of a kubeconfig).
fn pem_data_expiry(data: Option<&str>) -> Option<SystemTime> {
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data?.trim())
        .ok()?;
    crate::certexpiry::not_after_pem(&pem)
}

/// `notAfter` of the client certificate (inline data or file).
fn client_cert_expiry(auth: &AuthInfo) -> Option<SystemTime> {
    pem_data_expiry(auth.client_certificate_data.as_deref()).or_else(|| {
        let pem = std::fs::read(auth.client_certificate.as_ref()?).ok()?;
        crate::certexpiry::not_after_pem(&pem)
    })
}

fn auth_kind(auth: Option<&AuthInfo>) -> &'static str {
    let Some(a) = auth else { return "none" };
    if a.exec.is_some() {
        "exec"
    } else if a.auth_provider.is_some() {
        "auth-provider"
    } else if a.token.is_some() {
        "token"
    } else if a.token_file.is_some() {
        "token-file"
    } else if a.client_certificate.is_some() || a.client_certificate_data.is_some() {
        "client-certificate"
    } else if a.username.is_some() {
        "basic"
    } else {
        "none"
    }
}

/// The `exp` claim of a JWT bearer token (Rancher tokens are not JWTs and
/// yield `None`; their expiry comes from the Rancher API).
pub fn token_expiry(auth: &AuthInfo) -> Option<SystemTime> {
    use secrecy::ExposeSecret;
    let token = auth.token.as_ref()?.expose_secret().to_string();
    let payload = token.split('.').nth(1)?;
    let decoded = base64_url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&decoded).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(exp))
}

fn base64_url_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(input.trim_end_matches('='))
        .ok()
}

/// Collapses a multi-line parser message to one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const TWO_CONTEXTS: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.2:6443"}
users:
- name: u
  user: {token: "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.sig"}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b}
- name: ctx-broken
  context: {cluster: missing}
current-context: ctx-a
"#;

    #[test]
    fn summaries_name_auth_kind_and_jwt_expiry_but_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let f = read(&write(dir.path(), "k.yaml", TWO_CONTEXTS)).unwrap();
        assert_eq!(f.context_names(), ["ctx-a", "ctx-b", "ctx-broken"]);
        let a = f.summarize("ctx-a").unwrap();
        assert_eq!(a.server, "https://127.0.0.1:6443");
        assert_eq!(a.auth, "token");
        assert_eq!(
            a.token_expiry,
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(4102444800))
        );
        assert!(!format!("{a:?}").contains("eyJ"));
        assert_eq!(f.summarize("ctx-b").unwrap().auth, "none");
        let broken = f.summarize("ctx-broken").unwrap_err().to_string();
        assert!(
            broken.contains("k.yaml") && broken.contains("\"missing\" is not defined"),
            "{broken}"
        );
    }

    #[test]
    fn malformed_file_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "bad.yaml", "clusters: [this is: not: valid");
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("bad.yaml") && e.contains("malformed"), "{e}");
        let p = write(dir.path(), "empty.yaml", "apiVersion: v1\nkind: Config\n");
        assert!(read(&p).unwrap_err().to_string().contains("no contexts"));
    }

    /// One generated context: name, server, optional JWT expiry (seconds)
    /// and optional client-certificate expiry (seconds).
    type Generated = (String, String, Option<u64>, Option<u64>);

    fn generated_context() -> impl Strategy<Value = Generated> {
        (
            // Not U+2028/U+2029: yaml_serde writes them unquoted and reads
            // them back as line breaks (a serializer quirk, not ours).
            "[A-Za-z0-9][A-Za-z0-9._@:-]{0,20}|[^\\p{C}\\p{Zl}\\p{Zp}]{1,12}",
            "https://([a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}|127\\.0\\.0\\.[0-9]{1,3}):[1-9][0-9]{2,4}(/k8s/clusters/c-[a-z0-9]{5})?",
            proptest::option::of(0u64..4_102_444_800),
            proptest::option::of(0u64..4_102_444_800),
        )
    }

    /// A kubeconfig (as a YAML string) with one cluster and user per context.
    fn kubeconfig_yaml(contexts: &[Generated]) -> String {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut ctxs = Vec::new();
        for (i, (name, server, exp, cert)) in contexts.iter().enumerate() {
            clusters.push(
                serde_json::json!({"name": format!("cl-{i}"), "cluster": {"server": server}}),
            );
            let mut user = serde_json::Map::new();
            if let Some(exp) = exp {
                let claims = b64url(format!("{{\"exp\":{exp},\"sub\":\"u\"}}").as_bytes());
                user.insert(
                    "token".into(),
                    format!("eyJhbGciOiJub25lIn0.{claims}.c2ln").into(),
                );
            }
            if let Some(cert) = cert {
                let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(*cert);
                let der = crate::certexpiry::testcert::certificate(
                    &crate::certexpiry::testcert::time(t, true),
                    true,
                    i * 37,
                );
                let pem = crate::certexpiry::testcert::pem(&der);
                user.insert("client-certificate-data".into(), b64(pem.as_bytes()).into());
                user.insert("client-key-data".into(), b64(b"not a key").into());
            }
            users.push(serde_json::json!({"name": format!("u-{i}"), "user": user}));
            ctxs.push(serde_json::json!({"name": name, "context": {"cluster": format!("cl-{i}"), "user": format!("u-{i}")}}));
        }
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": clusters,
            "users": users,
            "contexts": ctxs,
            "current-context": contexts[0].0,
        });
        yaml_serde::to_string(&doc).unwrap()
    }

    /// YAML-ish values shaped like a kubeconfig, with wrong types and
    /// missing pieces.
    fn kubeconfig_like() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            Just(Value::from("https://127.0.0.1:6443")),
            Just(Value::from("bm90IHBlbQ==")),
        ];
        let keys = prop_oneof![
            Just("clusters"),
            Just("contexts"),
            Just("users"),
            Just("name"),
            Just("cluster"),
            Just("context"),
            Just("user"),
            Just("server"),
            Just("token"),
            Just("exec"),
            Just("client-certificate-data"),
            Just("certificate-authority-data"),
            Just("current-context"),
            Just("apiVersion"),
            Just("kind"),
            Just("extensions"),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_text_never_panics(
            text in "\\PC*(\\n\\PC*){0,6}",
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let _ = crate::store::validate_kubeconfig(
                "c",
                &text,
                Some("/k8s/clusters/c-1"),
                &crate::kubeconfig::trust::Trust::Fetched { pin: None },
            );
            let raw = dir.path().join("raw.yaml");
            std::fs::write(&raw, &bytes).unwrap();
            for path in [write(dir.path(), "k.yaml", &text), raw] {
                if let Ok(f) = read(&path) {
                    for name in f.context_names() {
                        let _ = f.summarize(&name);
                    }
                }
            }
        }

        #[test]
        fn arbitrary_kubeconfig_shapes_never_panic(doc in kubeconfig_like()) {
            let text = yaml_serde::to_string(&doc).unwrap();
            if let Ok(config) = Kubeconfig::from_yaml(&text) {
                let f = KubeconfigFile {
                    path: PathBuf::from("/k.yaml"),
                    hash: 0,
                    modified: SystemTime::UNIX_EPOCH,
                    len: 0,
                    uid: 0,
                    mode: 0o600,
                    config: Arc::new(config),
                };
                for name in f.context_names() {
                    let _ = f.summarize(&name);
                }
            }
        }

        #[test]
        fn generated_kubeconfigs_parse_back(contexts in proptest::collection::vec(generated_context(), 1..5)) {
            let mut seen = std::collections::HashSet::new();
            prop_assume!(contexts.iter().all(|c| seen.insert(c.0.clone())));
            let dir = tempfile::tempdir().unwrap();
            let f = read(&write(dir.path(), "k.yaml", &kubeconfig_yaml(&contexts))).unwrap();
            let names: Vec<String> = contexts.iter().map(|c| c.0.clone()).collect();
            prop_assert_eq!(f.context_names(), names);
            let at = |s: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
            for (name, server, exp, cert) in &contexts {
                let s = f.summarize(name).unwrap();
                prop_assert_eq!(&s.server, server);
                let auth = match (exp, cert) {
                    (Some(_), _) => "token",
                    (None, Some(_)) => "client-certificate",
                    (None, None) => "none",
                };
                prop_assert_eq!(s.auth, auth);
                prop_assert_eq!(s.token_expiry, exp.map(at));
                prop_assert_eq!(s.cert_expiry, cert.map(at));
            }
        }
    }

    #[test]
    fn same_bytes_same_hash() {
        assert_eq!(hash_bytes(b"x"), hash_bytes(b"x"));
        assert_ne!(hash_bytes(b"x"), hash_bytes(b"y"));
    }
}
