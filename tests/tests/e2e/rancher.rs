//! The native Rancher source against the fake Rancher, which proxies
//! `/k8s/clusters/<id>` to the real test apiservers.

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec, text},
    fake_rancher::{FakeRancher, RancherCluster, RancherState},
    mcp::Shim,
    rig::{Rig, SHARED},
};
use serde_json::{Value, json};

use crate::{eventually, rig_or_skip};

const IDS: [&str; 3] = ["c-m-0001", "c-m-0002", "c-m-0003"];

/// The fake Rancher serving the three shared rig clusters (pages of 2).
pub fn start_rancher(rig: &Rig, dir: &std::path::Path) -> FakeRancher {
    let state = RancherState {
        page_size: 2,
        token_expires_at: Some("2027-01-01T00:00:00Z".into()),
        clusters: SHARED
            .iter()
            .zip(IDS)
            .map(|(n, id)| RancherCluster::from_rig(rig.cluster(n), id))
            .collect(),
        ..RancherState::default()
    };
    FakeRancher::start(dir, state)
}

/// A daemon on the Rancher source with the fake's token and `tls` keys.
pub fn rancher_daemon(rancher: &FakeRancher, tls: &str, auto_refresh: bool) -> Daemon {
    rancher_daemon_with(
        rancher,
        &format!("rancher_token = {:?}\n{tls}", rancher.token),
        auto_refresh,
    )
}

fn rancher_daemon_with(rancher: &FakeRancher, nsk_extra: &str, auto_refresh: bool) -> Daemon {
    let spec = DaemonSpec {
        sections: format!(
            "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"2s\"\n[nsk]\nsource = \"rancher\"\nrancher_url = {:?}\nauto_refresh = {auto_refresh}\nmin_force_interval = \"0s\"\n{nsk_extra}\n",
            rancher.url
        ),
        ..DaemonSpec::default()
    };
    Daemon::start(&spec, |_| {})
}

fn refresh(d: &Daemon, args: &[&str]) -> Value {
    let mut all = vec!["--json", "refresh"];
    all.extend_from_slice(args);
    let out = d.nskctl(&all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(&out)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rancher_clusters_are_served_through_their_own_proxy_path_only() {
    let Some(rig) = rig_or_skip() else { return };
    let home = tempfile::tempdir().unwrap();
    let rancher = start_rancher(rig, home.path());
    let d = rancher_daemon(
        &rancher,
        &format!(
            "rancher_ca_file = {:?}",
            rancher.ca_file.display().to_string()
        ),
        true,
    );
    let ready = eventually(10.0, || {
        let v = d.nskctl_json(&["clusters"]);
        (v["clusters"].as_array().unwrap().len() == 3).then_some(v)
    });
    let listed = ready.unwrap_or_else(|| panic!("clusters not fetched:\n{}", d.log_text()));
    for (name, id) in SHARED.iter().zip(IDS) {
        let c = listed["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap();
        assert_eq!(
            c["server"],
            format!("{}/k8s/clusters/{id}", rancher.url),
            "{c}"
        );
        assert_eq!(c["source"], "rancher", "{c}");
    }
    // Pagination: page_size 2 means at least two list requests.
    let pages = rancher
        .requests()
        .iter()
        .filter(|r| {
            let p = r["path"].as_str().unwrap_or("");
            r["method"] == "GET" && p.starts_with("/v3/clusters") && !p.starts_with("/v3/clusters/")
        })
        .count();
    assert!(pages >= 2, "{:?}", rancher.requests());

    // Each cluster answers with its own data: namespaces carry a cluster label.
    let shim = Shim::start(&d.socket).await;
    for name in SHARED {
        let own = shim
            .ok(
                "namespaces_list",
                json!({"cluster": name, "labelSelector": format!("cluster={name}")}),
            )
            .await;
        assert_eq!(crate::data_rows(&own).len(), 3, "{name}: {own}");
        for other in SHARED.iter().filter(|o| **o != name) {
            let foreign = shim
                .ok(
                    "namespaces_list",
                    json!({"cluster": name, "labelSelector": format!("cluster={other}")}),
                )
                .await;
            assert_eq!(
                crate::data_rows(&foreign).len(),
                0,
                "{name} answered with {other}'s data: {foreign}"
            );
        }
    }
    let pods = shim
        .ok(
            "pods_list",
            json!({"cluster": "c1-lax1", "namespace": "shop"}),
        )
        .await;
    assert_eq!(crate::data_rows(&pods).len(), 20, "{pods}");
    let status = d.status_json(&[]);
    assert!(
        status["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "Ready"),
        "{status}"
    );

    // A kubeconfig pointed at another cluster's path is refused by Rancher (401), not served.
    let stored = std::fs::read_to_string(d.kubeconfig_dir.join("c1-sv5.yaml")).unwrap();
    let crossed = stored.replace("/k8s/clusters/c-m-0001", "/k8s/clusters/c-m-0002");
    std::fs::write(d.kubeconfig_dir.join("c1-sv5.yaml"), crossed).unwrap();
    let refused = eventually(5.0, || {
        let a = d.status_json(&["c1-sv5"]);
        let c = &a["clusters"][0];
        (c["status"] != "Ready" && c["error"].as_str().unwrap_or("").contains("401")).then_some(())
    });
    assert!(
        refused.is_some(),
        "a kubeconfig for c-m-0001 must not reach c-m-0002: {}",
        d.status_json(&["c1-sv5"])
    );

    // Token expiry comes from /v3/tokens.
    let source = d.nskctl_json(&["source"]);
    assert_eq!(source["token_check"], "ok", "{source}");
    assert!(source["token_expiry_ms"].as_i64().unwrap() > 0, "{source}");

    // Never the token in outputs or logs.
    for tool in ["nsk_status", "clusters_refresh_status", "clusters_list"] {
        let out = shim.ok(tool, json!({})).await;
        assert!(
            !out.contains(&rancher.token) && !out.contains("SECRETSECRET"),
            "{tool} leaked the token:\n{out}"
        );
    }
    let got = shim.ok("nsk_get", json!({"cluster_name": "c1-dfw1"})).await;
    assert!(
        got.contains("c-m-0002") && !got.contains("kubeconfig-u-"),
        "{got}"
    );
    assert!(
        !d.log_text().contains("SECRETSECRET"),
        "token in the daemon log"
    );
    shim.close().await;
}

#[test]
fn rancher_faults_are_retried_or_explained_and_nothing_good_is_lost() {
    let Some(rig) = rig_or_skip() else { return };
    let home = tempfile::tempdir().unwrap();
    let rancher = start_rancher(rig, home.path());
    // The token from a 0600 file (as from a mounted Secret), re-read at every use.
    let token_file = home.path().join("rancher-token");
    std::fs::write(&token_file, "token-abcde:WRONGWRONGWRONGWRONG0000").unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let d = rancher_daemon_with(
        &rancher,
        &format!(
            "rancher_insecure = true\nrancher_token_file = {:?}",
            token_file.display().to_string()
        ),
        false,
    );
    let wrong = refresh(&d, &[]);
    assert_eq!(wrong["outcome"], "Failed", "{wrong}");
    assert!(wrong["error"].as_str().unwrap().contains("401"), "{wrong}");
    assert_eq!(wrong["error_kind"], "unauthorized", "{wrong}");
    std::fs::write(&token_file, &rancher.token).unwrap();
    let first = refresh(&d, &["--force"]);
    assert_eq!(first["outcome"], "Success", "{first}\n{}", d.log_text());

    // 503 twice, then fine: retried.
    rancher.update(|s| s.fail_first = 2);
    let retried = refresh(&d, &["--force"]);
    assert_eq!(retried["outcome"], "Success", "{retried}");
    // 429 with Retry-After: retried too.
    rancher.update(|s| {
        s.fail_first = 0;
        s.rate_limit_first = 1;
    });
    assert_eq!(refresh(&d, &["--force"])["outcome"], "Success");

    // generateKubeconfig failing for one cluster: Partial, its file kept.
    let before = std::fs::read(d.kubeconfig_dir.join("c1-dfw1.yaml")).unwrap();
    rancher.update(|s| {
        s.rate_limit_first = 0;
        s.fail_generate = vec!["c-m-0002".into()];
    });
    let partial = refresh(&d, &["--force"]);
    assert_eq!(partial["outcome"], "Partial", "{partial}");
    assert_eq!(
        std::fs::read(d.kubeconfig_dir.join("c1-dfw1.yaml")).unwrap(),
        before
    );

    // An expired token: not retried, says what to do, files kept.
    rancher.update(|s| {
        s.fail_generate.clear();
        s.token_expired = true;
    });
    rancher.clear_requests();
    let expired = refresh(&d, &["--force"]);
    assert_eq!(expired["outcome"], "Failed", "{expired}");
    assert!(
        expired["error"].as_str().unwrap().contains("renew"),
        "{expired}"
    );
    let v3 = rancher
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with("/v3/"))
        .count();
    assert_eq!(v3, 1, "auth failures are not retried");
    assert_eq!(
        d.nskctl_json(&["clusters"])["clusters"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(!d.log_text().contains("SECRETSECRET"));
}

#[test]
fn an_untrusted_rancher_certificate_is_refused_with_a_clear_error() {
    let Some(rig) = rig_or_skip() else { return };
    let home = tempfile::tempdir().unwrap();
    let rancher = start_rancher(rig, home.path());
    let d = rancher_daemon(&rancher, "", false);
    let failed = refresh(&d, &[]);
    assert_eq!(failed["outcome"], "Failed", "{failed}");
    let error = failed["error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("unknownissuer"),
        "{error}"
    );
}

/// The gRPC status of a FetchKubeconfig (save) that must fail.
fn fetch_status(d: &Daemon, cluster: &str) -> tonic::Status {
    let location = nskd_proto::socket::SocketLocation {
        environment: "e2e".into(),
        path: d.socket.clone(),
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = nskd_proto::client::NskdClient::connect(&location, "e2e")
            .await
            .unwrap();
        client
            .clusters()
            .fetch_kubeconfig(client.request(nskd_proto::v1::FetchKubeconfigRequest {
                cluster_name: cluster.into(),
                save: true,
            }))
            .await
            .expect_err("fetching from a failing Rancher must fail")
    })
}

#[test]
fn a_failing_or_slow_rancher_ends_in_a_clear_failure_after_retries() {
    let Some(rig) = rig_or_skip() else { return };
    let home = tempfile::tempdir().unwrap();
    let rancher = start_rancher(rig, home.path());
    let d = rancher_daemon(&rancher, "rancher_insecure = true\ntimeout = \"1s\"", false);
    assert_eq!(refresh(&d, &[])["outcome"], "Success");
    rancher.update(|s| s.fail_status = Some(503));
    rancher.clear_requests();
    let started = std::time::Instant::now();
    let down = refresh(&d, &["--force"]);
    // 3 jittered backoffs, at most 2 + 4 + 8 s.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert_eq!(down["outcome"], "Failed", "{down}");
    assert!(down["error"].as_str().unwrap().contains("503"), "{down}");
    assert_eq!(down["error_kind"], "unavailable", "{down}");
    let v3 = rancher
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with("/v3/"))
        .count();
    assert_eq!(v3, 4, "one attempt and 3 retries");
    // A Rancher outage reaches gRPC as Unavailable (not bad input), kind said.
    let status = fetch_status(&d, "c1-sv5");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(
        nskd_proto::error_kind::kind_of(&status),
        nskd_proto::v1::ErrorKind::Unavailable
    );
    assert!(status.message().contains("503"), "{status:?}");
    rancher.update(|s| {
        s.fail_status = None;
        s.slow_ms = 1500;
    });
    let started = std::time::Instant::now();
    let slow = refresh(&d, &["--force"]);
    // 4 attempts cut at 1 s, and the backoffs.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(25), "{took:?}");
    assert_eq!(slow["outcome"], "Failed", "{slow}");
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{slow}"
    );
    assert_eq!(slow["error_kind"], "timeout", "{slow}");
    assert_eq!(
        d.nskctl_json(&["clusters"])["clusters"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "kubeconfigs kept"
    );
}
