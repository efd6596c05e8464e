//! Two replicas, one refresher: two nskd processes share a Lease and the
//! kubeconfig Secrets in a scratch namespace of a rig apiserver (the
//! "home" cluster); the fake Rancher is their source.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    fake_rancher::FakeRancher,
    kubeapi,
    mcp::Shim,
    rig::{Rig, SHARED},
};
use serde_json::{Value, json};

use crate::{eventually, rig_or_skip};

const HOME: &str = "c1-sv5";
const LEASE_SECS: u64 = 4;

/// A namespace on the home cluster, emptied and deleted when dropped.
struct Scratch {
    rig: &'static Rig,
    namespace: String,
    _namespaces: tokio::sync::RwLockWriteGuard<'static, ()>,
}

impl Scratch {
    fn new(rig: &'static Rig) -> Scratch {
        let guard = tokio::task::block_in_place(|| nskd_e2e::rig::NAMESPACES.blocking_write());
        let namespace = format!("nskd-replicas-{}", std::process::id());
        kubeapi::call(
            rig.cluster(HOME),
            "POST",
            "/api/v1/namespaces",
            Some(&json!({"metadata": {"name": namespace}}).to_string()),
        );
        Scratch {
            rig,
            namespace,
            _namespaces: guard,
        }
    }

    fn secrets(&self) -> Vec<Value> {
        let path = format!("/api/v1/namespaces/{}/secrets", self.namespace);
        let list: Value =
            serde_json::from_str(&kubeapi::call(self.rig.cluster(HOME), "GET", &path, None))
                .unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["type"] == "nskd.io/kubeconfig")
            .cloned()
            .collect()
    }

    /// Creates `secret` as the admin (the body through a file: a huge one
    /// does not fit in an argument).
    fn plant(&self, secret: Value) {
        let c = self.rig.cluster(HOME);
        let body = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(body.path(), secret.to_string()).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "POST", "--cacert"])
            .arg(&c.ca)
            .args(["-H", &format!("Authorization: Bearer {}", c.admin_token)])
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", body.path().display()))
            .arg(format!(
                "{}/api/v1/namespaces/{}/secrets",
                c.server, self.namespace
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "planting a Secret failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    fn lease_holder(&self) -> Option<String> {
        let path = format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases/nskd-e2e-refresher",
            self.namespace
        );
        let lease: Value = serde_json::from_str(
            &kubeapi::try_call(self.rig.cluster(HOME), "GET", &path, None).ok()?,
        )
        .ok()?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_string)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let c = self.rig.cluster(HOME);
        let ns = &self.namespace;
        let _ = kubeapi::try_call(
            c,
            "DELETE",
            &format!("/api/v1/namespaces/{ns}/secrets"),
            None,
        );
        let _ = kubeapi::try_call(
            c,
            "DELETE",
            &format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"),
            None,
        );
        let path = format!("/api/v1/namespaces/{ns}");
        let _ = kubeapi::try_call(c, "DELETE", &path, None);
        let finalized = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns}, "spec": {"finalizers": []},
        });
        let _ = kubeapi::try_call(
            c,
            "PUT",
            &format!("{path}/finalize"),
            Some(&finalized.to_string()),
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Replica {
    daemon: Daemon,
    port: u16,
}

impl Replica {
    fn start(rig: &Rig, rancher: &FakeRancher, scratch: &Scratch, pod: &str) -> Replica {
        let port = free_port();
        let spec = DaemonSpec {
            sections: format!(
                "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n\
                 [nsk]\nsource = \"rancher\"\nrancher_url = {:?}\nrancher_token = {:?}\nrancher_ca_file = {:?}\n\
                 auto_refresh = true\nrefresh_interval = \"1h\"\nmin_force_interval = \"0s\"\n\
                 [replication]\nnamespace = {:?}\nlease = \"nskd-e2e-refresher\"\nlease_duration = \"{LEASE_SECS}s\"\nkubeconfig = {:?}\n",
                rancher.url,
                rancher.token,
                rancher.ca_file.display().to_string(),
                scratch.namespace,
                rig.cluster(HOME).kubeconfig.display().to_string(),
            ),
            server: format!("port = {port}\n"),
            env: vec![("POD_NAME".into(), pod.into())],
            ..DaemonSpec::default()
        };
        Replica {
            daemon: Daemon::start(&spec, |_| {}),
            port,
        }
    }

    fn info(&self) -> Value {
        self.daemon.nskctl_json(&["version"])["nskd"].clone()
    }

    fn role(&self) -> String {
        self.info()["replication"]["role"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn clusters(&self) -> Vec<String> {
        self.daemon.nskctl_json(&["clusters"])["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["error"].as_str().unwrap_or_default().is_empty())
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn http(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn readyz(&self) -> (u16, Value) {
        let (code, body) = self.http("/readyz");
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn history(&self) -> Vec<Value> {
        self.daemon.nskctl_json(&["history"])["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Every cluster answers through this replica's socket with its own data.
async fn answers(r: &Replica, who: &str) {
    let shim = Shim::start(&r.daemon.socket).await;
    for name in SHARED {
        let own = shim
            .ok(
                "namespaces_list",
                json!({"cluster": name, "labelSelector": format!("cluster={name}")}),
            )
            .await;
        assert_eq!(
            crate::data_rows(&own).len(),
            3,
            "{who}, {name}: {own}\n{}",
            r.daemon.log_text()
        );
    }
}

/// Every kubeconfig Secret is a whole, valid kubeconfig of its cluster.
fn assert_whole(secrets: &[Value]) -> Vec<String> {
    let mut clusters = Vec::new();
    for s in secrets {
        let cluster = s["metadata"]["annotations"]["nskd.io/cluster"]
            .as_str()
            .unwrap()
            .to_string();
        let data = base64::engine::general_purpose::STANDARD
            .decode(s["data"]["kubeconfig"].as_str().unwrap())
            .unwrap();
        let config: Value = yaml_serde::from_slice(&data)
            .unwrap_or_else(|e| panic!("{cluster}: Secret is not whole YAML: {e}"));
        let server = config["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap_or_default();
        assert!(server.contains("/k8s/clusters/c-m-"), "{cluster}: {config}");
        let token = config["users"][0]["user"]["token"]
            .as_str()
            .unwrap_or_default();
        assert!(
            token.starts_with("kubeconfig-u-fake"),
            "{cluster}: torn token"
        );
        assert!(
            !config["contexts"].as_array().unwrap().is_empty(),
            "{cluster}"
        );
        clusters.push(cluster);
    }
    clusters.sort();
    clusters
}

fn sorted_shared() -> Vec<String> {
    let mut v: Vec<String> = SHARED.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_mid_refresh_is_replaced_and_no_kubeconfig_is_lost_or_torn() {
    let Some(rig) = rig_or_skip() else { return };
    let scratch = Scratch::new(rig);
    let home = tempfile::tempdir().unwrap();
    let rancher = crate::rancher::start_rancher(rig, home.path());

    let mut a = Replica::start(rig, &rancher, &scratch, "replica-a");
    // A holds the Lease and publishes the three kubeconfigs.
    eventually(20.0, || (scratch.secrets().len() == 3).then_some(()))
        .unwrap_or_else(|| panic!("A published no Secrets:\n{}", a.daemon.log_text()));
    assert_eq!(a.role(), "leader");
    assert_eq!(scratch.lease_holder().as_deref(), Some("replica-a"));
    let b = Replica::start(rig, &rancher, &scratch, "replica-b");
    // B takes the kubeconfigs from the Secrets, without fetching.
    eventually(15.0, || (b.clusters() == sorted_shared()).then_some(()))
        .unwrap_or_else(|| panic!("B has no clusters:\n{}", b.daemon.log_text()));
    assert_eq!(b.role(), "follower");
    assert_eq!(b.info()["replication"]["holder"], "replica-a");
    assert!(
        b.history().is_empty(),
        "a follower refreshed: {:?}",
        b.history()
    );
    let (code, ready) = b.readyz();
    assert_eq!(code, 200, "{ready}");
    assert_eq!(ready["role"], "follower", "{ready}");
    assert_eq!(ready["lease_holder"], "replica-a", "{ready}");
    assert!(ready["last_secrets_sync"].is_string(), "{ready}");
    assert_eq!(ready["components"]["replication"]["ready"], true, "{ready}");
    // A follower does not refresh; it says who does.
    let refused = b.daemon.nskctl(&["refresh", "--force"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("replica-a holds the refresher Lease"),
        "{refused:?}"
    );
    answers(&a, "A").await;
    answers(&b, "B").await;

    // A slow refresh on A, killed in the middle.
    rancher.update(|s| s.slow_ms = 700);
    let requests_before = rancher.requests().len();
    let mut refresh = Command::new(nskd_e2e::bins::bin("nskctl"))
        .arg("--socket")
        .arg(&a.daemon.socket)
        .args(["refresh", "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(10.0, || {
        rancher
            .requests()
            .iter()
            .skip(requests_before)
            .any(|r| {
                r["path"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("generateKubeconfig")
            })
            .then_some(())
    })
    .expect("the refresh did not reach generateKubeconfig");
    a.daemon.kill();
    let killed = Instant::now();
    let _ = refresh.wait();

    // B takes over within the lease duration (plus a renew period and slack).
    eventually((LEASE_SECS * 2 + 2) as f64, || {
        (b.role() == "leader").then_some(())
    })
    .unwrap_or_else(|| panic!("B did not take over:\n{}", b.daemon.log_text()));
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(LEASE_SECS + LEASE_SECS / 3 + 3),
        "takeover took {took:?}"
    );
    assert_eq!(scratch.lease_holder().as_deref(), Some("replica-b"));
    // B refreshes at once on taking over.
    let record = eventually(30.0, || {
        b.history()
            .into_iter()
            .find(|r| r["trigger"] == "takeover" && r["outcome"] == "Success")
    })
    .unwrap_or_else(|| panic!("B did not refresh:\n{}", b.daemon.log_text()));
    assert_eq!(record["listed"], 3, "{record}");
    rancher.update(|s| s.slow_ms = 0);
    // No kubeconfig lost, none torn, and every Secret is B's fresh one.
    let published = eventually(10.0, || {
        let secrets = scratch.secrets();
        (assert_whole(&secrets) == sorted_shared()).then_some(secrets)
    })
    .expect("three whole Secrets");
    assert_eq!(published.len(), 3);
    answers(&b, "B after the takeover").await;

    // A comes back as a follower and serves again, from the Secrets.
    a.daemon.spawn();
    eventually(15.0, || (a.clusters() == sorted_shared()).then_some(()))
        .unwrap_or_else(|| panic!("A has no clusters:\n{}", a.daemon.log_text()));
    assert_eq!(a.role(), "follower");
    answers(&a, "A restarted").await;
    let (code, ready) = a.readyz();
    assert_eq!((code, &ready["role"]), (200, &json!("follower")), "{ready}");

    // Hostile Secrets planted in the namespace are refused, logged, counted.
    let labels = json!({"app.kubernetes.io/managed-by": "nskd", "nskd.io/environment": "e2e"});
    let plant = |name: &str, cluster: &str, kubeconfig: &str| {
        scratch.plant(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "nskd.io/kubeconfig",
            "metadata": {"name": name, "labels": labels, "annotations": {"nskd.io/cluster": cluster}},
            "data": {"kubeconfig": base64::engine::general_purpose::STANDARD.encode(kubeconfig)},
        }))
    };
    let good = base64::engine::general_purpose::STANDARD
        .decode(published[0]["data"]["kubeconfig"].as_str().unwrap())
        .unwrap();
    let good = String::from_utf8(good).unwrap();
    // A name nskd would not give the cluster.
    plant("nskd-kubeconfig-evil", "evil-name", &good);
    // The right name, but a kubeconfig that runs a program.
    let exec = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: {}/k8s/clusters/c-m-0001\ncontexts:\n- name: x\n  context:\n    cluster: x\n    user: x\nusers:\n- name: x\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch /tmp/pwned\"]\ncurrent-context: x\n",
        rancher.url
    );
    plant(&secret_name("evil-exec"), "evil-exec", &exec);
    // The right name, but far too large.
    let huge = format!("{good}\n# {}\n", "x".repeat(300 * 1024));
    plant(&secret_name("evil-huge"), "evil-huge", &huge);
    for (r, who) in [(&a, "A"), (&b, "B")] {
        let log = eventually(10.0, || {
            let log = r.daemon.log_text();
            (log.matches("refused a kubeconfig Secret").count() >= 3).then_some(log)
        })
        .unwrap_or_else(|| panic!("{who} did not refuse:\n{}", r.daemon.log_text()));
        assert!(
            !log.contains("touch /tmp/pwned"),
            "{who} logged Secret data"
        );
        assert!(
            !log.contains("xxxxxxxxxxxxxxxx"),
            "{who} logged Secret data"
        );
        assert_eq!(r.clusters(), sorted_shared(), "{who}");
        let (_, metrics) = r.http("/metrics");
        for reason in ["name", "untrusted", "size"] {
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with("nskd_replication_secrets_refused_total")
                        && l.contains(&format!("reason=\"{reason}\""))),
                "{who}: no {reason} refusal counted:\n{metrics}"
            );
        }
        assert_eq!(r.info()["replication"]["secrets_refused"], 3, "{who}");
    }
    assert!(!std::path::Path::new("/tmp/pwned").exists());
    answers(&a, "A after the planted Secrets").await;
    answers(&b, "B after the planted Secrets").await;

    // A leader that stops cleanly releases the Lease: A takes over sooner
    // than the Lease could expire.
    let mut b = b;
    b.daemon.terminate();
    let stopped = Instant::now();
    eventually(LEASE_SECS as f64, || (a.role() == "leader").then_some(()))
        .unwrap_or_else(|| panic!("A did not take over:\n{}", a.daemon.log_text()));
    assert!(stopped.elapsed() < Duration::from_secs(LEASE_SECS));
    assert!(
        b.daemon.log_text().contains("Lease released"),
        "{}",
        b.daemon.log_text()
    );
    assert_eq!(scratch.lease_holder().as_deref(), Some("replica-a"));
    answers(&a, "A leading again").await;
}

/// The Secret name nskd gives `cluster` in the `e2e` environment
/// (daemon/src/replication/secrets.rs).
fn secret_name(cluster: &str) -> String {
    use sha2::Digest;
    let readable: String = cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let hash = sha2::Sha256::digest(format!("e2e/{cluster}").as_bytes());
    let hash: String = hash[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("nskd-kubeconfig-{}-{hash}", readable.trim_matches('-'))
}
