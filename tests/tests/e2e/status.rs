//! `nskctl status` over live, refused, black-holed and malformed clusters.

use std::time::Instant;

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec, nskctl, text},
    endpoints::{BlackHole, refused_port},
    rig::SHARED,
};
use serde_json::Value;

use crate::rig_or_skip;

fn by_name<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["clusters"]
        .as_array()
        .expect("clusters array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {status}"))
}

#[test]
fn status_probes_live_dead_and_black_holed_clusters_in_parallel_within_one_timeout() {
    let _namespaces = nskd_e2e::rig::NAMESPACES.blocking_read();
    let Some(rig) = rig_or_skip() else { return };
    let hole = BlackHole::open();
    let refused = refused_port();
    let spec = DaemonSpec {
        default_cluster: Some("c1-dfw1".into()),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        rig.write_kubeconfigs(dir, &SHARED);
        rig.write_unreachable(dir, "c9-refused", "c1-sv5", refused);
        rig.write_unreachable(dir, "c9-blackhole", "c1-sv5", hole.port);
        std::fs::write(
            dir.join("c9-broken.yaml"),
            "apiVersion: v1\nclusters: [oops\n",
        )
        .unwrap();
    });

    let started = Instant::now();
    let status = d.status_json(&[]);
    let elapsed = started.elapsed();
    // probe_timeout is 3 s: the black hole must not cost more than one timeout.
    assert!(
        elapsed.as_secs_f64() < 5.0,
        "status took {elapsed:?}: {status}"
    );

    for name in SHARED {
        let c = by_name(&status, name);
        assert_eq!(c["status"], "Ready", "{c}");
        assert!(c["version"].as_str().unwrap().starts_with("v1.20"), "{c}");
        assert_eq!(c["nodes_total"], 3, "{c}");
        assert_eq!(c["nodes_ready"], 3, "{c}");
        assert_eq!(c["namespaces"], 7, "{c}");
        assert_eq!(c["error"], "", "{c}");
    }
    let refused_c = by_name(&status, "c9-refused");
    assert_eq!(refused_c["status"], "NotReady", "{refused_c}");
    assert!(
        refused_c["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{refused_c}"
    );
    let hole_c = by_name(&status, "c9-blackhole");
    assert_eq!(hole_c["status"], "NotReady", "{hole_c}");
    // The probe's deadline or the connect deadline (both 3 s) fires first.
    let why = hole_c["error"].as_str().unwrap();
    assert!(
        why.contains("timed out after 3s") || why.contains("deadline has elapsed"),
        "{hole_c}"
    );

    // The malformed kubeconfig is reported, named, and does not hide the others.
    let clusters = d.nskctl_json(&["clusters"]);
    let broken = by_name(&clusters, "c9-broken");
    let why = broken["error"].as_str().unwrap();
    assert!(
        why.contains("malformed") && why.contains("c9-broken.yaml") && why.contains("line 2"),
        "{broken}"
    );

    // The human table: sorted, the default marked, errors on one line.
    let out = d.nskctl(&["status", "--cached"]);
    let (stdout, stderr) = text(&out);
    // Refused, black-holed and malformed clusters: exit 1, table still printed.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("c1-") || l.contains("c9-"))
        .collect();
    assert_eq!(rows.len(), 6, "{stdout}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("c9-broken") && r.contains("kubeconfig malformed")),
        "{stdout}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("c9-refused") && r.contains("connection refused")),
        "{stdout}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("c9-blackhole") && r.contains("timed out")),
        "{stdout}"
    );
    assert!(rows.iter().any(|r| r.contains("c1-dfw1 *")), "{stdout}");
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r.split_whitespace().next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "{stdout}");
}

#[test]
fn status_detail_view_counts_real_objects() {
    let _namespaces = nskd_e2e::rig::NAMESPACES.blocking_read();
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-lax1"])
    });
    let out = d.nskctl(&["status", "c1-lax1"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for want in [
        "c1-lax1",
        &rig.cluster("c1-lax1").server,
        "v1.20",
        "Nodes: 3",
        "Namespaces: 7",
        "Pods: 25",
        "OK (latency:",
        "Certificate Expiry: 20",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    let json = d.status_json(&["c1-lax1"]);
    let detail = &json["clusters"][0]["detail"];
    assert_eq!(detail["services"], 2, "{json}");
    assert_eq!(detail["deployments"], 1, "{json}");
}

#[test]
fn nskctl_exit_codes_and_messages() {
    let Some(rig) = rig_or_skip() else { return };
    let refused = refused_port();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"]);
        rig.write_unreachable(dir, "c9-dead", "c1-sv5", refused);
    });

    // 0: a healthy cluster, and a call that succeeded.
    for args in [&["status", "c1-sv5"][..], &["clusters"], &["version"]] {
        let out = d.nskctl(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
    }
    // 1: a dead cluster, alone or in the table (which is still printed).
    let out = d.nskctl(&["status", "c9-dead"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("c9-dead"), "{stdout}");
    let out = d.nskctl(&["status"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("c1-sv5") && stdout.contains("c9-dead"),
        "{stdout}"
    );

    let out = d.nskctl(&["status", "no-such-cluster"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no-such-cluster") && stderr.contains("c1-sv5"),
        "{stderr}"
    );

    let out = d.nskctl(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));

    let gone = d.home.path().join("nowhere.sock");
    let out = nskctl(&gone, &["status"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("nskd is not running") && stderr.contains("nowhere.sock"),
        "{stderr}"
    );
}

#[test]
fn doctor_passes_a_clean_setup_and_names_each_problem_of_a_broken_one() {
    let Some(rig) = rig_or_skip() else { return };
    let clean = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &SHARED)
    });
    let out = clean.nskctl(&["doctor"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("PASS  daemon")
            && stdout.contains("PASS  cluster c1-lax1: Ready v1.20.2 3/3 nodes"),
        "{stdout}"
    );
    assert!(stdout.contains("certificate expiry"), "{stdout}");

    let port = refused_port();
    let broken = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"]);
        rig.write_unreachable(dir, "c9-dead", "c1-sv5", port);
    });
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&broken.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = broken.nskctl(&["doctor"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  socket:") && stdout.contains("0666"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  cluster c9-dead: NotReady"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS  cluster c1-sv5"), "{stdout}");

    let gone = nskctl(&broken.home.path().join("nowhere.sock"), &["doctor"]);
    let (stdout, _) = text(&gone);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stdout.contains("FAIL  daemon: nskd is not running"),
        "{stdout}"
    );
}
