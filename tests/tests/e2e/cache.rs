//! Watch caches on real API servers: exact per cluster, fresh within the
//! watch delay, read exactly like live answers, live while the watch is
//! down, Secret values masked as in live answers.

use std::time::{Duration, Instant};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    endpoints::{http_get, refused_port},
    kubeapi,
    mcp::{FROM_CACHE, Shim, is_cached},
    rig::{RigCluster, SHARED},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

/// The answer without the cache line.
fn without_note(text: &str) -> String {
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(FROM_CACHE))
        .map(|l| format!("{l}\n"))
        .collect();
    kept.trim_end().to_string()
}

/// Calls until the answer comes from the cache (the first call starts the
/// watch and is answered live); panics after 15 s.
async fn until_cached(shim: &Shim, tool: &str, args: Value) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = shim.ok(tool, args.clone()).await;
        if is_cached(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{tool} {args} never came from the cache: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls (each answer must come from the cache) until `done` holds; returns
/// how long it took. Panics after `secs`.
async fn cached_until(
    shim: &Shim,
    tool: &str,
    args: Value,
    secs: u64,
    done: impl Fn(&str) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let text = shim.ok(tool, args.clone()).await;
        assert!(is_cached(&text), "{tool} {args} left the cache: {text}");
        if done(&text) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{tool} {args}: change not seen within {secs} s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

/// Objects a test created on the API servers, deleted when it ends (also
/// when it fails), so shared clusters keep their seeded counts.
struct Cleanup<'a>(Vec<(&'a RigCluster, String)>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for (c, path) in &self.0 {
            // Best effort: the test may have deleted it already.
            let _ = kubeapi::try_call(c, "DELETE", &format!("{path}?gracePeriodSeconds=0"), None);
        }
    }
}

/// Creates `kind` (`pods` or `configmaps`) `name` labelled `owner=<owner>`
/// in `ns`; returns its path for [`Cleanup`].
fn create(c: &RigCluster, ns: &str, plural: &str, name: &str, owner: &str) -> String {
    let metadata = json!({"name": name, "labels": {"owner": owner}});
    let object = match plural {
        "pods" => json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
        }),
        _ => json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {"cluster": c.name},
        }),
    };
    let collection = format!("/api/v1/namespaces/{ns}/{plural}");
    kubeapi::call(c, "POST", &collection, Some(&object.to_string()));
    format!("{collection}/{name}")
}

/// A counter of the daemon's /metrics, summed over series whose labels
/// contain every one of `labels`.
fn daemon_metric(port: u16, name: &str, labels: &[&str]) -> f64 {
    nskd_e2e::endpoints::metric_sum(port, name, labels)
}

/// A daemon serving `clusters` with `sections` of config and its metrics
/// on a port, and one session.
async fn start_observed(
    rig: &nskd_e2e::rig::Rig,
    sections: &str,
    clusters: &[&str],
) -> (Daemon, Shim, u16) {
    let port = refused_port();
    let spec = DaemonSpec {
        server: format!("port = {port}"),
        sections: sections.into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, clusters));
    let shim = Shim::start(&d.socket).await;
    (d, shim, port)
}

/// The metrics say a cache of `resource` gave up (refused to cache).
fn assert_refused(port: u16, resource: &str) {
    let resource = format!("resource=\"{resource}\"");
    assert!(
        daemon_metric(
            port,
            "nskd_cache_misses_total",
            &[&resource, "reason=\"refused\""]
        ) >= 1.0,
        "{}",
        http_get(port, "/metrics").1
    );
}

/// `tool` keeps being answered live (a cache for it gave up), and the
/// metrics say why.
async fn served_live_by_refusal(shim: &Shim, port: u16, tool: &str, args: Value, resource: &str) {
    for _ in 0..5 {
        let text = shim.ok(tool, args.clone()).await;
        assert!(!is_cached(&text), "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_refused(port, resource);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_never_cross_clusters() {
    let Some(rig) = rig_or_skip() else { return };
    // One ConfigMap per cluster, same kind, namespace and label, each
    // named after its cluster.
    let owner = unique("wc");
    let mut cleanup = Cleanup(Vec::new());
    for name in SHARED {
        let c = rig.cluster(name);
        let path = create(
            c,
            "default",
            "configmaps",
            &format!("{owner}-{name}"),
            &owner,
        );
        cleanup.0.push((c, path));
    }
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &SHARED)
    });
    let a = Shim::start(&d.socket).await;
    let b = Shim::start(&d.socket).await;
    a.ok("cluster_use", json!({"cluster": "c1-sv5"})).await;
    b.ok("cluster_use", json!({"cluster": "c1-dfw1"})).await;
    let list = |cluster: Option<&str>| {
        let mut args = json!({"kind": "ConfigMap", "namespace": "default", "labelSelector": format!("owner={owner}")});
        if let Some(c) = cluster {
            args["cluster"] = json!(c);
        }
        args
    };
    for name in SHARED {
        until_cached(&a, "resources_list", list(Some(name))).await;
    }
    // Interleaved sessions, same kind on every cluster: each answer holds
    // its own cluster's object and no other.
    for round in 0..10 {
        for (shim, cluster) in [
            (&a, "c1-sv5"),
            (&b, "c1-dfw1"),
            (&a, "c1-lax1"),
            (&b, "c1-lax1"),
        ] {
            let args = if round % 2 == 0 && cluster != "c1-lax1" {
                list(None)
            } else {
                list(Some(cluster))
            };
            let text = shim.ok("resources_list", args).await;
            assert!(is_cached(&text), "{cluster}: {text}");
            for other in SHARED {
                let object = format!("{owner}-{other}");
                assert_eq!(
                    text.contains(&object),
                    other == cluster,
                    "round {round}: {cluster}'s answer and {object}: {text}"
                );
            }
            // Seeded namespaces carry their cluster's name as a label.
            let foreign = if cluster == "c1-lax1" {
                "c1-sv5"
            } else {
                "c1-lax1"
            };
            let ns = shim
                .ok(
                    "namespaces_list",
                    json!({"cluster": cluster, "labelSelector": format!("cluster={foreign}")}),
                )
                .await;
            assert!(ns.starts_with("No namespaces found."), "{cluster}: {ns}");
        }
    }
    // One call over every cluster: one merged table, each cluster's rows
    // holding its own object only.
    let mut all_args = list(None);
    all_args["clusters"] = json!("*");
    let all = until_cached(&a, "resources_list", all_args).await;
    assert!(all.starts_with("CLUSTER "), "{all}");
    for row in all.lines().skip(1).filter(|l| l.contains(&owner)) {
        let cluster = row.split_whitespace().next().unwrap_or_default();
        for other in SHARED {
            assert_eq!(
                row.contains(&format!("{owner}-{other}")),
                other == cluster,
                "{all}"
            );
        }
    }
    assert_eq!(
        all.lines().filter(|l| l.contains(&owner)).count(),
        SHARED.len(),
        "{all}"
    );
    // A get by name on the wrong cluster is not found there (the cache
    // misses, the API server answers).
    let get = |name: &str| json!({"kind": "ConfigMap", "namespace": "default", "name": name});
    let wrong = b
        .err("resources_get", get(&format!("{owner}-c1-sv5")))
        .await;
    assert!(wrong.contains("not found"), "{wrong}");
    let right = until_cached(&a, "resources_get", get(&format!("{owner}-c1-sv5"))).await;
    assert!(right.contains("cluster: c1-sv5"), "{right}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_tables_read_exactly_like_live_ones() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-lax1"])
    });
    let shim = Shim::start(&d.socket).await;
    let calls = [
        ("pods_list", json!({"namespace": "shop"})),
        ("pods_list", json!({})),
        ("pods_list", json!({"labelSelector": "app=frontend"})),
        (
            "pods_list",
            json!({"fieldSelector": "status.phase=Running", "namespace": "shop"}),
        ),
        ("pods_list", json!({"limit": 3})),
        (
            "pods_list",
            json!({"labelSelector": "app notin (frontend)", "limit": 2}),
        ),
        ("pods_list", json!({"namespace": "shop", "output": "yaml"})),
        ("namespaces_list", json!({})),
        ("nodes_list", json!({})),
        (
            "resources_list",
            json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
        ),
        (
            "resources_list",
            json!({"kind": "services", "namespace": "shop", "output": "json"}),
        ),
        (
            "resources_get",
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "namespace": "shop", "name": "frontend"}),
        ),
    ];
    // A paged answer's token names its own snapshot.
    let token = regex::Regex::new(r#""continue": "[^"]+""#).unwrap();
    for (tool, args) in calls {
        let mut last = String::new();
        let mut same = false;
        // Ages tick: compare a few times so a second boundary between the
        // two answers does not count as a difference.
        for _ in 0..5 {
            let cached = until_cached(&shim, tool, args.clone()).await;
            let mut live_args = args.clone();
            live_args["live"] = json!(true);
            let live = shim.ok(tool, live_args).await;
            assert!(!is_cached(&live), "live: true came from the cache: {live}");
            let (cached_text, live_text) = (without_note(&cached), without_note(&live));
            if token.replace(&cached_text, "") == token.replace(&live_text, "") {
                same = true;
                break;
            }
            last = format!("cached:\n{cached}\nlive:\n{live}");
        }
        assert!(same, "{tool} {args} differs from a live read:\n{last}");
    }
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_follows_changes_and_goes_live_while_its_watch_is_down() {
    let Some(rig) = rig_or_skip() else { return };
    let _guard = rig.disrupt();
    let c = rig.cluster("c1-ord1");
    let ns = "payments";
    let owner = unique("wc");
    let (p0, p1) = (format!("{owner}-p0"), format!("{owner}-p1"));
    let mut cleanup = Cleanup(vec![(c, create(c, ns, "pods", &p0, &owner))]);
    let port = refused_port();
    let spec = DaemonSpec {
        server: format!("port = {port}"),
        sections: "[health]\nprobe_timeout = \"2s\"\nprobe_interval = \"2s\"\n[pool]\nrequest_timeout = \"3s\"\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-ord1"]));
    let shim = Shim::start(&d.socket).await;
    let list = json!({"namespace": ns, "labelSelector": format!("owner={owner}")});
    until_cached(&shim, "pods_list", list.clone()).await;

    // Served from memory: no LIST reaches the API server.
    let hits = |labels: &[&str]| daemon_metric(port, "nskd_cache_hits_total", labels);
    let hits_before = hits(&["cluster=\"c1-ord1\"", "resource=\"pods\""]);
    let lists_before = kubeapi::list_requests(c, "pods", "namespace");
    for _ in 0..20 {
        let text = shim.ok("pods_list", list.clone()).await;
        assert!(is_cached(&text) && text.contains(&p0), "{text}");
    }
    assert_eq!(
        kubeapi::list_requests(c, "pods", "namespace"),
        lists_before,
        "cached answers must not LIST on the API server"
    );
    assert!(
        hits(&["cluster=\"c1-ord1\"", "resource=\"pods\""]) >= hits_before + 20.0,
        "{}",
        http_get(port, "/metrics").1
    );

    // Changes made directly on the API server show up in the next cached
    // answers within the watch delay.
    cleanup.0.push((c, create(c, ns, "pods", &p1, &owner)));
    let seen = cached_until(&shim, "pods_list", list.clone(), 3, |t| t.contains(&p1)).await;
    eprintln!("create seen through the cache after {seen:?}");
    kubeapi::call(
        c,
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/pods/{p1}"),
        Some(r#"{"metadata":{"labels":{"tier":"gold"}}}"#),
    );
    let selected = json!({"namespace": ns, "labelSelector": format!("owner={owner},tier=gold")});
    until_cached(&shim, "pods_list", selected.clone()).await;
    cached_until(&shim, "pods_list", selected, 3, |t| {
        t.contains(&p1) && !t.contains(&p0)
    })
    .await;
    kubeapi::call(
        c,
        "DELETE",
        &format!("/api/v1/namespaces/{ns}/pods/{p1}?gracePeriodSeconds=0"),
        None,
    );
    cached_until(&shim, "pods_list", list.clone(), 3, |t| !t.contains(&p1)).await;

    // Secret values are masked in cached answers as in live ones.
    let secret = json!({"kind": "Secret", "apiVersion": "v1", "namespace": "shop", "name": "db-credentials"});
    let cached_secret = until_cached(&shim, "resources_get", secret.clone()).await;
    let listed = until_cached(
        &shim,
        "resources_list",
        json!({"kind": "Secret", "namespace": "shop", "output": "yaml"}),
    )
    .await;
    let mut live_secret = secret.clone();
    live_secret["live"] = json!(true);
    let live = shim.ok("resources_get", live_secret).await;
    let plain = "s3cr3t-c1-ord1";
    let encoded = "czNjcjN0LWMxLW9yZDE=";
    for text in [&cached_secret, &listed, &live] {
        assert!(!text.contains(plain) && !text.contains(encoded), "{text}");
    }
    assert_eq!(without_note(&cached_secret), without_note(&live));

    // The API server goes away: answers come from it (and fail) instead of
    // from a cache that can no longer be kept in sync.
    rig.stop_apiserver("c1-ord1");
    let started = Instant::now();
    let down = loop {
        let a = shim.call("pods_list", list.clone()).await;
        if !is_cached(&a.text) {
            break a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "still cached: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(down.is_error, "{}", down.text);
    eprintln!("cache left after {:?}: {}", started.elapsed(), down.text);
    rig.start_apiserver("c1-ord1");
    let back = until_cached(&shim, "pods_list", list.clone()).await;
    assert!(back.contains(&p0), "{back}");
    assert!(
        daemon_metric(
            port,
            "nskd_cache_watch_restarts_total",
            &["cluster=\"c1-ord1\""]
        ) >= 1.0,
        "{}",
        http_get(port, "/metrics").1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_respect_their_bounds_idle_time_and_kubeconfig_changes() {
    let Some(rig) = rig_or_skip() else { return };
    let sections = "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"1s\"\n[cache]\nmax_objects = 10\nidle_timeout = \"2s\"\n";
    let (d, shim, port) = start_observed(rig, sections, &["c1-sv5"]).await;
    // 25 pods are more than max_objects: always answered live.
    served_live_by_refusal(&shim, port, "pods_list", json!({}), "pods").await;
    // Events are not a cached kind by default.
    for _ in 0..3 {
        let text = shim.ok("events_list", json!({})).await;
        assert!(!is_cached(&text), "{text}");
    }
    // 7 namespaces fit; cached, then dropped once idle for 2 s (the next
    // call is live again and starts a new cache).
    until_cached(&shim, "namespaces_list", json!({})).await;
    assert!(daemon_metric(port, "nskd_cache_objects", &["cluster=\"c1-sv5\""]) >= 7.0);
    let (_, ready) = http_get(port, "/readyz");
    assert!(
        ready.contains("watch caches (1 in sync)"),
        "the pods cache refused, the namespaces one in sync: {ready}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        daemon_metric(port, "nskd_cache_objects", &["cluster=\"c1-sv5\""]),
        0.0,
        "an idle cache must be dropped: {}",
        http_get(port, "/metrics").1
    );
    let after_idle = shim.ok("namespaces_list", json!({})).await;
    assert!(!is_cached(&after_idle), "{after_idle}");
    until_cached(&shim, "namespaces_list", json!({})).await;

    // The cluster's kubeconfig now points at another API server: nothing
    // cached through the old one is answered again.
    let own = json!({"labelSelector": "cluster=c1-sv5"});
    let text = until_cached(&shim, "namespaces_list", own.clone()).await;
    assert!(text.contains("shop"), "{text}");
    let kubeconfig = d.kubeconfig_dir.join("c1-sv5.yaml");
    let other = std::fs::read_to_string(&rig.cluster("c1-dfw1").kubeconfig).expect("read");
    std::fs::write(&kubeconfig, other.replace("c1-dfw1", "c1-sv5")).expect("write");
    let started = Instant::now();
    loop {
        let text = shim.ok("namespaces_list", own.clone()).await;
        if text.starts_with("No namespaces found.") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still answering from the old API server: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = until_cached(
        &shim,
        "namespaces_list",
        json!({"labelSelector": "cluster=c1-dfw1"}),
    )
    .await;
    assert!(moved.contains("shop"), "{moved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_its_memory_cap_is_served_live() {
    let Some(rig) = rig_or_skip() else { return };
    let sections = "[health]\nprobe_interval = \"1h\"\n[cache]\nmax_cluster_bytes = 30000\n";
    let (_d, shim, port) = start_observed(rig, sections, &["c1-dfw1"]).await;
    // Seven namespaces fit in 30 kB; 25 pods do not.
    until_cached(&shim, "namespaces_list", json!({})).await;
    served_live_by_refusal(&shim, port, "pods_list", json!({}), "pods").await;
    let cached_bytes = daemon_metric(port, "nskd_cache_bytes", &["cluster=\"c1-dfw1\""]);
    assert!(
        cached_bytes > 0.0 && cached_bytes <= 30000.0,
        "{}",
        http_get(port, "/metrics").1
    );
    // The namespaces cache still answers.
    assert!(is_cached(&shim.ok("namespaces_list", json!({})).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_list_rights_gets_the_api_servers_refusal_not_a_cache() {
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
        let a = shim.err("pods_list", json!({"namespace": "shop"})).await;
        assert!(a.contains("403"), "{a}");
        assert!(!is_cached(&a), "{a}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The watch gave up at the refusal instead of retrying it forever.
    assert_refused(port, "pods");
    assert_eq!(
        daemon_metric(port, "nskd_cache_watch_restarts_total", &[]),
        0.0,
        "{}",
        http_get(port, "/metrics").1
    );
}
