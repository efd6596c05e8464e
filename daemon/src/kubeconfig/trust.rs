//! Deciding whether a kubeconfig may be used: fetched kubeconfigs (nsk,
//! Rancher) must be data only and point at Rancher; the user's own files
//! must be private to the daemon's user and run no plugin unless allowed.
//!
//! ```
//! use nskd::kubeconfig::trust::{Pin, Trust, check_config};
//! let text = "clusters: [{name: c, cluster: {server: 'https://rancher.example.com/k8s/clusters/c-1'}}]\n\
//!             users: [{name: u, user: {exec: {command: sh}}}]\n\
//!             contexts: [{name: c, context: {cluster: c, user: u}}]\n";
//! let config = kube::config::Kubeconfig::from_yaml(text).unwrap();
//! let trust = Trust::Fetched { pin: Some(Pin::parse("https://rancher.example.com").unwrap()) };
//! assert_eq!(check_config(&config, &trust).unwrap_err().field, "users[0].user.exec");
//! ```

use std::path::Path;

use kube::config::Kubeconfig;

use crate::config::{Config, SourceKind};

/// How far a kubeconfig is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Fetched from nsk or Rancher: data only (token or `*-data` fields);
    /// every server on `pin` when the Rancher URL is known.
    Fetched {
        /// Scheme, host and port every server must use.
        pin: Option<Pin>,
    },
    /// The user's own file: anything kubectl accepts except auth providers;
    /// exec plugins only when `allow_exec`.
    Local {
        /// `[safety] allow_exec_plugins`.
        allow_exec: bool,
    },
}

impl Trust {
    /// The trust of kubeconfigs in `kubeconfig_dir` under `config`'s source:
    /// fetched for nsk and Rancher, local for the directory source.
    pub fn of_dir(config: &Config) -> Self {
        match config.nsk.source {
            SourceKind::Directory => Self::local(config),
            SourceKind::Nsk | SourceKind::Rancher => Self::fetched(config),
        }
    }

    /// The trust of fetched kubeconfigs: pinned to `[nsk] rancher_url` when
    /// set. Without it (nsk reading its own profile) only the field rules
    /// apply.
    pub fn fetched(config: &Config) -> Self {
        Self::Fetched {
            pin: config.nsk.rancher_url.as_deref().and_then(Pin::parse),
        }
    }

    /// The trust of the user's own files.
    pub fn local(config: &Config) -> Self {
        Self::Local {
            allow_exec: config.safety.allow_exec_plugins,
        }
    }
}

/// The scheme, host and port all servers of a fetched kubeconfig must use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    url: String,
    scheme: String,
    host: String,
    port: u16,
}

impl Pin {
    /// From `[nsk] rancher_url`; `None` when it is not an http(s) URL.
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, host, port) = origin(url)?;
        Some(Self {
            url: url.trim_end_matches('/').to_string(),
            scheme,
            host,
            port,
        })
    }

    fn admits(&self, server: &str) -> bool {
        origin(server).is_some_and(|(s, h, p)| s == self.scheme && h == self.host && p == self.port)
    }
}

/// (scheme, lowercase host, port) of an http(s) URL.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    Some((scheme, host, uri.port_u16().unwrap_or(default_port)))
}

/// One field of a kubeconfig that may not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` is refused: {reason}")]
pub struct Refusal {
    /// Path of the field, e.g. `users[0].user.exec`.
    pub field: String,
    /// Why, and what to do.
    pub reason: String,
}

/// Why a kubeconfig is not used. Names the file (or the fetched cluster).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A field it carries is not allowed at this trust level.
    #[error("{origin}: {refusal}")]
    Refused {
        /// `kubeconfig PATH` or `the kubeconfig fetched for NAME`.
        origin: String,
        /// The field.
        refusal: Refusal,
    },
    /// The file belongs to another user.
    #[error(
        "kubeconfig {path} belongs to uid {owner}, not to nskd's user (uid {ours}): another user could make nskd connect anywhere; `chown {ours} {path}` or copy it into a file of your own"
    )]
    ForeignOwner {
        /// The file.
        path: String,
        /// Its owner.
        owner: u32,
        /// The daemon's uid.
        ours: u32,
    },
    /// Group or others may change the file.
    #[error(
        "kubeconfig {path} has mode {mode:04o}: group or other users can change it (and make nskd connect anywhere or run code); run `chmod go-w {path}`"
    )]
    Writable {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
}

impl TrustError {
    /// The refused field, when a field is the reason.
    pub fn field(&self) -> Option<&str> {
        match self {
            TrustError::Refused { refusal, .. } => Some(&refusal.field),
            _ => None,
        }
    }
}

const FETCHED_FIX: &str = "a kubeconfig fetched from nsk or Rancher must be data only (a token or *-data fields, a server on [nsk] rancher_url); nskd never runs, reads or sends what it names — ask the Rancher administrator why the cluster hands out such a kubeconfig";

/// Checks the owner and mode of a file as read: ours, and not writable by
/// group or others.
pub fn check_owner(path: &Path, uid: u32, mode: u32) -> Result<(), TrustError> {
    let ours = rustix::process::geteuid().as_raw();
    if uid != ours {
        return Err(TrustError::ForeignOwner {
            path: path.display().to_string(),
            owner: uid,
            ours,
        });
    }
    if mode & 0o022 != 0 {
        return Err(TrustError::Writable {
            path: path.display().to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Checks a parsed kubeconfig against `trust`; the first refused field wins.
pub fn check_config(config: &Kubeconfig, trust: &Trust) -> Result<(), Refusal> {
    check_scoped(config, trust, None)
}

/// Checks only what `context` uses (its user and cluster): one context of
/// the user's own file that needs a plugin does not take the others down.
pub fn check_context(config: &Kubeconfig, trust: &Trust, context: &str) -> Result<(), Refusal> {
    check_scoped(config, trust, Some(context))
}

fn check_scoped(config: &Kubeconfig, trust: &Trust, scope: Option<&str>) -> Result<(), Refusal> {
    let refuse = |field: String, reason: String| Err(Refusal { field, reason });
    let ctx = scope.map(|name| {
        config
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.clone())
            .unwrap_or_default()
    });
    let user_in_scope = |name: &str| ctx.as_ref().is_none_or(|c| c.user.as_deref() == Some(name));
    let cluster_in_scope = |name: &str| ctx.as_ref().is_none_or(|c| c.cluster == name);
    for (i, named) in config.auth_infos.iter().enumerate() {
        let Some(a) = named
            .auth_info
            .as_ref()
            .filter(|_| user_in_scope(&named.name))
        else {
            continue;
        };
        let at = |f: &str| format!("users[{i}].user.{f}");
        match trust {
            Trust::Fetched { .. } => {
                let fetched = |what: &str| format!("{what}; {FETCHED_FIX}");
                if a.exec.is_some() {
                    return refuse(at("exec"), fetched("an exec plugin runs a command"));
                }
                if a.auth_provider.is_some() {
                    return refuse(
                        at("auth-provider"),
                        fetched("an auth provider runs code or reads local files"),
                    );
                }
                if a.token_file.is_some() {
                    return refuse(
                        at("tokenFile"),
                        fetched("it would send a local file as the bearer token"),
                    );
                }
                if a.client_certificate.is_some() {
                    return refuse(
                        at("client-certificate"),
                        fetched("a file path (use client-certificate-data)"),
                    );
                }
                if a.client_key.is_some() {
                    return refuse(
                        at("client-key"),
                        fetched("a file path (use client-key-data)"),
                    );
                }
                if a.username.is_some() || a.password.is_some() {
                    let f = if a.username.is_some() {
                        "username"
                    } else {
                        "password"
                    };
                    return refuse(
                        at(f),
                        fetched("basic authentication is not used by Rancher"),
                    );
                }
            }
            Trust::Local { allow_exec } => {
                if a.auth_provider.is_some() {
                    return refuse(
                        at("auth-provider"),
                        "auth providers are deprecated and run code nskd cannot confine; use an exec credential plugin (with [safety] allow_exec_plugins = true), a token or a client certificate".into(),
                    );
                }
                if a.exec.is_some() && !allow_exec {
                    return refuse(
                        at("exec"),
                        "exec credential plugins are off; set [safety] allow_exec_plugins = true to let nskd run it (cleared environment, timeout), or use a token or client certificate".into(),
                    );
                }
                if let Some(exec) = &a.exec
                    && exec.command.as_deref().is_none_or(str::is_empty)
                {
                    return refuse(
                        at("exec.command"),
                        "the exec plugin names no command".into(),
                    );
                }
            }
        }
    }
    let Trust::Fetched { pin } = trust else {
        return Ok(());
    };
    // Over a whole file, the pin holds the current context's cluster (or
    // every cluster when none is current): the extra contexts of a Rancher
    // "authorized cluster endpoint" point straight at the cluster and are
    // refused one by one when loaded, without refusing the file.
    let current = config.current_context.as_deref().and_then(|name| {
        config
            .contexts
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
    });
    let pinned_here =
        |name: &str| scope.is_some() || current.as_deref().is_none_or(|cluster| cluster == name);
    for (i, named) in config.clusters.iter().enumerate() {
        let Some(c) = named
            .cluster
            .as_ref()
            .filter(|_| cluster_in_scope(&named.name))
        else {
            continue;
        };
        let at = |f: &str| format!("clusters[{i}].cluster.{f}");
        let fetched = |what: &str| format!("{what}; {FETCHED_FIX}");
        if c.proxy_url.is_some() {
            return refuse(
                at("proxy-url"),
                fetched("it would send the credential through another host"),
            );
        }
        if c.insecure_skip_tls_verify == Some(true) {
            return refuse(
                at("insecure-skip-tls-verify"),
                fetched(
                    "it turns off TLS verification, so anyone on the path could take the credential",
                ),
            );
        }
        if c.certificate_authority.is_some() {
            return refuse(
                at("certificate-authority"),
                fetched("a file path (use certificate-authority-data)"),
            );
        }
        let server = c.server.as_deref().unwrap_or_default();
        let Some((scheme, ..)) = origin(server) else {
            return refuse(
                at("server"),
                fetched(&format!("{server:?} is not an http(s) URL")),
            );
        };
        if pin.is_none() && scheme != "https" {
            return refuse(
                at("server"),
                fetched(&format!(
                    "{server} is plain http, which would send the credential unencrypted"
                )),
            );
        }
        if let Some(pin) = pin
            && pinned_here(&named.name)
            && !pin.admits(server)
        {
            return refuse(
                at("server"),
                fetched(&format!(
                    "{server} is not on {} (scheme, host and port must match [nsk] rancher_url)",
                    pin.url
                )),
            );
        }
    }
    Ok(())
}

/// Checks fetched kubeconfig text before it is stored, naming `cluster`.
pub fn check_fetched(cluster: &str, config: &Kubeconfig, trust: &Trust) -> Result<(), TrustError> {
    check_config(config, trust).map_err(|refusal| TrustError::Refused {
        origin: format!("the kubeconfig fetched for {cluster}"),
        refusal,
    })
}

/// Checks a kubeconfig file as read from disk: its owner and mode, and for
/// a fetched one every field (the user's own files are checked per context
/// with [`check_file_context`]).
pub fn check_file(
    file: &crate::kubeconfig::KubeconfigFile,
    trust: &Trust,
) -> Result<(), TrustError> {
    check_owner(&file.path, file.uid, file.mode)?;
    match trust {
        Trust::Fetched { .. } => {
            check_config(&file.config, trust).map_err(|refusal| TrustError::Refused {
                origin: format!("kubeconfig {}", file.path.display()),
                refusal,
            })
        }
        Trust::Local { .. } => Ok(()),
    }
}

/// Checks what one context of a file uses.
pub fn check_file_context(
    file: &crate::kubeconfig::KubeconfigFile,
    trust: &Trust,
    context: &str,
) -> Result<(), TrustError> {
    check_context(&file.config, trust, context).map_err(|refusal| TrustError::Refused {
        origin: format!("kubeconfig {}, context {context:?}", file.path.display()),
        refusal,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const RANCHER: &str = "https://rancher.example.com";

    fn fetched() -> Trust {
        Trust::Fetched {
            pin: Pin::parse(RANCHER),
        }
    }

    fn parse(text: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(text).unwrap()
    }

    /// A kubeconfig with `cluster` and `user` spliced in as flow maps.
    fn doc(cluster: &str, user: &str) -> Kubeconfig {
        parse(&format!(
            "clusters:\n- name: c\n  cluster: {{{cluster}}}\nusers:\n- name: u\n  user: {{{user}}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n"
        ))
    }

    const GOOD_CLUSTER: &str = "server: 'https://rancher.example.com/k8s/clusters/c-1', certificate-authority-data: 'Zm9v'";

    #[test]
    fn an_authorized_cluster_endpoint_context_is_refused_alone() {
        let c = parse(
            "apiVersion: v1\nkind: Config\ncurrent-context: c1\nclusters:\n- name: c1\n  cluster: {server: 'https://rancher.example.com/k8s/clusters/c-1'}\n- name: c1-node\n  cluster: {server: 'https://10.0.0.5:6443', certificate-authority-data: 'Zm9v'}\nusers:\n- name: u\n  user: {token: 'kubeconfig-u:abc'}\ncontexts:\n- name: c1\n  context: {cluster: c1, user: u}\n- name: c1-node\n  context: {cluster: c1-node, user: u}\n",
        );
        check_config(&c, &fetched()).unwrap();
        check_context(&c, &fetched(), "c1").unwrap();
        let e = check_context(&c, &fetched(), "c1-node").unwrap_err();
        assert_eq!(e.field, "clusters[1].cluster.server", "{e:?}");
        // Without a current context every cluster is pinned.
        let mut none = c.clone();
        none.current_context = None;
        assert!(check_config(&none, &fetched()).is_err());
    }

    #[test]
    fn data_only_kubeconfig_on_rancher_is_accepted() {
        let c = doc(GOOD_CLUSTER, "token: 'kubeconfig-u:abc'");
        check_config(&c, &fetched()).unwrap();
        let c = doc(
            "server: 'https://RANCHER.example.com:443/k8s/clusters/c-1'",
            "client-certificate-data: 'Zm9v', client-key-data: 'YmFy'",
        );
        check_config(&c, &fetched()).unwrap();
    }

    #[test]
    fn every_code_or_file_field_of_a_fetched_kubeconfig_is_named() {
        let cases = [
            (
                "exec: {command: /bin/sh, args: ['-c', 'touch /tmp/x']}",
                "users[0].user.exec",
            ),
            (
                "auth-provider: {name: oidc, config: {}}",
                "users[0].user.auth-provider",
            ),
            ("tokenFile: /etc/shadow", "users[0].user.tokenFile"),
            (
                "client-certificate: /home/u/.ssh/id_rsa",
                "users[0].user.client-certificate",
            ),
            (
                "client-key: /home/u/key.pem, client-certificate-data: Zm9v",
                "users[0].user.client-key",
            ),
            ("username: admin, password: x", "users[0].user.username"),
        ];
        for (user, field) in cases {
            let e = check_config(&doc(GOOD_CLUSTER, user), &fetched()).unwrap_err();
            assert_eq!(e.field, field, "{user}");
            assert!(e.reason.contains("data only"), "{e}");
        }
        let cases = [
            (
                "proxy-url: 'http://127.0.0.9:3128'",
                "clusters[0].cluster.proxy-url",
            ),
            (
                "insecure-skip-tls-verify: true",
                "clusters[0].cluster.insecure-skip-tls-verify",
            ),
            (
                "certificate-authority: /etc/ca.pem",
                "clusters[0].cluster.certificate-authority",
            ),
        ];
        for (extra, field) in cases {
            let cluster = format!("{GOOD_CLUSTER}, {extra}");
            let e = check_config(&doc(&cluster, "token: t"), &fetched()).unwrap_err();
            assert_eq!(e.field, field, "{extra}");
        }
        let off = doc(
            &format!("{GOOD_CLUSTER}, insecure-skip-tls-verify: false"),
            "token: t",
        );
        check_config(&off, &fetched()).unwrap();
    }

    #[test]
    fn fetched_servers_are_pinned_to_the_rancher_origin() {
        for server in [
            "https://evil.example.com/k8s/clusters/c-1",
            "https://rancher.example.com:8443/k8s/clusters/c-1",
            "http://rancher.example.com/k8s/clusters/c-1",
            "https://rancher.example.com.evil.net/k8s/clusters/c-1",
            "https://rancher.example.com@127.0.0.2/k8s/clusters/c-1",
            "unix:///var/run/x.sock",
            "not a url",
        ] {
            let c = doc(&format!("server: '{server}'"), "token: t");
            let e = check_config(&c, &fetched()).unwrap_err();
            assert_eq!(e.field, "clusters[0].cluster.server", "{server}");
        }
        // Without a Rancher URL (nsk on its own profile) only the field
        // rules apply, and the server must use TLS.
        let c = doc("server: 'https://10.1.2.3:6443'", "token: t");
        check_config(&c, &Trust::Fetched { pin: None }).unwrap();
        let c = doc("server: 'http://10.1.2.3:8080'", "token: t");
        assert_eq!(
            check_config(&c, &Trust::Fetched { pin: None })
                .unwrap_err()
                .field,
            "clusters[0].cluster.server"
        );
        let second = parse(
            "clusters:\n- {name: a, cluster: {server: 'https://rancher.example.com/k8s/clusters/a'}}\n- {name: b, cluster: {server: 'https://127.0.0.2:6443'}}\ncontexts:\n- {name: a, context: {cluster: a}}\n",
        );
        assert_eq!(
            check_config(&second, &fetched()).unwrap_err().field,
            "clusters[1].cluster.server"
        );
    }

    #[test]
    fn local_files_may_use_paths_but_exec_needs_the_opt_in_and_auth_providers_never() {
        let files = doc(
            "server: 'https://10.0.0.1:6443', certificate-authority: /etc/ca.pem, proxy-url: 'http://proxy:3128'",
            "client-certificate: /c.pem, client-key: /k.pem",
        );
        check_config(&files, &Trust::Local { allow_exec: false }).unwrap();
        let exec = doc(
            "server: 'https://10.0.0.1:6443'",
            "exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}",
        );
        let e = check_config(&exec, &Trust::Local { allow_exec: false }).unwrap_err();
        assert_eq!(e.field, "users[0].user.exec");
        assert!(e.reason.contains("allow_exec_plugins = true"), "{e}");
        check_config(&exec, &Trust::Local { allow_exec: true }).unwrap();
        let provider = doc(
            "server: 'https://10.0.0.1:6443'",
            "auth-provider: {name: gcp}",
        );
        for allow_exec in [false, true] {
            let e = check_config(&provider, &Trust::Local { allow_exec }).unwrap_err();
            assert_eq!(e.field, "users[0].user.auth-provider");
        }
    }

    #[test]
    fn a_context_is_checked_on_what_it_uses() {
        let c = parse(
            "clusters:\n- {name: a, cluster: {server: 'https://10.0.0.1'}}\nusers:\n- {name: plain, user: {token: t}}\n- {name: plug, user: {exec: {command: aws}}}\ncontexts:\n- {name: ok, context: {cluster: a, user: plain}}\n- {name: needs-exec, context: {cluster: a, user: plug}}\n",
        );
        let off = Trust::Local { allow_exec: false };
        check_context(&c, &off, "ok").unwrap();
        assert_eq!(
            check_context(&c, &off, "needs-exec").unwrap_err().field,
            "users[1].user.exec"
        );
        assert_eq!(
            check_config(&c, &off).unwrap_err().field,
            "users[1].user.exec"
        );
    }

    #[test]
    fn owner_and_mode_errors_name_the_file_and_the_fix() {
        let ours = rustix::process::geteuid().as_raw();
        let p = Path::new("/k/c1.yaml");
        check_owner(p, ours, 0o100600).unwrap();
        check_owner(p, ours, 0o100644).unwrap();
        let e = check_owner(p, ours, 0o100664).unwrap_err().to_string();
        assert!(
            e.contains("/k/c1.yaml") && e.contains("0664") && e.contains("chmod go-w /k/c1.yaml"),
            "{e}"
        );
        let e = check_owner(p, ours, 0o100602).unwrap_err().to_string();
        assert!(e.contains("0602"), "{e}");
        let e = check_owner(p, ours.wrapping_add(1), 0o100600)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/k/c1.yaml") && e.contains(&format!("uid {}", ours.wrapping_add(1))),
            "{e}"
        );
    }

    /// A user entry made of any subset of the dangerous fields.
    fn dangerous_user() -> impl Strategy<Value = (String, Vec<&'static str>)> {
        let fields = [
            ("exec", "exec: {command: /bin/true}"),
            ("auth-provider", "auth-provider: {name: x}"),
            ("tokenFile", "tokenFile: /t"),
            ("client-certificate", "client-certificate: /c"),
            ("client-key", "client-key: /k"),
            ("username", "username: u"),
        ];
        proptest::sample::subsequence(fields.to_vec(), 0..=fields.len()).prop_map(|picked| {
            let text = std::iter::once("token: t")
                .chain(picked.iter().map(|(_, y)| *y))
                .collect::<Vec<_>>()
                .join(", ");
            (text, picked.iter().map(|(f, _)| *f).collect())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A fetched kubeconfig passes exactly when it carries none of the
        /// dangerous fields; a refusal always names one it carries.
        #[test]
        fn fetched_refuses_exactly_the_dangerous_fields((user, picked) in dangerous_user()) {
            let c = doc(GOOD_CLUSTER, &user);
            match check_config(&c, &fetched()) {
                Ok(()) => prop_assert!(picked.is_empty()),
                Err(e) => {
                    let field = e.field.strip_prefix("users[0].user.").unwrap();
                    prop_assert!(picked.contains(&field), "{} not in {:?}", field, picked);
                }
            }
        }

        /// Any server whose origin differs from Rancher's is refused.
        #[test]
        fn any_other_origin_is_refused(host in "[a-z]{1,8}\\.[a-z]{2,4}", port in 1u16..) {
            let server = format!("https://{host}:{port}/k8s/clusters/c-1");
            let same = host == "rancher.example.com" && port == 443;
            let c = doc(&format!("server: '{server}'"), "token: t");
            prop_assert_eq!(check_config(&c, &fetched()).is_ok(), same);
        }
    }
}
