//! The fault matrix (docs/reliability.md) rows no other file covers: each
//! fault is injected into real processes and the test asserts that nothing
//! is lost, that the answer comes within a stated bound, and that it names
//! what failed, where, and what to do.

use std::{
    collections::BTreeMap,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nskd_e2e::{
    bins::bin,
    daemon::{Daemon, DaemonSpec, text},
    endpoints::DelayProxy,
    fake_nsk::{FakeCluster, FakeNsk, FakeState},
    mcp::Shim,
    rig::{DISRUPTABLE, Rig, SHARED},
};
use rustix::process::Signal;
use serde_json::{Value, json};

use crate::{eventually, rig_or_skip};

/// A daemon on the nsk source serving `clusters` through the fake nsk,
/// prepared but not started; `health` replaces the `[health]` keys.
fn nsk_prepared(
    clusters: Vec<FakeCluster>,
    state: FakeState,
    auto_refresh: bool,
    health: &str,
) -> (Daemon, FakeNsk, tempfile::TempDir) {
    let fake_home = tempfile::tempdir().unwrap();
    let fake = FakeNsk::create(
        &fake_home.path().join("fake"),
        FakeState {
            expected_token: Some(crate::nsk::TOKEN.into()),
            clusters,
            ..state
        },
    );
    let spec = DaemonSpec {
        sections: format!(
            "[health]
{health}
[nsk]
source = \"nsk\"
nsk_path = {:?}
rancher_token = {:?}
profile = \"e2e\"
config_dir = {:?}
auto_refresh = {auto_refresh}
refresh_interval = \"1h\"
min_force_interval = \"0s\"
",
            fake.path().display().to_string(),
            crate::nsk::TOKEN,
            fake_home.path().join("nskconf").display().to_string(),
        ),
        ..DaemonSpec::default()
    };
    (Daemon::prepare(&spec, |_| {}), fake, fake_home)
}

/// The three shared rig clusters as the fake Rancher behind nsk serves them.
fn shared_clusters(rig: &Rig) -> Vec<FakeCluster> {
    SHARED
        .iter()
        .enumerate()
        .map(|(i, name)| FakeCluster::from_rig(rig.cluster(name), &format!("c-m-000{i}")))
        .collect()
}

/// `nskctl --json refresh ARGS`, with how long it took.
fn timed_refresh(d: &Daemon, args: &[&str]) -> (Value, Duration) {
    let mut all = vec!["--json", "refresh"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let out = d.nskctl(&all);
    let took = started.elapsed();
    let (stdout, stderr) = text(&out);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("refresh json: {e}: {stdout}{stderr}\n{}", d.log_text()));
    (v, took)
}

/// Every `*.yaml` in `dir` with its bytes.
fn yaml_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".yaml"))
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Names of temp files the store leaves while writing.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

fn cluster_names(d: &Daemon) -> Vec<String> {
    d.nskctl_json(&["clusters"])["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_rancher_token_fails_the_refresh_clearly_and_cached_kubeconfigs_keep_serving() {
    let Some(rig) = rig_or_skip() else { return };
    let home = tempfile::tempdir().unwrap();
    let rancher = crate::rancher::start_rancher(rig, home.path());
    let d = crate::rancher::rancher_daemon(&rancher, "rancher_insecure = true", false);
    let (first, _) = timed_refresh(&d, &[]);
    assert_eq!(first["outcome"], "Success", "{first}\n{}", d.log_text());
    let before = yaml_files(&d.kubeconfig_dir);
    assert_eq!(before.len(), 3);

    // Rancher no longer knows the daemon's token (revoked or rotated): 401.
    rancher.update(|s| s.token = "token-zzzzz:ROTATEDROTATEDROTATED00000".into());
    rancher.clear_requests();
    let (failed, took) = timed_refresh(&d, &["--force"]);
    assert_eq!(failed["outcome"], "Failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    eprintln!("revoked token, after {took:?}: {error}");
    for want in ["listing clusters", "401", "renew", "rancher_token"] {
        assert!(error.contains(want), "missing {want:?}: {error}");
    }
    assert!(
        took < Duration::from_secs(5),
        "a 401 is not retried: {took:?}"
    );
    let v3 = rancher
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with("/v3/"))
        .count();
    assert_eq!(v3, 1, "auth failures are not retried");

    // Nothing lost: same files, still served, shown as stale.
    assert_eq!(yaml_files(&d.kubeconfig_dir), before);
    crate::assert_served_stale(&d, "c1-dfw1");
    let shim = Shim::start(&d.socket).await;
    let ns = shim
        .ok(
            "namespaces_list",
            json!({"cluster": "c1-dfw1", "labelSelector": "cluster=c1-dfw1"}),
        )
        .await;
    assert_eq!(crate::data_rows(&ns).len(), 3, "{ns}");
    assert!(
        !d.log_text().contains("SECRETSECRET"),
        "token in the daemon log"
    );
    shim.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_cluster_shows_degraded_and_still_answers_within_the_request_timeout() {
    let Some(rig) = rig_or_skip() else { return };
    // Every chunk both ways held 300 ms: a round trip costs at least 600 ms.
    let proxy = DelayProxy::start(rig.cluster("c1-lax1").port, Duration::from_millis(300));
    let spec = DaemonSpec {
        sections: "[health]\nprobe_timeout = \"5s\"\nprobe_interval = \"1h\"\ndegraded_latency = \"500ms\"\n[pool]\nrequest_timeout = \"5s\"\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"]);
        rig.write_unreachable(dir, "c9-slow", "c1-lax1", proxy.port);
    });

    let started = Instant::now();
    let status = d.status_json(&[]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "status is bounded by one probe timeout: {took:?}"
    );
    let by = |name: &str| {
        status["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let slow = by("c9-slow");
    eprintln!("slow cluster, status after {took:?}: {slow}");
    assert_eq!(slow["status"], "Degraded", "{slow}");
    assert!(
        slow["degraded_reason"].as_str().unwrap().contains("slow: ")
            && slow["degraded_reason"]
                .as_str()
                .unwrap()
                .contains("> 500 ms"),
        "{slow}"
    );
    assert_eq!(by("c1-sv5")["status"], "Ready", "the slow one alone");
    let table = text(&d.nskctl(&["status", "--cached"])).0;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("c9-slow") && l.contains("Degraded")),
        "{table}"
    );

    // Calls answer, late but within the request timeout, and the fast
    // cluster is not held up by the slow one.
    let shim = Shim::start(&d.socket).await;
    let started = Instant::now();
    let both = shim
        .ok(
            "namespaces_list",
            json!({"clusters": ["c9-slow", "c1-sv5"], "labelSelector": "cluster=c1-lax1"}),
        )
        .await;
    let took = started.elapsed();
    eprintln!("namespaces_list over a 300 ms-per-chunk cluster: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        // c1-sv5 has no namespace of that label: no rows, and no failure.
        both.starts_with("CLUSTER ") && both.contains("\nc9-slow ") && !both.contains("failed"),
        "{both}"
    );
    assert!(both.contains("shop"), "the slow cluster's data: {both}");
    let started = Instant::now();
    let fast = shim
        .ok("namespaces_list", json!({"cluster": "c1-sv5"}))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500) && fast.contains("shop"),
        "{:?} {fast}",
        started.elapsed()
    );

    // Fast again: Ready again.
    proxy.set_delay(Duration::ZERO);
    let ready = eventually(10.0, || {
        let v = d.status_json(&["c9-slow"]);
        (v["clusters"][0]["status"] == "Ready").then_some(())
    });
    assert!(ready.is_some(), "{}", d.status_json(&["c9-slow"]));
    shim.close().await;
}

/// SIGCONTs and restarts the disruptable apiserver when dropped (even when
/// the test fails midway), so later tests find it running.
struct Revive(&'static Rig);

impl Drop for Revive {
    fn drop(&mut self) {
        if self.0.apiserver_pid(DISRUPTABLE).is_some() {
            let _ = std::panic::catch_unwind(|| self.0.signal_apiserver(DISRUPTABLE, Signal::CONT));
        }
        self.0.stop_apiserver(DISRUPTABLE);
        self.0.start_apiserver(DISRUPTABLE);
    }
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_that_hangs_or_dies_mid_call_fails_that_call_in_time_and_recovers() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let spec = DaemonSpec {
        sections: "[health]\nprobe_timeout = \"2s\"\nprobe_interval = \"1h\"\n[pool]\nrequest_timeout = \"3s\"\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        rig.write_kubeconfigs(dir, &[DISRUPTABLE, "c1-sv5"])
    });
    let shim = std::sync::Arc::new(Shim::start(&d.socket).await);
    shim.ok("pods_list", json!({"cluster": DISRUPTABLE})).await;

    // Hangs: the kernel still accepts and buffers, nothing answers.
    rig.signal_apiserver(DISRUPTABLE, Signal::STOP);
    let revive = Revive(rig);
    let hung = {
        let shim = shim.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            // live: the first read of a hung server goes to it (a watch
            // cache cannot tell a hang from quiet until a call fails).
            let a = shim
                .call("pods_list", json!({"cluster": DISRUPTABLE, "live": true}))
                .await;
            (a, started.elapsed())
        })
    };
    // Meanwhile another cluster answers at once.
    let started = Instant::now();
    let other = shim
        .ok("namespaces_list", json!({"cluster": "c1-sv5"}))
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1500) && other.contains("shop"),
        "{:?}",
        started.elapsed()
    );
    let (a, took) = hung.await.unwrap();
    eprintln!("call to a hung apiserver: {took:?}: {}", a.text);
    assert!(a.is_error, "{}", a.text);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "hangs, then ends by the 3s request timeout: {took:?}"
    );
    // The call's deadline or the connection's read timeout (both 3 s).
    for want in [DISRUPTABLE, "timed out", &rig.cluster(DISRUPTABLE).server] {
        assert!(a.text.contains(want), "missing {want:?}: {}", a.text);
    }
    assert!(
        a.text.contains("nskctl status") || a.text.contains("check the cluster is up"),
        "{}",
        a.text
    );
    // Once a call has failed, no cached answer stands in for the cluster.
    let started = Instant::now();
    let after = shim.err("pods_list", json!({"cluster": DISRUPTABLE})).await;
    assert!(!after.contains("watch cache"), "{after}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Dies mid-call: a call is in flight when the process is killed.
    let inflight = {
        let shim = shim.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let a = shim
                .call(
                    "pods_list",
                    json!({"cluster": DISRUPTABLE, "namespace": "shop", "live": true}),
                )
                .await;
            (a, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    rig.signal_apiserver(DISRUPTABLE, Signal::KILL);
    let (a, took) = inflight.await.unwrap();
    eprintln!(
        "call whose apiserver was killed after 0.7s: {took:?}: {}",
        a.text
    );
    assert!(a.is_error, "{}", a.text);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        a.text.contains(DISRUPTABLE)
            && (a.text.contains("cannot reach API server") || a.text.contains("timed out"))
            && (a.text.contains("nskctl status") || a.text.contains("check the cluster is up")),
        "{}",
        a.text
    );
    // Dead now: refused at once, and status says so.
    let started = Instant::now();
    let dead = shim.err("pods_list", json!({"cluster": DISRUPTABLE})).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?} {dead}",
        started.elapsed()
    );
    let status = d.status_json(&[DISRUPTABLE]);
    assert_ne!(status["clusters"][0]["status"], "Ready", "{status}");
    assert!(
        shim.ok("namespaces_list", json!({"cluster": "c1-sv5"}))
            .await
            .contains("shop")
    );

    // Restarted on the same port: the same daemon and session recover.
    drop(revive);
    let back = eventually(10.0, || {
        let v = d.status_json(&[DISRUPTABLE]);
        (v["clusters"][0]["status"] == "Ready").then_some(())
    });
    assert!(back.is_some(), "no recovery; log:\n{}", d.log_text());
    let pods = shim
        .ok(
            "pods_list",
            json!({"cluster": DISRUPTABLE, "namespace": "shop"}),
        )
        .await;
    assert_eq!(crate::data_rows(&pods).len(), 20, "{pods}");
}

#[test]
fn sigkill_during_kubeconfig_writes_leaves_every_file_old_or_new() {
    let Some(rig) = rig_or_skip() else { return };
    const CLUSTERS: usize = 24;
    // More for a soak: NSKD_SIGKILL_CYCLES=200 (docs/reliability.md).
    let cycles: usize = std::env::var("NSKD_SIGKILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let base = FakeCluster::from_rig(rig.cluster("c1-sv5"), "c-m-0000");
    let clusters = (0..CLUSTERS)
        .map(|i| base.renamed(&format!("c7-big-{i:02}"), &format!("c-m-{i:04}")))
        .collect();
    // A little latency per fetch spreads the writes over the refresh.
    let state = FakeState {
        pad_bytes: 32 * 1024,
        generation: 1,
        slow_ms: 40,
        ..FakeState::default()
    };
    let (mut d, fake, _home) = nsk_prepared(
        clusters,
        state,
        true,
        "probe_timeout = \"3s\"\nprobe_interval = \"1h\"",
    );
    // Both generations as complete startup refreshes write them; the
    // second start also times when its writes begin and end.
    let startup_done = |d: &Daemon| {
        let h = d.nskctl_json(&["history"]);
        let records = h["records"].as_array().cloned().unwrap_or_default();
        records
            .iter()
            .any(|r| r["trigger"] == "startup" && r["outcome"] == "Success")
            .then_some(())
    };
    d.spawn();
    assert!(
        eventually(30.0, || startup_done(&d)).is_some(),
        "{}",
        d.log_text()
    );
    let gen1 = yaml_files(&d.kubeconfig_dir);
    d.kill();
    fake.update(|s| s.generation = 2);
    d.spawn();
    let started = Instant::now();
    let (mut first, mut last) = (None, None);
    while last.is_none() && started.elapsed() < Duration::from_secs(30) {
        let files = yaml_files(&d.kubeconfig_dir);
        let changed = files.iter().filter(|(n, b)| gen1[*n] != **b).count();
        if changed > 0 && first.is_none() {
            first = Some(started.elapsed());
        }
        if changed == CLUSTERS {
            last = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (Some(first), Some(last)) = (first, last) else {
        panic!(
            "the startup refresh did not rewrite the files:\n{}",
            d.log_text()
        )
    };
    assert!(
        eventually(30.0, || startup_done(&d)).is_some(),
        "{}",
        d.log_text()
    );
    let gen2 = yaml_files(&d.kubeconfig_dir);
    d.kill();
    assert_eq!(gen1.len(), CLUSTERS);
    assert!(
        gen1.iter()
            .all(|(n, b)| gen2[n] != *b && b.len() > 32 * 1024)
    );
    for b in gen1.values() {
        yaml_serde::from_slice::<yaml_serde::Value>(b).expect("generation 1 parses");
    }
    eprintln!(
        "after start, the {CLUSTERS} x 32 KiB kubeconfigs are written from {first:?} to {last:?}"
    );

    // Each cycle: start (auto_refresh writes the other generation at once),
    // SIGKILL at a moment spread over the writes, then inspect the store.
    let from = first.saturating_sub(Duration::from_millis(50));
    let span = last + Duration::from_millis(50) - from;
    let mut mixed = 0;
    for cycle in 0..cycles {
        let on_disk = yaml_files(&d.kubeconfig_dir);
        let at_gen1 = on_disk.iter().filter(|(n, b)| gen1[*n] == **b).count();
        let generation = if at_gen1 * 2 >= CLUSTERS { 2 } else { 1 };
        fake.update(|s| s.generation = generation);
        d.spawn();
        let at = from + span.mul_f64((cycle as f64 + fastrand::f64()) / cycles as f64);
        std::thread::sleep(at);
        let pid = d.pid().unwrap();
        d.kill();
        let files = yaml_files(&d.kubeconfig_dir);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            gen1.keys().collect::<Vec<_>>(),
            "cycle {cycle}: a file appeared or vanished"
        );
        for (name, bytes) in &files {
            assert!(
                *bytes == gen1[name] || *bytes == gen2[name],
                "cycle {cycle}: {name} is neither the old nor the new content ({} bytes) after SIGKILL at {at:?}",
                bytes.len()
            );
        }
        let at_gen1 = files.iter().filter(|(n, b)| gen1[*n] == **b).count();
        let temps = temp_files(&d.kubeconfig_dir);
        eprintln!(
            "cycle {cycle}: writing generation {generation}, SIGKILL (pid {pid}) at {at:?}: {at_gen1} files at generation 1, {} at 2, {} temp files",
            CLUSTERS - at_gen1,
            temps.len()
        );
        if (at_gen1 > 0 && at_gen1 < CLUSTERS) || !temps.is_empty() {
            mixed += 1;
        }
    }
    assert!(
        mixed > 0,
        "no SIGKILL landed during the writes (the test proved nothing); window {from:?} + {span:?}"
    );

    // The next start: nothing left over is taken for a cluster, temp files
    // of dead daemons are swept, and a refresh completes.
    d.spawn();
    let clean = eventually(10.0, || {
        temp_files(&d.kubeconfig_dir).is_empty().then_some(())
    });
    assert!(
        clean.is_some(),
        "temp files of killed daemons left behind: {:?}",
        temp_files(&d.kubeconfig_dir)
    );
    let mut names = cluster_names(&d);
    names.sort();
    let want: Vec<String> = gen1
        .keys()
        .map(|k| k.trim_end_matches(".yaml").into())
        .collect();
    assert_eq!(names, want);
    let (last, _) = timed_refresh(&d, &["--force"]);
    assert!(last["outcome"] == "Success", "{last}\n{}", d.log_text());
    let generation = fake.state().generation;
    let want = if generation == 1 { &gen1 } else { &gen2 };
    assert_eq!(&yaml_files(&d.kubeconfig_dir), want);
}

/// Unmounts (lazily) when dropped.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_kubeconfig_disk_fails_the_refresh_naming_the_directory_and_keeps_the_old_files() {
    let Some(rig) = rig_or_skip() else { return };
    let (mut d, fake, _home) = nsk_prepared(
        shared_clusters(rig),
        FakeState {
            generation: 1,
            ..FakeState::default()
        },
        false,
        "probe_timeout = \"3s\"\nprobe_interval = \"1h\"",
    );
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&d.kubeconfig_dir)
        .output();
    match mount {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED a_full_kubeconfig_disk_...: cannot mount a 64k tmpfs on {} \
                 (needs root or CAP_SYS_ADMIN): {:?}\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
                d.kubeconfig_dir.display(),
                other.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            );
            return;
        }
    }
    let _unmount = Unmount(d.kubeconfig_dir.clone());
    d.spawn();
    let (first, _) = timed_refresh(&d, &[]);
    assert_eq!(first["outcome"], "Success", "{first}\n{}", d.log_text());
    let before = yaml_files(&d.kubeconfig_dir);

    // Fill the file system to the last byte.
    let filler = d.kubeconfig_dir.join(".filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = [0u8; 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "{e}");
                    break;
                }
            }
        }
        let _ = f.sync_all();
    }

    fake.update(|s| s.generation = 2);
    let (failed, took) = timed_refresh(&d, &["--force"]);
    assert_eq!(failed["outcome"], "Failed", "{failed}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let dir = d.kubeconfig_dir.display().to_string();
    let reasons = failed["failed"].as_array().unwrap();
    eprintln!("full disk, after {took:?}: {failed}");
    assert_eq!(reasons.len(), 3, "{failed}");
    for r in reasons {
        // ENOSPC is kept as a kind, not read back from the text.
        assert_eq!(r["kind"], "storage", "{r}");
        let reason = r["reason"].as_str().unwrap();
        for want in [
            dir.as_str(),
            "No space left on device",
            "free space",
            "previous kubeconfig is kept",
        ] {
            assert!(reason.contains(want), "missing {want:?}: {reason}");
        }
    }
    assert_eq!(yaml_files(&d.kubeconfig_dir), before, "old files intact");
    assert!(temp_files(&d.kubeconfig_dir).is_empty());
    let history = text(&d.nskctl(&["history"])).0;
    assert!(history.contains("No space left on device"), "{history}");
    // ...and usable.
    let shim = Shim::start(&d.socket).await;
    let ns = shim
        .ok(
            "namespaces_list",
            json!({"cluster": "c1-dfw1", "labelSelector": "cluster=c1-dfw1"}),
        )
        .await;
    assert_eq!(crate::data_rows(&ns).len(), 3, "{ns}");

    // Space freed: the next refresh succeeds.
    std::fs::remove_file(&filler).unwrap();
    let (ok, _) = timed_refresh(&d, &["--force"]);
    assert_eq!(ok["outcome"], "Success", "{ok}");
    for bytes in yaml_files(&d.kubeconfig_dir).values() {
        assert!(String::from_utf8_lossy(bytes).ends_with("# generation 2\n"));
    }
    shim.close().await;
    d.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_and_reads_run_one_refresh_and_never_fail_or_tear() {
    let Some(rig) = rig_or_skip() else { return };
    let (mut d, fake, _home) = nsk_prepared(
        shared_clusters(rig),
        FakeState {
            generation: 1,
            pad_bytes: 64 * 1024,
            ..FakeState::default()
        },
        false,
        "probe_timeout = \"3s\"\nprobe_interval = \"1h\"",
    );
    d.spawn();
    let (first, _) = timed_refresh(&d, &[]);
    assert_eq!(first["outcome"], "Success", "{first}\n{}", d.log_text());
    let old = yaml_files(&d.kubeconfig_dir);
    fake.update(|s| {
        s.generation = 2;
        s.slow_ms = 1500;
    });
    let lists_before = fake
        .calls()
        .iter()
        .filter(|c| c["argv"][1] == "list")
        .count();

    // Readers: two sessions listing all three clusters, and a reader of the files.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let socket = d.socket.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let shim = Shim::start(&socket).await;
                let mut calls = 0;
                let mut failures = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let a = shim
                        .call("namespaces_list", json!({"clusters": SHARED}))
                        .await;
                    calls += 1;
                    if a.is_error || a.text.contains("(error)") {
                        failures.push(a.text);
                    }
                }
                shim.close().await;
                (calls, failures)
            })
        })
        .collect();
    let file_reader = {
        let dir = d.kubeconfig_dir.clone();
        let stop = stop.clone();
        let old = old.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for (name, old_bytes) in &old {
                    let bytes = std::fs::read(dir.join(name)).expect("a kubeconfig vanished");
                    reads += 1;
                    let text = String::from_utf8_lossy(&bytes);
                    assert!(
                        bytes == *old_bytes
                            || (text.starts_with("apiVersion: v1")
                                && text.ends_with(&format!("# {}\n", "x".repeat(77)))
                                && text.contains("# generation 2\n")),
                        "torn {name}: {} bytes",
                        bytes.len()
                    );
                }
            }
            reads
        })
    };

    // Ten refreshes at once: eight nskctl, two MCP sessions.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let nskctls: Vec<_> = (0..8)
        .map(|_| {
            let socket = d.socket.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                nskd_e2e::daemon::nskctl(&socket, &["--json", "refresh", "--force"])
            })
        })
        .collect();
    let tools: Vec<_> = (0..2)
        .map(|_| {
            let socket = d.socket.clone();
            tokio::spawn(async move {
                let shim = Shim::start(&socket).await;
                let a = shim.call("nsk_refresh", json!({"force": true})).await;
                shim.close().await;
                a
            })
        })
        .collect();
    let started = Instant::now();
    let answers: Vec<Value> = nskctls
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(&out)))
        })
        .collect();
    let mut tool_answers = Vec::new();
    for t in tools {
        tool_answers.push(t.await.unwrap());
    }
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = file_reader.join().expect("a reader saw a torn file");
    let mut calls = 0;
    for r in readers {
        let (n, failures) = r.await.unwrap();
        assert!(
            failures.is_empty(),
            "reads failed during the refresh: {failures:?}"
        );
        calls += n;
    }
    eprintln!(
        "10 concurrent refreshes: {took:?}; {calls} MCP reads and {reads} file reads meanwhile"
    );

    assert!(
        answers.iter().all(|a| a["outcome"] == "Success"),
        "{answers:?}"
    );
    for a in &tool_answers {
        assert!(!a.is_error && a.text.contains("Success"), "{}", a.text);
    }
    let leaders = answers.iter().filter(|a| a["joined"] != true).count()
        + tool_answers
            .iter()
            .filter(|a| !a.text.contains("joined a refresh already running"))
            .count();
    let lists = fake
        .calls()
        .iter()
        .filter(|c| c["argv"][1] == "list")
        .count()
        - lists_before;
    assert_eq!(lists, 1, "one run for ten callers");
    assert_eq!(leaders, 1, "{answers:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(calls > 0 && reads > 0);
    for bytes in yaml_files(&d.kubeconfig_dir).values() {
        assert!(String::from_utf8_lossy(bytes).contains("# generation 2\n"));
    }
}

#[test]
fn a_refresh_whose_caller_goes_away_still_finishes_and_the_next_one_runs_anew() {
    let Some(rig) = rig_or_skip() else { return };
    let (mut d, fake, _home) = nsk_prepared(
        shared_clusters(rig),
        FakeState {
            slow_ms: 1000,
            ..FakeState::default()
        },
        false,
        "probe_timeout = \"3s\"\nprobe_interval = \"1h\"",
    );
    d.spawn();
    let mut caller = Command::new(bin("nskctl"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["refresh", "--force"])
        .env_remove("NSKD_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = eventually(5.0, || {
        d.log_text().contains("refresh started").then_some(())
    });
    assert!(started.is_some(), "{}", d.log_text());
    caller.kill().unwrap();
    caller.wait().unwrap();

    // The run goes on without its caller and lands in the history.
    let finished = eventually(10.0, || {
        let h = d.nskctl_json(&["history"]);
        let records = h["records"].as_array().cloned().unwrap_or_default();
        records
            .iter()
            .any(|r| r["outcome"] == "Success")
            .then_some(())
    });
    assert!(
        finished.is_some(),
        "the refresh of a caller that went away never finished:\n{}\n{}",
        d.nskctl_json(&["history"]),
        d.log_text()
    );
    assert_eq!(cluster_names(&d).len(), 3);

    // A later refresh is a new run, not the old result replayed.
    let lists = |fake: &FakeNsk| {
        fake.calls()
            .iter()
            .filter(|c| c["argv"][1] == "list")
            .count()
    };
    let before = lists(&fake);
    let (again, took) = timed_refresh(&d, &["--force"]);
    eprintln!("the next refresh after a caller went away, {took:?}: {again}");
    assert_eq!(again["outcome"], "Success", "{again}");
    assert_ne!(again["joined"], true, "{again}");
    assert_eq!(lists(&fake), before + 1, "a new run");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Runs `nskd` on `d`'s config and socket, expecting it to refuse within
/// 10 s; returns its stderr.
fn nskd_refuses(d: &Daemon) -> String {
    let mut child = Command::new(bin("nskd"))
        .arg("--config")
        .arg(&d.config)
        .arg("--socket")
        .arg(&d.socket)
        .env_remove("NSKD_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let refused = eventually(10.0, || child.try_wait().unwrap());
    if refused.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("nskd started instead of refusing");
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_socket_of_another_user_is_never_removed_and_its_directory_is_refused() {
    let Some(rig) = rig_or_skip() else { return };
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!(
            "SKIPPED a_socket_of_another_user_is_never_removed...: needs root to chown files to uid 65534"
        );
        return;
    }
    let d = Daemon::prepare(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &["c1-sv5"])
    });
    let run = d.socket.parent().unwrap();
    std::fs::create_dir(run).unwrap();
    std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let nobody = Some(rustix::fs::Uid::from_raw(65534));
    let nobody_gid = Some(rustix::fs::Gid::from_raw(65534));

    // A socket left by another user (its listener gone) in our directory.
    drop(std::os::unix::net::UnixListener::bind(&d.socket).unwrap());
    rustix::fs::chown(&d.socket, nobody, nobody_gid).unwrap();
    let inode = std::fs::metadata(&d.socket).unwrap().ino();
    let started = Instant::now();
    let stderr = nskd_refuses(&d);
    eprintln!(
        "another user's socket, after {:?}: {stderr}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let path = d.socket.display().to_string();
    for want in [path.as_str(), "uid 65534", "--socket"] {
        assert!(stderr.contains(want), "missing {want:?}: {stderr}");
    }
    let meta = std::fs::metadata(&d.socket).expect("another user's socket was deleted");
    assert_eq!((meta.ino(), meta.uid()), (inode, 65534));

    // The socket directory itself belonging to another user.
    rustix::fs::chown(run, nobody, nobody_gid).unwrap();
    let stderr = nskd_refuses(&d);
    eprintln!("another user's socket directory: {stderr}");
    let dir = run.display().to_string();
    for want in [
        dir.as_str(),
        "belongs to uid 65534",
        "use a directory you own (--socket)",
    ] {
        assert!(stderr.contains(want), "missing {want:?}: {stderr}");
    }
    assert_eq!(std::fs::metadata(&d.socket).unwrap().ino(), inode);
}
