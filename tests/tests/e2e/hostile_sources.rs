//! Hostile kubeconfig sources: a fake nsk and a fake Rancher that hand out
//! kubeconfigs with exec plugins, token files, file paths, auth providers,
//! proxies, TLS off and foreign servers; a directory of the user's own files
//! that are shared, foreign-owned or need a plugin. Nothing runs, nothing is
//! sent elsewhere, the refused field is shown, the good cluster keeps working.

use std::{os::unix::fs::PermissionsExt, path::Path};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec, text},
    fake_nsk::{FakeCluster, FakeNsk, FakeState},
    fake_rancher::{FakeRancher, RancherCluster, RancherState},
    hostile::{Hostile, Tripwire},
    mcp::Shim,
    rig::{Rig, RigCluster},
};
use serde_json::{Value, json};

use crate::{eventually, rig_or_skip};

const TOKEN: &str = "token-e2e02:HOSTILESECRETTOKEN0123456789";
const GOOD: &str = "c1-sv5";

/// The status row of `name` once its error mentions `want`.
fn status_with(d: &Daemon, name: &str, want: &str, secs: f64) -> Value {
    let mut last = Value::Null;
    let found = eventually(secs, || {
        // Unknown until the first refresh has run: keep asking.
        let out = d.nskctl(&["--json", "status", name]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        last = v["clusters"][0].clone();
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains(want))
            .then(|| last.clone())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name}: no error mentioning {want:?}; last status row: {last}\n{}",
            d.log_text()
        )
    })
}

/// Each hostile cluster is Unknown naming its field; the good one answers.
async fn assert_refused_and_good_served(d: &Daemon, hostile: &[(String, Hostile)]) {
    for (name, h) in hostile {
        let row = status_with(d, name, h.field(), 20.0);
        assert_eq!(row["status"], "Unknown", "{name}: {row}");
        assert!(
            !d.kubeconfig_dir.join(format!("{name}.yaml")).exists(),
            "the refused kubeconfig of {name} was stored"
        );
    }
    let good = eventually(20.0, || {
        let row = d.status_json(&[GOOD])["clusters"][0].clone();
        (row["status"] == "Ready").then_some(row)
    });
    assert!(good.is_some(), "{GOOD} not Ready:\n{}", d.log_text());
    let shim = Shim::start(&d.socket).await;
    let ns = shim.ok("namespaces_list", json!({"cluster": GOOD})).await;
    assert!(ns.contains("kube-system"), "{ns}");
    let status = shim.ok("clusters_status", json!({})).await;
    // The agent's view: every hostile cluster Unknown (its ERRORS cell is
    // shortened; the full reason is the one checked above).
    for (name, _) in hostile {
        let row = status.lines().find(|l| l.starts_with(&format!("{name} ")));
        assert!(
            row.is_some_and(|r| r.contains("Unknown")),
            "clusters_status row of {name}:\n{status}"
        );
    }
    shim.close().await;
}

/// Nothing ran and nothing was sent anywhere else.
fn assert_nothing_ran(work: &Path, tripwires: &[&Tripwire]) {
    assert!(
        !work.join("exec-ran").exists(),
        "the exec plugin of a fetched kubeconfig ran"
    );
    for t in tripwires {
        assert_eq!(t.hits(), 0, "{} was contacted", t.url("tcp"));
    }
}

/// The hostile modes, their listeners, and the token file holding a real
/// admin token (so a token file that was read would authenticate).
fn hostile_modes(work: &Path, good: &RigCluster) -> (Vec<Hostile>, Tripwire, Tripwire) {
    let proxy = Tripwire::bind("127.0.0.1");
    let foreign = Tripwire::bind("127.0.0.2");
    std::fs::write(work.join("token-file"), &good.admin_token).unwrap();
    std::fs::copy(&good.ca, work.join("client.pem")).unwrap();
    let modes = Hostile::all(work, &proxy.url("http"), &foreign.url("https"));
    (modes, proxy, foreign)
}

fn nsk_spec(rig: &Rig, fake: &FakeNsk, confdir: &Path, extra: &str) -> DaemonSpec {
    DaemonSpec {
        sections: format!(
            "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n[nsk]\nsource = \"nsk\"\nnsk_path = {:?}\nrancher_url = {:?}\nrancher_token = {TOKEN:?}\nconfig_dir = {:?}\nauto_refresh = true\nrefresh_interval = \"1h\"\nmin_force_interval = \"0s\"\n{extra}",
            fake.path().display().to_string(),
            rig.cluster(GOOD).server,
            confdir.display().to_string(),
        ),
        env: vec![("GITHUB_TOKEN".into(), "ghp_HOSTILEGITHUBTOKEN".into())],
        ..DaemonSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsk_source_refuses_hostile_kubeconfigs_and_keeps_serving_the_good_one() {
    let Some(rig) = rig_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let good = rig.cluster(GOOD);
    let (modes, proxy, foreign) = hostile_modes(work.path(), good);
    // Every hostile kubeconfig is the good one (same server, the pinned
    // Rancher URL) plus one hostile field: only that field can refuse it.
    let base = FakeCluster::from_rig(good, "c-m-0000");
    let mut clusters = vec![base.clone()];
    let mut hostile = Vec::new();
    for (i, h) in modes.into_iter().enumerate() {
        let name = format!("hostile-{i}");
        clusters.push(base.renamed(&name, &format!("c-m-10{i}")).hostile(&h));
        hostile.push((name, h));
    }
    // A hostile file already on disk, which the source fails to replace.
    let planted = Hostile::ProxyUrl {
        url: proxy.url("http"),
    };
    clusters.push(base.renamed("planted", "c-m-0099"));
    let fake = FakeNsk::create(
        &work.path().join("fake"),
        FakeState {
            expected_token: Some(TOKEN.into()),
            clusters,
            fail_clusters: vec!["planted".into()],
            ..FakeState::default()
        },
    );
    let spec = nsk_spec(rig, &fake, &work.path().join("nskconf"), "");
    let planted_text = std::fs::read_to_string(&good.kubeconfig).unwrap().replacen(
        "server:",
        &format!("proxy-url: {}\n    server:", planted_url(&planted)),
        1,
    );
    let d = Daemon::start(&spec, |dir| {
        std::fs::write(dir.join("planted.yaml"), &planted_text).unwrap();
    });

    assert_refused_and_good_served(&d, &hostile).await;
    let row = status_with(&d, "planted", "clusters[0].cluster.proxy-url", 20.0);
    assert_eq!(row["status"], "Unknown", "{row}");
    assert_nothing_ran(work.path(), &[&proxy, &foreign]);

    // The nsk child never gets the daemon's GITHUB_TOKEN.
    let calls = fake.calls();
    assert!(!calls.is_empty());
    for call in &calls {
        assert_eq!(call["github_token_set"], false, "{call}");
        assert!(
            !call["env_names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "GITHUB_TOKEN"),
            "{call}"
        );
    }
    assert!(!d.log_text().contains("HOSTILESECRETTOKEN"));
}

fn planted_url(h: &Hostile) -> String {
    match h {
        Hostile::ProxyUrl { url } => url.clone(),
        _ => unreachable!("only the proxy mode is planted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rancher_source_refuses_hostile_kubeconfigs_and_keeps_serving_the_good_one() {
    let Some(rig) = rig_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let good = rig.cluster(GOOD);
    let (modes, proxy, foreign) = hostile_modes(work.path(), good);
    let mut clusters = vec![RancherCluster::from_rig(good, "c-m-0001")];
    let mut hostile = Vec::new();
    for (i, h) in modes.into_iter().enumerate() {
        let name = format!("hostile-{i}");
        clusters.push(
            RancherCluster {
                name: name.clone(),
                ..RancherCluster::from_rig(good, &format!("c-m-10{i}"))
            }
            .hostile(&h),
        );
        hostile.push((name, h));
    }
    let rancher = FakeRancher::start(
        &work.path().join("rancher"),
        RancherState {
            clusters,
            ..RancherState::default()
        },
    );
    let spec = DaemonSpec {
        sections: format!(
            "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n[nsk]\nsource = \"rancher\"\nrancher_url = {:?}\nrancher_token = {:?}\nrancher_ca_file = {:?}\nauto_refresh = true\nmin_force_interval = \"0s\"\n",
            rancher.url,
            rancher.token,
            rancher.ca_file.display().to_string(),
        ),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |_| {});
    assert_refused_and_good_served(&d, &hostile).await;
    assert_nothing_ran(work.path(), &[&proxy, &foreign]);

    // nsk_get without save fetches nothing (no new Rancher credential).
    let shim = Shim::start(&d.socket).await;
    let got = shim.ok("nsk_get", json!({"cluster_name": GOOD})).await;
    assert!(got.contains("nothing fetched"), "{got}");
    let missing = shim
        .err("nsk_get", json!({"cluster_name": "hostile-0"}))
        .await;
    assert!(missing.contains("save: true"), "{missing}");
    let fetched = shim
        .err(
            "nsk_get",
            json!({"cluster_name": "hostile-0", "save": true}),
        )
        .await;
    assert!(fetched.contains("users[0].user.exec"), "{fetched}");
    shim.close().await;
    assert_nothing_ran(work.path(), &[&proxy, &foreign]);
}

/// A kubeconfig for the rig cluster `c` whose user runs `plugin`.
fn exec_kubeconfig(c: &RigCluster, plugin: &Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {:?}\n    certificate-authority: {:?}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {:?}\n      env: [{{name: PLUGIN_OWN, value: \"yes\"}}]\n      interactiveMode: Never\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
        c.server,
        c.ca.display().to_string(),
        plugin.display().to_string(),
    )
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_source_refuses_shared_foreign_and_plugin_kubeconfigs() {
    let Some(rig) = rig_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let good = rig.cluster(GOOD);
    let marker = work.path().join("exec-ran");
    let plugin = work.path().join("plugin.sh");
    script(
        &plugin,
        &format!("touch {:?}\nexit 1", marker.display().to_string()),
    );
    let kc = std::fs::read_to_string(&good.kubeconfig).unwrap();
    let foreign_owner = rustix::process::geteuid().is_root();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        std::fs::write(dir.join(format!("{GOOD}.yaml")), &kc).unwrap();
        let shared = dir.join("shared.yaml");
        std::fs::write(&shared, &kc).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o664)).unwrap();
        std::fs::write(dir.join("plug.yaml"), exec_kubeconfig(good, &plugin)).unwrap();
        if foreign_owner {
            let foreign = dir.join("foreign.yaml");
            std::fs::write(&foreign, &kc).unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        }
    });
    let row = status_with(&d, "shared", "chmod go-w", 10.0);
    assert_eq!(row["status"], "Unknown", "{row}");
    assert!(row["error"].as_str().unwrap().contains("0664"), "{row}");
    let row = status_with(&d, "plug", "users[0].user.exec", 10.0);
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .contains("allow_exec_plugins"),
        "{row}"
    );
    if foreign_owner {
        let row = status_with(&d, "foreign", "uid 65534", 10.0);
        assert_eq!(row["status"], "Unknown", "{row}");
    } else {
        eprintln!("not root: the foreign-owner case is not checked");
    }
    let good_row = eventually(20.0, || {
        let row = d.status_json(&[GOOD])["clusters"][0].clone();
        (row["status"] == "Ready").then_some(row)
    });
    assert!(good_row.is_some(), "{}", d.log_text());
    assert!(!marker.exists(), "a plugin ran without allow_exec_plugins");

    // check-config says which files will be refused.
    let out = std::process::Command::new(nskd_e2e::bins::bin("nskd"))
        .args(["check-config", "--config"])
        .arg(&d.config)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("shared.yaml") && all.contains("users[0].user.exec"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_in_plugins_run_with_a_cleared_environment_and_a_timeout() {
    let Some(rig) = rig_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let good = rig.cluster(GOOD);
    let dump = work.path().join("plugin-env");
    let plugin = work.path().join("plugin.sh");
    let credential = json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": good.admin_token, "expirationTimestamp": "2099-01-01T00:00:00Z"},
    });
    script(
        &plugin,
        &format!(
            "env > {:?}\necho '{credential}'",
            dump.display().to_string()
        ),
    );
    let pidfile = work.path().join("sleeper.pid");
    let sleeper = work.path().join("sleeper.sh");
    script(
        &sleeper,
        &format!(
            "echo $$ > {:?}\nexec sleep 1000",
            pidfile.display().to_string()
        ),
    );
    let spec = DaemonSpec {
        sections: "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n[pool]\nrequest_timeout = \"3s\"\n[safety]\nallow_exec_plugins = true\n".into(),
        env: vec![
            ("RANCHER_TOKEN".into(), TOKEN.into()),
            ("NSKD_E2E_CANARY".into(), "canary".into()),
        ],
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| {
        std::fs::write(dir.join("plug.yaml"), exec_kubeconfig(good, &plugin)).unwrap();
        std::fs::write(dir.join("sleepy.yaml"), exec_kubeconfig(good, &sleeper)).unwrap();
    });

    // The plugin's credential works...
    let shim = Shim::start(&d.socket).await;
    let ns = shim.ok("namespaces_list", json!({"cluster": "plug"})).await;
    assert!(ns.contains("kube-system"), "{ns}");
    shim.close().await;
    // ...and it saw only PATH, HOME, its own env and KUBERNETES_EXEC_INFO.
    let env = std::fs::read_to_string(&dump).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert!(
        names.contains(&"PLUGIN_OWN") && names.contains(&"KUBERNETES_EXEC_INFO"),
        "{env}"
    );
    for n in &names {
        assert!(
            [
                "PATH",
                "HOME",
                "PLUGIN_OWN",
                "KUBERNETES_EXEC_INFO",
                "PWD",
                "SHLVL",
                "_"
            ]
            .contains(n),
            "{n} reached the plugin:\n{env}"
        );
    }
    assert!(
        !env.contains("HOSTILESECRETTOKEN") && !env.contains("canary"),
        "{env}"
    );

    // A plugin that never finishes is killed at the timeout, and says so.
    let row = status_with(&d, "sleepy", "did not finish within", 20.0);
    assert_eq!(row["status"], "Unknown", "{row}");
    assert!(
        row["error"].as_str().unwrap().contains("was killed"),
        "{row}"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = eventually(5.0, || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    assert!(gone.is_some(), "the sleeping plugin {pid} still runs");
    assert!(
        !d.log_text().contains(&good.admin_token),
        "the credential was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_paths_outside_nsk_confdir_are_refused() {
    let Some(rig) = rig_or_skip() else { return };
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let fake = FakeNsk::create(
        &work.path().join("fake"),
        FakeState {
            expected_token: Some(TOKEN.into()),
            clusters: vec![FakeCluster::from_rig(rig.cluster(GOOD), "c-m-0000")],
            bulk_dir: Some(outside.clone()),
            ..FakeState::default()
        },
    );
    let confdir = work.path().join("nskconf");
    let mut spec = nsk_spec(rig, &fake, &confdir, "bulk_refresh = true\n");
    spec.sections = spec
        .sections
        .replace("auto_refresh = true", "auto_refresh = false");
    let d = Daemon::start(&spec, |_| {});
    let out = d.nskctl(&["--json", "refresh", "--force"]);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("outside") && stdout.contains("refusing the kubeconfig nsk says it saved"),
        "{stdout}{stderr}"
    );
    assert!(!d.kubeconfig_dir.join(format!("{GOOD}.yaml")).exists());

    // The same nsk writing under NSK_CONFDIR is accepted.
    fake.update(|s| s.bulk_dir = None);
    let out = d.nskctl(&["--json", "refresh", "--force"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let stored = eventually(10.0, || {
        d.kubeconfig_dir
            .join(format!("{GOOD}.yaml"))
            .exists()
            .then_some(())
    });
    assert!(stored.is_some(), "{stdout}\n{}", d.log_text());
}
