//! Searching logs (issue 15, item 6): `pods_log` with `grep`, `sinceTime`,
//! `timestamps` and `labelSelector`, one cluster and several, through the
//! real shim, daemon and apiserver to the fake kubelet
//! (tests/rig/fake-kubelet.py, whose line `i` ends in " level=error" when
//! `--error-every` divides it). Abuse of the new arguments is judged by what
//! the apiserver received (its audit log).

use nskd_e2e::{
    apiserver_audit::{AuditLog, Event, now_stamp},
    daemon::{Daemon, DaemonSpec},
    mcp::Shim,
    rig::{DISRUPTABLE, Rig},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

/// A second cluster name for the disruptable cluster's apiserver (fan-out).
const ALIAS: &str = "logs-alias";
/// A Running pod of `shop` on a node (seed.py), and its only container.
const POD: &str = "frontend-00";
const CONTAINER: &str = "frontend";

fn spec(max_bytes: usize) -> DaemonSpec {
    DaemonSpec {
        default_cluster: Some(DISRUPTABLE.into()),
        sections: format!(
            "[health]\nprobe_timeout = \"3s\"\nprobe_interval = \"1h\"\n[output]\nmax_bytes = {max_bytes}\n"
        ),
        ..DaemonSpec::default()
    }
}

/// A daemon on the disruptable cluster (as the `nskd` user, for the audit
/// log) and on [`ALIAS`].
fn daemon(rig: &Rig, max_bytes: usize) -> Daemon {
    Daemon::start(&spec(max_bytes), |dir| {
        rig.write_nskd_kubeconfigs(dir, &[DISRUPTABLE]);
        rig.write_alias(dir, ALIAS, DISRUPTABLE);
    })
}

/// Log lines of an answer: no notes (`--`, `...`, `(`) or cluster banners.
fn log_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            !l.starts_with("--")
                && !l.starts_with("...")
                && !l.starts_with('(')
                && !l.starts_with("===")
                && !l.trim().is_empty()
        })
        .collect()
}

// The guard of the disruptable cluster is held for the whole test on
// purpose; every test has its own runtime and thread.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grep_timestamps_since_time_and_selectors_find_what_the_kubelet_serves() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _kubelet =
        rig.start_fake_kubelet_with(DISRUPTABLE, &["--log-lines", "20", "--error-every", "5"]);
    let d = daemon(rig, 32 * 1024);
    let shim = Shim::start(&d.socket).await;

    // grep: exactly the lines the kubelet marked, newest last, counted.
    let found = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "grep": "level=error"}),
        )
        .await;
    let lines = log_lines(&found);
    let expected: Vec<String> = [5, 10, 15, 20]
        .iter()
        .map(|i| format!("line {i} of shop/{POD}/{CONTAINER} ({DISRUPTABLE}) level=error"))
        .collect();
    assert_eq!(lines, expected, "{found}");
    assert!(
        found.contains("-- 4 of 20 lines matched grep \"level=error\"; 4 shown"),
        "{found}"
    );
    // Case: sensitive by default, (?i) ignores it.
    let upper = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "grep": "LEVEL=ERROR"}),
        )
        .await;
    assert!(log_lines(&upper).is_empty(), "{upper}");
    assert!(upper.contains("(no line matches)"), "{upper}");
    let any_case = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "grep": "(?i)LEVEL=ERROR", "tail": 10}),
        )
        .await;
    assert_eq!(log_lines(&any_case), expected[2..], "{any_case}");
    assert!(any_case.contains("2 of 10 lines matched"), "{any_case}");

    // timestamps: each line starts with the server's RFC 3339 time, which
    // grep does not see (an anchored pattern still matches).
    let stamped = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "timestamps": true, "grep": "^line 1[05] "}),
        )
        .await;
    let lines = log_lines(&stamped);
    assert_eq!(lines.len(), 2, "{stamped}");
    for (line, i) in lines.iter().zip([10, 15]) {
        let (stamp, rest) = line.split_once(' ').unwrap();
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok(),
            "not a timestamp: {stamp:?} in {stamped}"
        );
        assert!(rest.starts_with(&format!("line {i} of ")), "{stamped}");
    }

    // sinceTime: sent as the API's sinceTime (whole seconds); an hour ago
    // keeps all 20 lines, 8 s ago only the last ones.
    let audit = AuditLog::for_cluster(rig, DISRUPTABLE);
    let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let hour_ago = jiff::Timestamp::from_second(hour_ago.as_second()).unwrap();
    let mark = audit.mark();
    let from = now_stamp();
    let all = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "sinceTime": hour_ago.to_string()}),
        )
        .await;
    assert_eq!(log_lines(&all).len(), 20, "{all}");
    let sent = audit.nskd_requests_since(&mark, &from);
    let log_reads: Vec<&Event> = sent
        .iter()
        .filter(|e| e.path() == format!("/api/v1/namespaces/shop/pods/{POD}/log"))
        .collect();
    assert_eq!(log_reads.len(), 1, "{sent:?}");
    let query = query_of(&log_reads[0].request_uri);
    assert_eq!(
        query.get("sinceTime").map(String::as_str),
        Some(hour_ago.to_string().as_str()),
        "{}",
        log_reads[0].request_uri
    );
    let recent = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(8)).to_string();
    let few = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "sinceTime": recent}),
        )
        .await;
    let n = log_lines(&few).len();
    assert!((6..=10).contains(&n), "{n} lines since {recent}: {few}");
    assert!(few.contains("line 20 of"), "{few}");

    // labelSelector: every scheduled frontend pod (frontend-15 is Pending),
    // each line prefixed [pod/container], merged in time order.
    let selected = shim
        .ok(
            "pods_log",
            json!({"namespace": "shop", "labelSelector": "app=frontend", "grep": "level=error"}),
        )
        .await;
    let lines = log_lines(&selected);
    assert_eq!(lines.len(), 12, "{selected}");
    for pod in ["frontend-00", "frontend-05", "frontend-10"] {
        let prefix = format!("[{pod}/frontend] line ");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(&prefix)).count(),
            4,
            "{pod}: {selected}"
        );
    }
    // Time order: the three pods' line 20 come last.
    assert!(
        lines[9..].iter().all(|l| l.contains(" line 20 of ")),
        "{selected}"
    );
    assert!(
        selected.contains("12 of 60 lines in 3 logs of 3 pods matched grep"),
        "{selected}"
    );
    assert!(
        selected.contains("1 pod has no log yet (not scheduled to a node): frontend-15"),
        "{selected}"
    );
    let none = shim
        .ok(
            "pods_log",
            json!({"namespace": "shop", "labelSelector": "app=no-such-app"}),
        )
        .await;
    assert!(
        none.contains("no pod in namespace shop matches labelSelector"),
        "{none}"
    );

    // Fan-out: the same search on two clusters, each answering in full.
    let both = shim
        .ok(
            "pods_log",
            json!({"namespace": "shop", "labelSelector": "app=frontend", "grep": "line 20 of",
                   "clusters": [DISRUPTABLE, ALIAS]}),
        )
        .await;
    assert!(both.contains(DISRUPTABLE) && both.contains(ALIAS), "{both}");
    assert_eq!(
        log_lines(&both)
            .iter()
            .filter(|l| l.starts_with("[frontend-05/frontend] line 20 of "))
            .count(),
        2,
        "{both}"
    );
    assert_eq!(
        both.matches("3 of 60 lines in 3 logs of 3 pods").count(),
        2,
        "{both}"
    );

    // nskctl logs: the same search from a terminal.
    let out = d.nskctl(&[
        "logs",
        "-n",
        "shop",
        "-l",
        "app=frontend",
        "--grep",
        "(?i)LEVEL=ERROR",
        "--tail",
        "5",
        "--clusters",
        &format!("{DISRUPTABLE},{ALIAS}"),
    ]);
    let (stdout, stderr) = nskd_e2e::daemon::text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("[frontend-10/frontend] line 20 of ").count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("=== cluster {ALIAS} ===")),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .matches("3 of 15 lines in 3 logs of 3 pods matched")
            .count(),
        2,
        "{stdout}"
    );
    let bad = d.nskctl(&["logs", "-n", "shop", POD, "--grep", "(unclosed"]);
    let (_, stderr) = nskd_e2e::daemon::text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid grep"), "{stderr}");
    shim.close().await;
}

/// The query parameters of `uri`, decoded.
fn query_of(uri: &str) -> std::collections::BTreeMap<String, String> {
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut out = std::collections::BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        assert!(
            out.insert(decode(k), decode(v)).is_none(),
            "parameter {k} twice in {uri}"
        );
    }
    out
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_matching_lines_keep_the_newest_within_the_budget() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _kubelet =
        rig.start_fake_kubelet_with(DISRUPTABLE, &["--log-lines", "20000", "--error-every", "2"]);
    let max = 4096;
    let d = daemon(rig, max);
    let shim = Shim::start(&d.socket).await;
    for args in [
        json!({"name": POD, "namespace": "shop", "grep": "level=error"}),
        json!({"name": POD, "namespace": "shop"}),
        json!({"namespace": "shop", "labelSelector": "app=frontend", "grep": "error"}),
    ] {
        let answer = shim.ok("pods_log", args.clone()).await;
        assert!(
            answer.len() <= max,
            "{} bytes > {max} for {args}: {answer}",
            answer.len()
        );
        let lines = log_lines(&answer);
        assert!(lines.len() > 10, "{args}: {answer}");
        assert!(
            lines.last().unwrap().contains("line 20000 of "),
            "newest line missing for {args}: {answer}"
        );
        let older: u64 = answer
            .lines()
            .find_map(|l| l.strip_prefix("... "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no left-out note for {args}: {answer}"));
        assert!(
            answer.contains("narrow with tail, since, sinceTime or grep"),
            "{answer}"
        );
        let matched: u64 = if args.get("labelSelector").is_some() {
            30_000
        } else if args.get("grep").is_some() {
            10_000
        } else {
            20_000
        };
        assert_eq!(
            older + lines.len() as u64,
            matched,
            "shown + left out = matched for {args}: {answer}"
        );
    }
    shim.close().await;
    drop(d);

    // A search reads at most [pool] max_response_bytes of a log, and says
    // so; a plain read still reaches the end (only the newest are kept).
    let mut capped = spec(max);
    capped
        .sections
        .push_str("[pool]\nmax_response_bytes = 65536\n");
    let d = Daemon::start(&capped, |dir| {
        rig.write_nskd_kubeconfigs(dir, &[DISRUPTABLE])
    });
    let shim = Shim::start(&d.socket).await;
    let searched = shim
        .ok(
            "pods_log",
            json!({"name": POD, "namespace": "shop", "grep": "level=error"}),
        )
        .await;
    assert!(
        searched.contains(&format!(
            "-- the search of {POD} stopped after 65536 bytes ([pool] max_response_bytes)"
        )),
        "{searched}"
    );
    assert!(!searched.contains("line 20000 of"), "{searched}");
    assert!(searched.len() <= max, "{searched}");
    let plain = shim
        .ok("pods_log", json!({"name": POD, "namespace": "shop"}))
        .await;
    assert!(
        log_lines(&plain).last().unwrap().contains("line 20000 of"),
        "{plain}"
    );
    shim.close().await;
}

#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_search_arguments_are_refused_or_sent_encoded() {
    let Some(rig) = rig_or_skip() else { return };
    let _exclusive = rig.disrupt();
    let _kubelet = rig.start_fake_kubelet(DISRUPTABLE);
    let d = daemon(rig, 32 * 1024);
    let shim = Shim::start(&d.socket).await;
    let audit = AuditLog::for_cluster(rig, DISRUPTABLE);
    // Warm discovery so that refusals are judged on a quiet window.
    shim.ok(
        "pods_log",
        json!({"name": POD, "namespace": "shop", "tail": 1}),
    )
    .await;
    let base = json!({"name": POD, "namespace": "shop"});
    let with = |k: &str, v: Value| {
        let mut a = base.clone();
        a[k] = v;
        a
    };
    let refused: Vec<(Value, &str)> = vec![
        (with("grep", json!("(unclosed")), "grep"),
        (with("grep", json!("(a{1000}){1000}")), "grep"),
        (with("grep", json!("\\w{100000}")), "grep"),
        (with("grep", json!("a".repeat(100_000))), "grep"),
        (with("grep", json!("x\u{0}y")), "grep"),
        (with("grep", json!("\u{1b}[31m")), "grep"),
        (with("sinceTime", json!("yesterday")), "sinceTime"),
        (with("sinceTime", json!("2026-01-01")), "sinceTime"),
        (
            with("sinceTime", json!("2999-01-01T00:00:00Z")),
            "sinceTime",
        ),
        (
            with("sinceTime", json!("2026-01-01T00:00:00Z&limitBytes=1")),
            "sinceTime",
        ),
        (
            with("sinceTime", json!("2026-01-01T00:00:00Z\r\n")),
            "sinceTime",
        ),
        (
            json!({"namespace": "shop", "labelSelector": "app=frontend\nx"}),
            "labelSelector",
        ),
        (
            json!({"namespace": "shop", "labelSelector": "a".repeat(10_000)}),
            "labelSelector",
        ),
        (
            json!({"name": POD, "namespace": "shop", "labelSelector": "app=frontend"}),
            "labelSelector",
        ),
        (
            json!({"name": POD, "namespace": "shop", "since": 10, "sinceTime": "2026-01-01T00:00:00Z"}),
            "sinceTime",
        ),
        (json!({"namespace": "shop"}), "name"),
    ];
    for (args, field) in refused {
        let mark = audit.mark();
        let from = now_stamp();
        let answer = shim.call("pods_log", args.clone()).await;
        assert!(answer.is_error, "accepted {args}: {}", answer.text);
        assert!(
            answer.text.contains(field) && !answer.text.contains('\u{0}'),
            "the refusal of {args} does not name {field}: {}",
            answer.text
        );
        // Only pod requests are this call's (the health probe lists nodes).
        let sent: Vec<String> = audit
            .nskd_requests_since(&mark, &from)
            .iter()
            .filter(|e| e.object_ref.as_ref().is_some_and(|o| o.resource == "pods"))
            .map(Event::describe)
            .collect();
        assert!(sent.is_empty(), "{args} sent {sent:?}");
    }
    // Selectors that are strings to the apiserver: sent as one encoded
    // labelSelector value, never as extra parameters or path parts.
    for selector in [
        "app=frontend&limit=1",
        "app=%2e%2e",
        "app in (a,b)#x",
        "x/../y",
    ] {
        let mark = audit.mark();
        let from = now_stamp();
        let _ = shim
            .call(
                "pods_log",
                json!({"namespace": "shop", "labelSelector": selector, "grep": "x"}),
            )
            .await;
        let sent = audit.nskd_requests_since(&mark, &from);
        let lists: Vec<&Event> = sent
            .iter()
            .filter(|e| e.object_ref.as_ref().is_some_and(|o| o.resource == "pods"))
            .collect();
        assert!(!lists.is_empty(), "{selector}: nothing sent");
        for e in &lists {
            let is_log = e.path().ends_with("/log");
            assert!(
                e.path() == "/api/v1/namespaces/shop/pods" || is_log,
                "{selector}: unexpected {}",
                e.describe()
            );
            if !is_log {
                let q = query_of(&e.request_uri);
                assert_eq!(q.get("labelSelector").map(String::as_str), Some(selector));
                assert_eq!(
                    q.get("limit").map(String::as_str),
                    Some("50"),
                    "{}",
                    e.request_uri
                );
                assert_eq!(q.len(), 2, "{}", e.request_uri);
            }
        }
    }
    shim.close().await;
}
