//! MCP sessions through the real mcp-shim: real data, per-session active
//! clusters, inline per-cluster errors, daemon restarts.

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    endpoints::refused_port,
    mcp::Shim,
    rig::SHARED,
};
use serde_json::json;

use crate::rig_or_skip;

fn data_lines(text: &str) -> Vec<&str> {
    crate::data_rows(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_serves_real_namespaces_and_pods_with_selectors() {
    let _namespaces = nskd_e2e::rig::NAMESPACES.read().await;
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &SHARED));
    let shim = Shim::start(&d.socket).await;

    let names: Vec<String> = shim
        .tools()
        .await
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for want in [
        "clusters_list",
        "cluster_use",
        "clusters_status",
        "namespaces_list",
        "pods_list",
        "cluster_current",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing in {names:?}"
        );
    }

    let ns = shim.ok("namespaces_list", json!({})).await;
    for want in ["default", "kube-system", "shop", "payments", "monitoring"] {
        assert!(
            ns.lines().any(|l| l.starts_with(want)),
            "{want} missing:\n{ns}"
        );
    }
    assert_eq!(data_lines(&ns).len(), 7, "{ns}");

    let shop = shim.ok("pods_list", json!({"namespace": "shop"})).await;
    assert_eq!(data_lines(&shop).len(), 20, "{shop}");
    let all = shim.ok("pods_list", json!({})).await;
    assert_eq!(data_lines(&all).len(), 25, "{all}");

    let failed = shim
        .ok("pods_list", json!({"fieldSelector": "status.phase=Failed"}))
        .await;
    assert!(!data_lines(&failed).is_empty(), "{failed}");
    assert!(
        data_lines(&failed).iter().all(|l| !l.contains("Running")),
        "{failed}"
    );
    let running = shim
        .ok(
            "pods_list",
            json!({"fieldSelector": "status.phase=Running"}),
        )
        .await;
    assert!(
        data_lines(&running).iter().all(|l| l.contains("Running")),
        "{running}"
    );
    assert!(
        data_lines(&running).len() + data_lines(&failed).len() < 25,
        "some pods are Pending"
    );

    let web = shim
        .ok(
            "pods_list",
            json!({"namespace": "shop", "labelSelector": "tier=web"}),
        )
        .await;
    let backend = shim
        .ok(
            "pods_list",
            json!({"namespace": "shop", "labelSelector": "tier=backend"}),
        )
        .await;
    assert_eq!(
        data_lines(&web).len() + data_lines(&backend).len(),
        20,
        "{web}\n{backend}"
    );
    assert!(!data_lines(&web).is_empty() && !data_lines(&backend).is_empty());

    let limited = shim
        .ok("pods_list", json!({"namespace": "shop", "limit": 5}))
        .await;
    assert_eq!(data_lines(&limited).len(), 5, "{limited}");
    assert!(
        limited.contains("limit"),
        "a capped answer says how to see more:\n{limited}"
    );

    let yaml = shim
        .ok(
            "pods_list",
            json!({"namespace": "payments", "output": "yaml"}),
        )
        .await;
    assert!(
        yaml.contains("kind: Pod") || yaml.contains("kind: PodList"),
        "{yaml}"
    );
    assert!(
        !yaml.contains("managedFields"),
        "managedFields must be stripped:\n{yaml}"
    );

    // "*" fans out to every healthy cluster: one merged table.
    let every = shim.ok("namespaces_list", json!({"clusters": "*"})).await;
    assert!(every.starts_with("CLUSTER "), "{every}");
    for name in SHARED {
        assert!(every.contains(&format!("\n{name} ")), "{every}");
    }
    // A typo in an argument is an error naming it, not a silent full listing.
    let typo = shim.err("pods_list", json!({"namespce": "shop"})).await;
    assert!(typo.contains("namespce"), "{typo}");
    shim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_keep_separate_active_clusters() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        default_cluster: Some("c1-sv5".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &SHARED));
    let a = Shim::start(&d.socket).await;
    let b = Shim::start(&d.socket).await;

    assert!(a.ok("cluster_current", json!({})).await.contains("c1-sv5"));
    a.ok("cluster_use", json!({"cluster": "c1-lax1"})).await;
    assert!(a.ok("cluster_current", json!({})).await.contains("c1-lax1"));
    assert!(b.ok("cluster_current", json!({})).await.contains("c1-sv5"));

    // The active cluster really is where calls go: label each namespace list by cluster.
    let listed = a
        .ok(
            "namespaces_list",
            json!({"labelSelector": "cluster=c1-lax1"}),
        )
        .await;
    assert_eq!(data_lines(&listed).len(), 3, "{listed}");
    let listed = b
        .ok(
            "namespaces_list",
            json!({"labelSelector": "cluster=c1-lax1"}),
        )
        .await;
    assert_eq!(data_lines(&listed).len(), 0, "{listed}");

    let list = a.ok("clusters_list", json!({})).await;
    assert!(list.contains("c1-lax1 *"), "{list}");

    let unknown = a.err("cluster_use", json!({"cluster": "c1-nowhere"})).await;
    assert!(
        unknown.contains("c1-nowhere") && unknown.contains("c1-sv5"),
        "{unknown}"
    );
    assert!(
        a.ok("cluster_current", json!({})).await.contains("c1-lax1"),
        "a failed switch keeps the old cluster"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cluster_fails_alone_and_inline() {
    let Some(rig) = rig_or_skip() else { return };
    let port = refused_port();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5", "c1-dfw1"]);
        rig.write_unreachable(dir, "c9-dead", "c1-sv5", port);
    });
    let shim = Shim::start(&d.socket).await;

    let mixed = shim
        .ok(
            "namespaces_list",
            json!({"clusters": ["c1-sv5", "c9-dead", "c1-dfw1"]}),
        )
        .await;
    assert!(mixed.contains("\nc1-sv5 "), "{mixed}");
    assert!(mixed.contains("\nc1-dfw1 "), "{mixed}");
    assert!(
        mixed.contains("1 cluster failed (connection refused): c9-dead"),
        "{mixed}"
    );
    assert!(mixed.contains("shop"), "{mixed}");

    let alone = shim.err("pods_list", json!({"cluster": "c9-dead"})).await;
    assert!(alone.contains("c9-dead"), "{alone}");

    // "*" skips clusters known to be down once the tracker has seen them fail.
    shim.ok("clusters_status", json!({"refresh": true})).await;
    let every = shim.ok("namespaces_list", json!({"clusters": "*"})).await;
    assert!(!every.contains("\nc9-dead "), "{every}");
    assert!(
        every.contains("1 cluster skipped by \"*\" (NotReady") && every.contains("): c9-dead;"),
        "{every}"
    );

    let status = shim.ok("clusters_status", json!({})).await;
    assert!(
        status.contains("c9-dead") && status.contains("NotReady"),
        "{status}"
    );
    shim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_starts_without_daemon_explains_and_connects_once_it_runs() {
    let Some(rig) = rig_or_skip() else { return };
    let mut d = Daemon::prepare(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-dfw1"])
    });
    let started = std::time::Instant::now();
    let shim = Shim::start(&d.socket).await;
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "initialize must not wait for the daemon"
    );
    assert!(!shim.tools().await.is_empty());

    let down = shim.err("namespaces_list", json!({})).await;
    assert!(
        down.contains("nskd is not running") && down.contains("e2e"),
        "{down}"
    );

    d.spawn();
    let up = shim.ok("namespaces_list", json!({})).await;
    assert!(up.contains("shop"), "{up}");

    // Restart the daemon under a connected session: the next call reconnects.
    d.terminate();
    d.spawn();
    let again = shim
        .ok("pods_list", json!({"namespace": "monitoring"}))
        .await;
    assert_eq!(data_lines(&again).len(), 2, "{again}");
    shim.close().await;
}

/// nskd processes serving `socket` (by command line).
fn daemons_on(socket: &std::path::Path) -> Vec<i32> {
    let want = socket.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.split_whitespace()
                .next()
                .is_some_and(|exe| exe.ends_with("/nskd"))
                && cmd.contains(&want)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shims_with_start_daemon_start_exactly_one_daemon() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::prepare(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-dfw1"])
    });
    let config = d.config.display().to_string();
    let extra = ["--start-daemon", "--daemon-config", config.as_str()];
    let shims = tokio::join!(
        Shim::start_with(&d.socket, &extra),
        Shim::start_with(&d.socket, &extra),
        Shim::start_with(&d.socket, &extra),
    );
    let answers = tokio::join!(
        shims.0.call("namespaces_list", json!({})),
        shims.1.call("namespaces_list", json!({})),
        shims.2.call("namespaces_list", json!({})),
    );
    let pids = daemons_on(&d.socket);
    for pid in &pids {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(*pid).unwrap(),
            rustix::process::Signal::TERM,
        );
    }
    for a in [&answers.0, &answers.1, &answers.2] {
        assert!(!a.is_error && a.text.contains("shop"), "{}", a.text);
    }
    assert_eq!(
        pids.len(),
        1,
        "exactly one daemon for three shims: {pids:?}"
    );
    for s in [shims.0, shims.1, shims.2] {
        s.close().await;
    }
}
