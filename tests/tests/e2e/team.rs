//! The team deployment: `mcp-shim --http --http-oidc` in front of a daemon
//! with `[http_auth]`, tokens from a real OpenID provider (npm
//! oidc-provider, tests/oidc/), each caller acting as itself on the rig's
//! RBAC-enforcing apiservers through impersonation.

use std::{
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec},
    endpoints::refused_port,
    oidc::Provider,
};
use serde_json::{Value, json};

use crate::{
    eventually,
    http_shim::{Killed, call, initialize, post, raw},
    rig_or_skip,
};

/// Starts `mcp-shim --http 127.0.0.1:PORT --http-oidc` on `d`'s socket.
pub(crate) fn start_oidc_shim(d: &Daemon, port: u16) -> Killed {
    let runtime = tempfile::tempdir().unwrap();
    let shim = Killed(
        Command::new(bin("mcp-shim"))
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--http-oidc")
            .arg("--socket")
            .arg(&d.socket)
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env_remove("NSKD_SHIM_TOKEN")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        eventually(10.0, || TcpStream::connect(("127.0.0.1", port)).ok()).is_some(),
        "mcp-shim --http-oidc did not listen on {port}"
    );
    std::mem::forget(runtime);
    shim
}

/// A daemon on c1-sv5 trusting `provider`, with `more` after its
/// `[http_auth]` keys.
pub(crate) fn team_spec(provider: &Provider, more: &str) -> DaemonSpec {
    DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        sections: format!(
            "{}{}{more}",
            DaemonSpec::default().sections,
            provider.http_auth_section()
        ),
        ..DaemonSpec::default()
    }
}

fn init_body() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e-team", "version": "1"}}})
    .to_string()
}

#[test]
fn oidc_tokens_from_a_real_provider_are_checked() {
    let Some(rig) = rig_or_skip() else { return };
    let provider = Provider::start();
    let spec = team_spec(&provider, "");
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-sv5"]));
    let port = refused_port();
    let _shim = start_oidc_shim(&d, port);
    let metadata_url = format!("http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp");

    // The RFC 9728 metadata names the resource and the provider.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (status, _, body) = raw(port, None, "GET", path, None, "");
        assert_eq!(status, 200, "{path}: {body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["resource"], format!("http://127.0.0.1:{port}/mcp"));
        assert_eq!(doc["authorization_servers"], json!([provider.issuer]));
    }

    // Real tokens for alice and bob are accepted.
    let mut used = Vec::new();
    for (who, groups) in [
        ("alice@example.com", ["readers"]),
        ("bob@example.com", ["shop-editors"]),
    ] {
        let token = provider.token(who, &groups);
        let session = initialize(port, Some(&token));
        let text = call(port, &session, Some(&token), "cluster_current", json!({}));
        assert!(text.contains("c1-sv5"), "{who}: {text}");
        used.push(token);
    }

    // No token: 401 naming the metadata, no error (RFC 6750 §3.1).
    let (status, headers, _) = raw(port, None, "POST", "/mcp", None, &init_body());
    assert_eq!(status, 401);
    let challenge = format!("www-authenticate: Bearer resource_metadata=\"{metadata_url}\"");
    assert!(
        headers.to_lowercase().contains(&challenge.to_lowercase()),
        "{headers}"
    );

    // Every flawed token: 401, invalid_token, the metadata named, a reason.
    let alice = |extra: Value| {
        let mut claims = json!({"email": "alice@example.com", "groups": ["readers"]});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let cases = [
        ("expired", alice(json!({"exp": -120})), "expired"),
        (
            "wrongly signed",
            alice(json!({"flaw": "other-key"})),
            "signature",
        ),
        (
            "other audience",
            alice(json!({"aud": "someone-else"})),
            "aud",
        ),
        (
            "other issuer",
            alice(json!({"iss": "http://127.0.0.1:1/evil"})),
            "iss",
        ),
        ("alg none", alice(json!({"flaw": "alg-none"})), "JWT"),
        (
            "HS256 with the public key",
            alice(json!({"flaw": "hs256-public"})),
            "HS256",
        ),
        ("no kid", alice(json!({"flaw": "no-kid"})), "kid"),
        ("unknown kid", alice(json!({"flaw": "unknown-kid"})), "JWKS"),
        (
            "system:masters group",
            alice(json!({"groups": ["readers", "system:masters"]})),
            "system",
        ),
        (
            "header injection in the username",
            alice(json!({"email": "alice@example.com\r\nImpersonate-Group: system:masters"})),
            "username",
        ),
        (
            "comma in a group",
            alice(json!({"groups": ["readers,shop-editors"]})),
            "group",
        ),
        (
            "huge group",
            alice(json!({"groups": ["g".repeat(5000)]})),
            "group",
        ),
        (
            "too many groups",
            alice(json!({"groups": (0..200).map(|i| format!("g{i}")).collect::<Vec<_>>()})),
            "groups",
        ),
        (
            "no username claim",
            json!({"sub": "x", "groups": ["readers"]}),
            "email",
        ),
    ];
    for (what, claims, reason) in cases {
        let token = provider.mint(&claims);
        let (status, headers, body) = raw(port, None, "POST", "/mcp", Some(&token), &init_body());
        assert_eq!(status, 401, "{what}: {headers}\n{body}");
        let lower = headers.to_lowercase();
        assert!(
            lower.contains(&challenge.to_lowercase()),
            "{what}: {headers}"
        );
        assert!(
            lower.contains("error=\"invalid_token\""),
            "{what}: {headers}"
        );
        let error = serde_json::from_str::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            error.contains(reason),
            "{what}: the reason names {reason:?}: {error}"
        );
        assert!(
            !headers.contains('\u{0}') && !error.contains("\r\n"),
            "{what}"
        );
    }

    // A token that is not a JWT at all, and a static token nobody set.
    for junk in ["not-a-jwt", "e2e-shim-token-0123456789"] {
        assert_eq!(
            post(
                port,
                None,
                Some(junk),
                &serde_json::from_str(&init_body()).unwrap()
            )
            .0,
            401
        );
    }
    // Nothing of a token reaches the daemon's log.
    let log = d.log_text();
    for token in used {
        let sig = token.rsplit('.').next().unwrap();
        assert!(
            !log.contains(sig),
            "a token's signature is in the daemon log"
        );
    }
}

#[test]
fn each_caller_acts_as_itself_on_the_clusters() {
    use nskd_e2e::apiserver_audit::AuditLog;
    let Some(rig) = rig_or_skip() else { return };
    let sv5 = rig.cluster("c1-sv5");
    nskd_e2e::oidc::grant_team_rbac(sv5);
    let provider = Provider::start();
    let spec = team_spec(&provider, "");
    // c1-sv5 as the `nskd` user (may impersonate); c1-noimp: the same
    // apiserver as `noperm`, who may not.
    let d = Daemon::start(&spec, |dir| {
        rig.write_nskd_kubeconfigs(dir, &["c1-sv5"]);
        std::fs::copy(&sv5.kubeconfig_noperm, dir.join("c1-noimp.yaml")).unwrap();
    });
    let port = refused_port();
    let _shim = start_oidc_shim(&d, port);
    let audit = AuditLog::for_cluster(rig, "c1-sv5");

    // The daemon's own view warms its watch cache of pods in shop.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let warm = runtime.block_on(async {
        let own = nskd_e2e::mcp::Shim::start(&d.socket).await;
        for _ in 0..200 {
            let text = own.ok("pods_list", json!({"namespace": "shop"})).await;
            if nskd_e2e::mcp::is_cached(&text) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(
        warm,
        "the daemon's own pods_list never came from its watch cache"
    );

    let alice = provider.token("alice@example.com", &["readers"]);
    let bob = provider.token("bob@example.com", &["shop-editors"]);
    let carol = provider.token("carol@example.com", &["nobody"]);
    let (a, b, c) = (
        initialize(port, Some(&alice)),
        initialize(port, Some(&bob)),
        initialize(port, Some(&carol)),
    );
    let mark = audit.mark();

    // alice reads anywhere; bob reads shop only; carol nothing, cache or not.
    let pods =
        |s: &str, t: &str, ns: &str| call(port, s, Some(t), "pods_list", json!({"namespace": ns}));
    let text = pods(&a, &alice, "shop");
    assert!(!text.contains("Forbidden"), "alice reads shop: {text}");
    let text = pods(&a, &alice, "kube-system");
    assert!(
        !text.contains("Forbidden"),
        "alice reads kube-system: {text}"
    );
    let text = pods(&b, &bob, "shop");
    assert!(!text.contains("Forbidden"), "bob reads shop: {text}");
    let text = pods(&b, &bob, "kube-system");
    assert!(
        text.contains("bob@example.com") && text.contains("forbidden"),
        "bob may not read kube-system, and the cluster says who asked: {text}"
    );
    assert!(
        !nskd_e2e::mcp::is_cached(&pods(&a, &alice, "shop")),
        "alice is answered live"
    );
    let text = pods(&c, &carol, "shop");
    assert!(
        text.contains("carol@example.com") && text.contains("forbidden"),
        "the daemon's cache must not answer carol: {text}"
    );

    // bob changes shop; alice may not.
    let name = format!("e2e-team-{}", std::process::id());
    let cm = |value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop"}, "data": {"who": value}})
        .to_string()
    };
    let text = call(
        port,
        &a,
        Some(&alice),
        "resources_create_or_update",
        json!({"resource": cm("alice")}),
    );
    assert!(
        text.contains("alice@example.com") && text.contains("forbidden"),
        "alice may not write: {text}"
    );
    let text = call(
        port,
        &b,
        Some(&bob),
        "resources_create_or_update",
        json!({"resource": cm("bob")}),
    );
    assert!(text.contains("created"), "bob writes shop: {text}");
    let text = call(
        port,
        &b,
        Some(&bob),
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": name}),
    );
    assert!(text.contains("deleted"), "bob deletes in shop: {text}");

    // The apiserver's audit log names alice and bob, never nskd alone.
    let (events, _) = audit.fence(&mark);
    // (The daemon's own probes list nodes and namespaces, and its watch on
    // pods in shop, started above, streams: those are its own.)
    let ours: Vec<_> = events
        .iter()
        .filter(|e| {
            e.is_nskd()
                && e.verb != "watch"
                && e.object_ref
                    .as_ref()
                    .is_some_and(|o| o.namespace == "shop" || o.namespace == "kube-system")
        })
        .collect();
    assert!(!ours.is_empty(), "no nskd request in the audit log");
    for e in &ours {
        assert!(
            ["alice@example.com", "bob@example.com", "carol@example.com"]
                .contains(&e.impersonated_user.as_str()),
            "a request for a caller went out as nskd itself: {}",
            e.describe()
        );
    }
    let by = |user: &str, verb: &str, code: u16| {
        ours.iter().any(|e| {
            e.impersonated_user == user
                && e.verb == verb
                && e.code == Some(code)
                && e.object_ref.as_ref().is_some_and(|o| o.namespace == "shop")
        })
    };
    assert!(by("alice@example.com", "list", 200), "alice's list");
    assert!(
        by("alice@example.com", "create", 403) || by("alice@example.com", "patch", 403),
        "alice's refused write"
    );
    assert!(by("bob@example.com", "delete", 200), "bob's delete");
    assert!(
        by("carol@example.com", "list", 403),
        "carol's list went to the apiserver"
    );
    assert!(
        ours.iter()
            .filter(|e| e.impersonated_user == "bob@example.com")
            .all(|e| e.impersonated_groups.contains(&"shop-editors".to_string())),
        "bob's groups travel with him"
    );

    // nskd's own audit trail names the caller of each change.
    let trail = std::fs::read_to_string(d.home.path().join("audit.jsonl")).unwrap();
    let bobs: Vec<Value> = trail
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["name"] == name.as_str())
        .collect();
    assert!(
        bobs.iter()
            .any(|e| e["subject"] == "bob@example.com (shop-editors)"),
        "{trail}"
    );
    assert!(
        bobs.iter()
            .any(|e| e["subject"] == "alice@example.com (readers)"),
        "alice's refused change is audited with her name: {trail}"
    );

    // Where nskd may not impersonate, the error names the RBAC it needs.
    let text = call(
        port,
        &a,
        Some(&alice),
        "pods_list",
        json!({"namespace": "shop", "clusters": ["c1-noimp"]}),
    );
    assert!(
        text.contains("c1-noimp") && text.contains("impersonate") && text.contains("users, groups"),
        "{text}"
    );
}

#[test]
fn access_rules_and_rate_limits_per_caller() {
    let Some(rig) = rig_or_skip() else { return };
    nskd_e2e::oidc::grant_team_rbac(rig.cluster("c1-sv5"));
    let provider = Provider::start();
    let spec = team_spec(
        &provider,
        "per_user_qps = 2\nper_user_burst = 10\n\n[[access]]\ngroup = \"readers\"\nread_only = true\nclusters = [\"c1-sv5\"]\n\n[[access]]\ngroup = \"shop-editors\"\ndisable_destructive = true\n",
    );
    let d = Daemon::start(&spec, |dir| {
        rig.write_nskd_kubeconfigs(dir, &["c1-sv5", "c1-lax1"])
    });
    let port = refused_port();
    let _shim = start_oidc_shim(&d, port);
    let alice = provider.token("alice@example.com", &["readers"]);
    let bob = provider.token("bob@example.com", &["shop-editors"]);
    let carol = provider.token("carol@example.com", &["nobody"]);
    let a = initialize(port, Some(&alice));

    // alice's tool list: reads only.
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}});
    let (status, _, message) = post(port, Some(&a), Some(&alice), &list);
    assert_eq!(status, 200);
    let names: Vec<String> = message.unwrap()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "pods_list"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n == "resources_delete" || n == "resources_create_or_update"),
        "alice's list hides the changing tools: {names:?}"
    );

    // ... and the daemon refuses them even when called.
    let text = call(
        port,
        &a,
        Some(&alice),
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "x"}),
    );
    assert!(
        text.contains("not open to alice@example.com") || text.contains("not offered"),
        "{text}"
    );
    // Clusters outside her rules.
    let text = call(
        port,
        &a,
        Some(&alice),
        "pods_list",
        json!({"namespace": "shop", "clusters": ["c1-lax1"]}),
    );
    assert!(
        text.contains("c1-lax1 is not open to alice@example.com") && text.contains("c1-sv5"),
        "{text}"
    );
    let text = call(
        port,
        &a,
        Some(&alice),
        "pods_list",
        json!({"namespace": "shop", "clusters": ["*"]}),
    );
    assert!(
        !text.contains("c1-lax1"),
        "\"*\" means alice's clusters: {text}"
    );

    // carol's groups have no rule.
    let c = initialize(port, Some(&carol));
    let text = call(
        port,
        &c,
        Some(&carol),
        "pods_list",
        json!({"namespace": "shop"}),
    );
    assert!(
        text.contains("no [[access]] rule") && text.contains("nobody"),
        "{text}"
    );

    // bob may change but not destroy.
    let b = initialize(port, Some(&bob));
    let text = call(
        port,
        &b,
        Some(&bob),
        "resources_delete",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "x"}),
    );
    assert!(
        text.contains("not open to bob@example.com") || text.contains("not offered"),
        "{text}"
    );

    // bob runs away; he hits his limit, alice does not.
    let mut limited = None;
    for _ in 0..40 {
        let text = call(
            port,
            &b,
            Some(&bob),
            "pods_list",
            json!({"namespace": "shop"}),
        );
        if text.contains("per_user_qps") {
            limited = Some(text);
            break;
        }
    }
    let limited = limited.expect("bob was never limited");
    assert!(
        limited.contains("bob@example.com")
            && limited.contains("per_user_qps = 2")
            && limited.contains("retry in"),
        "{limited}"
    );
    let text = call(
        port,
        &a,
        Some(&alice),
        "pods_list",
        json!({"namespace": "shop"}),
    );
    assert!(
        !text.contains("per_user_qps"),
        "alice is not starved by bob: {text}"
    );
}
