//! Kubeconfig directory discovery and cluster outages, live.

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    rig::DISRUPTABLE,
};
use serde_json::Value;

use crate::{eventually, rig_or_skip};

fn servers(d: &Daemon) -> Vec<(String, String)> {
    let v: Value = d.nskctl_json(&["clusters"]);
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["server"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn added_changed_and_removed_kubeconfigs_are_seen_within_a_second() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    assert_eq!(servers(&d).len(), 1);

    rig.write_kubeconfigs(&d.kubeconfig_dir, &["c1-dfw1"]);
    let seen = eventually(1.0, || {
        servers(&d)
            .iter()
            .any(|(n, _)| n == "c1-dfw1")
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "new kubeconfig not seen within 1s: {:?}\n{}",
        servers(&d),
        d.log_text()
    );

    // Same file, now pointing at another cluster's server.
    let other = rig.cluster("c1-lax1");
    let text = std::fs::read_to_string(&rig.cluster("c1-dfw1").kubeconfig).unwrap();
    let moved = text.replace(&rig.cluster("c1-dfw1").server, &other.server);
    std::fs::write(d.kubeconfig_dir.join("c1-dfw1.yaml"), moved).unwrap();
    let changed = eventually(1.0, || {
        servers(&d)
            .iter()
            .any(|(n, s)| n == "c1-dfw1" && *s == other.server)
            .then_some(())
    });
    assert!(
        changed.is_some(),
        "changed kubeconfig not seen within 1s: {:?}",
        servers(&d)
    );

    std::fs::remove_file(d.kubeconfig_dir.join("c1-dfw1.yaml")).unwrap();
    let gone = eventually(1.0, || {
        (!servers(&d).iter().any(|(n, _)| n == "c1-dfw1")).then_some(())
    });
    assert!(
        gone.is_some(),
        "removed kubeconfig still listed after 1s: {:?}",
        servers(&d)
    );
}

#[test]
fn a_cluster_that_goes_down_and_comes_back_on_the_same_port_recovers() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &[DISRUPTABLE, "c1-sv5"])
    });
    let state = |d: &Daemon| -> String {
        let v = d.status_json(&[DISRUPTABLE]);
        v["clusters"][0]["status"].as_str().unwrap().to_string()
    };
    assert_eq!(state(&d), "Ready");

    rig.stop_apiserver(DISRUPTABLE);
    let down = d.status_json(&[]);
    let restart_guard = scopeguard(rig, DISRUPTABLE);
    let c = down["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == DISRUPTABLE)
        .unwrap()
        .clone();
    assert_ne!(c["status"], "Ready", "{c}");
    assert!(
        c["error"].as_str().unwrap().contains("Connection refused"),
        "{c}"
    );
    let sv5 = down["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "c1-sv5")
        .unwrap()
        .clone();
    assert_eq!(
        sv5["status"], "Ready",
        "one dead cluster must not affect another: {sv5}"
    );

    // Consecutive failures (live probes here) turn it NotReady, at the third;
    // never before it. The background probe may add one between two polls.
    let mut seen_before = Vec::new();
    let not_ready = eventually(10.0, || {
        let v = d.status_json(&[DISRUPTABLE]);
        let failures = v["clusters"][0]["consecutive_failures"].as_u64().unwrap();
        if v["clusters"][0]["status"] == "NotReady" {
            Some(failures)
        } else {
            seen_before.push(failures);
            None
        }
    });
    assert!(
        not_ready.is_some_and(|n| n >= 3),
        "NotReady must come with the 3rd consecutive failure: {not_ready:?}"
    );
    assert!(
        seen_before.iter().all(|n| *n < 3),
        "not NotReady although {seen_before:?} consecutive failures were seen"
    );

    drop(restart_guard);
    // The pooled client reconnects by itself (no daemon restart).
    let back = eventually(10.0, || (state(&d) == "Ready").then_some(()));
    assert!(
        back.is_some(),
        "cluster did not recover; log:\n{}",
        d.log_text()
    );

    // A node going NotReady makes the cluster Degraded, and back.
    rig.set_node_ready(DISRUPTABLE, "node-2", false);
    let v = d.status_json(&[DISRUPTABLE]);
    rig.set_node_ready(DISRUPTABLE, "node-2", true);
    let c = &v["clusters"][0];
    assert_eq!(c["status"], "Degraded", "{c}");
    assert_eq!(c["nodes_ready"], 2, "{c}");
    assert!(
        c["degraded_reason"]
            .as_str()
            .unwrap()
            .contains("1 of 3 nodes NotReady"),
        "{c}"
    );
    assert_eq!(state(&d), "Ready");
}

/// Restarts the apiserver when dropped, even if the test fails midway.
fn scopeguard(rig: &'static nskd_e2e::rig::Rig, name: &'static str) -> impl Drop {
    struct Restart(&'static nskd_e2e::rig::Rig, &'static str);
    impl Drop for Restart {
        fn drop(&mut self) {
            self.0.start_apiserver(self.1);
        }
    }
    Restart(rig, name)
}

#[test]
fn a_multi_context_kubeconfig_gives_one_cluster_per_context_filtered_by_pattern_and_exclusions() {
    let Some(rig) = rig_or_skip() else { return };
    let all = rig.dir.join("kubeconfig-all.yaml");
    let spec = DaemonSpec {
        top: format!("kubeconfig = {:?}\n", all.display().to_string()),
        sections:
            "[nsk]\ncluster_pattern = \"^c1-(sv5|lax1|ord1)$\"\nexclude_clusters = [\"c1-ord1\"]\n"
                .into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |_| {});
    let mut names: Vec<String> = servers(&d).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["c1-lax1", "c1-sv5"]);
    let status = d.status_json(&["c1-lax1"]);
    assert_eq!(status["clusters"][0]["status"], "Ready", "{status}");
    assert_eq!(
        status["clusters"][0]["server"],
        rig.cluster("c1-lax1").server.as_str()
    );
}
