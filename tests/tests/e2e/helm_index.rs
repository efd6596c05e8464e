//! helm_list from memory (issue 17's benchmark line): the release records
//! of every cluster are indexed by a metadata watch, so the second
//! `helm_list` comes from nskd's cache, follows what Helm itself does
//! within seconds, and equals the live answer field by field. A caller
//! the API server refuses gets its refusal, never a cached answer.

use std::time::{Duration, Instant};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    endpoints::{http_get, metric_sum, refused_port},
    helm::Helm,
    mcp::{FROM_CACHE, Shim, is_cached},
    rig::SHARED,
};
use serde_json::{Value, json};

use crate::{helm::Scratch, rig_or_skip};

/// The answer's JSON (the cache note, when there is one, is its own part).
fn rows(text: &str) -> Vec<Value> {
    let json = text.split(&format!("\n{FROM_CACHE}")).next().unwrap_or("");
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    // A fleet answer wraps each row: {"cluster": .., "object": {..}}.
    let mut rows: Vec<Value> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| match r.get("object") {
            Some(o) => {
                let mut o = o.clone();
                o["cluster"] = r["cluster"].clone();
                o
            }
            None => r,
        })
        .collect();
    rows.sort_by_key(|r| (r["cluster"].to_string(), r["name"].to_string()));
    rows
}

/// The cached answer to `args`, once it satisfies `done` (within `wait`).
async fn cached_until(
    shim: &Shim,
    args: &Value,
    wait: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let text = shim.ok("helm_list", args.clone()).await;
        if is_cached(&text) && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no cached helm_list within {wait:?}; last answer: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The live answer to `args` (it must not say it came from the cache).
async fn live(shim: &Shim, args: &Value) -> String {
    let mut args = args.clone();
    args["live"] = json!(true);
    let text = shim.ok("helm_list", args).await;
    assert!(!is_cached(&text), "live: true came from the cache: {text}");
    text
}

/// The row of release `name` on `cluster`, if any.
fn row<'a>(rows: &'a [Value], cluster: &str, name: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["cluster"] == cluster && r["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_helm_list_comes_from_the_release_index_and_follows_helm() {
    let Some(rig) = rig_or_skip() else { return };
    let Some(helm) = Helm::get() else { return };
    let scratch = Scratch::new(rig, "idx", &SHARED);
    let ns = scratch.namespace.as_str();
    let (v1, v2) = (helm.chart("0.1.0", "1.0.0"), helm.chart("0.2.0", "2.0.0"));
    let (v1, v2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    let (sv5, dfw1) = (rig.cluster("c1-sv5"), rig.cluster("c1-dfw1"));
    helm.ok(sv5, &["install", "idx", v1, "-n", ns]);
    helm.ok(dfw1, &["install", "idx", v1, "-n", ns]);
    helm.ok(dfw1, &["install", "other", v2, "-n", ns]);

    let port = refused_port();
    let spec = DaemonSpec {
        server: format!("port = {port}"),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_nskd_kubeconfigs(dir, &SHARED));
    let shim = Shim::start(&d.socket).await;
    let args = json!({"clusters": SHARED, "namespace": ns, "output": "json"});

    // The first call lists live and starts the indexes; a later one is
    // answered from them, and equals the live answer field by field.
    let first = shim.ok("helm_list", args.clone()).await;
    assert!(
        !is_cached(&first),
        "the first helm_list cannot be cached: {first}"
    );
    let cached = cached_until(&shim, &args, Duration::from_secs(20), "index sync", |_| {
        true
    })
    .await;
    let want = rows(&live(&shim, &args).await);
    assert_eq!(want.len(), 3, "{want:?}");
    assert_eq!(rows(&cached), want, "cached vs live");
    assert_eq!(rows(&first), want, "first (live) vs live");

    // An upgrade by Helm shows in the cached answer within seconds.
    helm.ok(sv5, &["upgrade", "idx", v2, "-n", ns]);
    let upgraded = cached_until(&shim, &args, Duration::from_secs(10), "upgrade", |t| {
        row(&rows(t), "c1-sv5", "idx").is_some_and(|r| r["revision"] == "2")
    })
    .await;
    let got = rows(&upgraded);
    let r = row(&got, "c1-sv5", "idx").expect("upgraded row");
    assert_eq!(r["chart"], "nskd-demo-0.2.0", "{r}");
    assert_eq!(r["app_version"], "2.0.0", "{r}");
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(
        got,
        rows(&live(&shim, &args).await),
        "cached vs live after the upgrade"
    );

    // An uninstall by Helm too: its release leaves the cached answer.
    helm.ok(dfw1, &["uninstall", "other", "-n", ns]);
    let uninstalled = cached_until(&shim, &args, Duration::from_secs(10), "uninstall", |t| {
        row(&rows(t), "c1-dfw1", "other").is_none()
    })
    .await;
    let got = rows(&uninstalled);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got,
        rows(&live(&shim, &args).await),
        "cached vs live after the uninstall"
    );

    // The fleet summary and the table come from the index as well, and
    // say what the live ones say.
    for extra in [
        json!({"summary": true}),
        json!({"output": "table"}),
        json!({"status": "all"}),
    ] {
        let mut a = json!({"clusters": SHARED, "namespace": ns});
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        let cached = cached_until(&shim, &a, Duration::from_secs(10), "summary", |_| true).await;
        let body = cached
            .split(&format!("\n{FROM_CACHE}"))
            .next()
            .unwrap()
            .trim_end();
        assert_eq!(body, live(&shim, &a).await.trim_end(), "{a}");
    }
    // One cluster and one release name are served from the index too.
    let one = json!({"cluster": "c1-sv5", "namespace": ns, "name": "idx", "output": "json"});
    let got = rows(&cached_until(&shim, &one, Duration::from_secs(10), "one", |_| true).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["revision"], "2", "{got:?}");

    // The hits are counted like the watch caches' ones, and /readyz
    // shows the indexes in sync.
    let hits = metric_sum(
        port,
        "nskd_cache_hits_total",
        &["resource=\"helm-releases\""],
    );
    assert!(hits >= 6.0, "{}", http_get(port, "/metrics").1);
    let (_, ready) = http_get(port, "/readyz");
    assert!(ready.contains("6 metadata indexes (6 in sync)"), "{ready}");
    drop(scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_secret_rights_gets_the_refusal_not_an_index() {
    let Some(rig) = rig_or_skip() else { return };
    let port = refused_port();
    let spec = DaemonSpec {
        server: format!("port = {port}"),
        sections: "[health]\nprobe_interval = \"1h\"\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        let noperm = &rig.cluster("c1-sv5").kubeconfig_noperm;
        std::fs::copy(noperm, dir.join("c1-sv5.yaml")).expect("copy kubeconfig");
    });
    let shim = Shim::start(&d.socket).await;
    for _ in 0..5 {
        let a = shim.err("helm_list", json!({})).await;
        assert!(a.contains("403"), "{a}");
        assert!(!is_cached(&a), "{a}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The index gave up at the refusal (and says why) instead of retrying.
    let refused = metric_sum(
        port,
        "nskd_cache_misses_total",
        &["resource=\"helm-releases\"", "reason=\"refused\""],
    );
    assert!(refused >= 1.0, "{}", http_get(port, "/metrics").1);
    let (_, ready) = http_get(port, "/readyz");
    assert!(ready.contains("2 metadata indexes (0 in sync)"), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonated_callers_are_answered_live_never_from_the_index() {
    use crate::{
        http_shim::initialize,
        team::{start_oidc_shim, team_spec},
    };
    // Every text item of the answer: the cache note is an item of its own.
    let call = |port: u16, session: &str, token: Option<&str>, tool: &str, args: Value| {
        let req = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": tool, "arguments": args}});
        let (status, _, message) = nskd_e2e::mcp_http::post(port, Some(session), token, &req);
        assert_eq!(status, 200, "{tool}: {message:?}");
        let message = message.unwrap_or_else(|| panic!("{tool}: no JSON-RPC answer"));
        let parts = message["result"]["content"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        assert!(!texts.is_empty(), "{message}");
        texts.join("\n")
    };
    let Some(rig) = rig_or_skip() else { return };
    let Some(helm) = Helm::get() else { return };
    let sv5 = rig.cluster("c1-sv5");
    nskd_e2e::oidc::grant_team_rbac(sv5);
    let scratch = Scratch::new(rig, "imp", &["c1-sv5"]);
    let ns = scratch.namespace.clone();
    let chart = helm.chart("0.1.0", "1.0.0");
    helm.ok(sv5, &["install", "imp", chart.to_str().unwrap(), "-n", &ns]);
    let provider = nskd_e2e::oidc::Provider::start();
    let d = Daemon::start(&team_spec(&provider, ""), |dir| {
        rig.write_nskd_kubeconfigs(dir, &["c1-sv5"])
    });
    let port = refused_port();
    let _shim = start_oidc_shim(&d, port);

    // The daemon's own session fills the index.
    let own = Shim::start(&d.socket).await;
    let args = json!({"namespace": ns});
    let warm = cached_until(&own, &args, Duration::from_secs(20), "warm", |t| {
        t.contains("imp")
    })
    .await;
    assert!(warm.contains("nskd-demo-0.1.0"), "{warm}");

    let (alice, carol) = (
        provider.token("alice@example.com", &["readers"]),
        provider.token("carol@example.com", &["nobody"]),
    );
    tokio::task::block_in_place(|| {
        let (a, c) = (
            initialize(port, Some(&alice)),
            initialize(port, Some(&carol)),
        );
        // carol may not list Secrets: the cluster says so, the index
        // (listed as the daemon) must not answer her.
        let text = call(port, &c, Some(&carol), "helm_list", args.clone());
        assert!(
            text.contains("carol@example.com") && text.contains("forbidden"),
            "the daemon's index must not answer carol: {text}"
        );
        assert!(!is_cached(&text), "{text}");
        // alice may: a live answer, as herself.
        for _ in 0..3 {
            let text = call(port, &a, Some(&alice), "helm_list", args.clone());
            assert!(
                text.contains("imp") && text.contains("nskd-demo-0.1.0"),
                "{text}"
            );
            assert!(!is_cached(&text), "alice is answered live: {text}");
        }
    });
    // The daemon's own session still answers from the index.
    assert!(is_cached(&own.ok("helm_list", args).await));
    drop(scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_dropped_when_idle_and_when_the_kubeconfig_changes() {
    let Some(rig) = rig_or_skip() else { return };
    let Some(helm) = Helm::get() else { return };
    let scratch = Scratch::new(rig, "life", &["c1-sv5", "c1-dfw1"]);
    let ns = scratch.namespace.clone();
    let chart = helm.chart("0.1.0", "1.0.0");
    let chart = chart.to_str().unwrap();
    helm.ok(rig.cluster("c1-sv5"), &["install", "one", chart, "-n", &ns]);
    helm.ok(
        rig.cluster("c1-dfw1"),
        &["install", "two", chart, "-n", &ns],
    );
    let port = refused_port();
    let spec = DaemonSpec {
        server: format!("port = {port}"),
        sections: "[health]\nprobe_interval = \"1h\"\n[cache]\nidle_timeout = \"2s\"\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-sv5"]));
    let shim = Shim::start(&d.socket).await;
    let args = json!({"namespace": ns});
    let wait = Duration::from_secs(20);
    let text = cached_until(&shim, &args, wait, "first", |_| true).await;
    assert!(text.contains("one") && !text.contains("two"), "{text}");
    let (_, ready) = http_get(port, "/readyz");
    assert!(ready.contains("2 metadata indexes (2 in sync)"), "{ready}");

    // Unused for longer than idle_timeout: dropped, the next call is live.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, ready) = http_get(port, "/readyz");
    assert!(ready.contains("0 metadata indexes"), "{ready}");
    let after_idle = shim.ok("helm_list", args.clone()).await;
    assert!(!is_cached(&after_idle), "{after_idle}");
    cached_until(&shim, &args, wait, "after idle", |_| true).await;

    // The kubeconfig now points at another API server: nothing indexed
    // through the old one answers again.
    let kubeconfig = d.kubeconfig_dir.join("c1-sv5.yaml");
    let other = std::fs::read_to_string(&rig.cluster("c1-dfw1").kubeconfig).expect("read");
    std::fs::write(&kubeconfig, other.replace("c1-dfw1", "c1-sv5")).expect("write");
    let started = Instant::now();
    loop {
        let text = shim.ok("helm_list", args.clone()).await;
        if text.contains("two") {
            assert!(!text.contains("one"), "{text}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still answering from the old API server: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = cached_until(&shim, &args, wait, "moved", |_| true).await;
    assert!(moved.contains("two") && !moved.contains("one"), "{moved}");
    drop(scratch);
}
