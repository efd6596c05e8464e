//! Fleet-scale answers on real API servers: one merged table within one
//! budget, pages that concatenate to the full list (cached and live),
//! counts equal to the rows, projection, and hostile shaping arguments
//! refused before anything is sent.

use std::collections::{BTreeMap, BTreeSet};

use nskd_e2e::{
    apiserver_audit::{AuditLog, now_stamp},
    daemon::{Daemon, DaemonSpec},
    mcp::{FROM_CACHE, Shim, is_cached},
    rig::{Rig, SHARED},
};
use serde_json::{Value, json};

use crate::rig_or_skip;

const BUDGET: usize = 32 * 1024;

/// `n` clusters `f000`... aliasing the shared rig clusters.
fn fleet(rig: &Rig, n: usize) -> (Daemon, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("f{i:03}")).collect();
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        for (i, name) in names.iter().enumerate() {
            rig.write_alias(dir, name, SHARED[i % SHARED.len()]);
        }
    });
    (d, names)
}

/// The `continue` token of an answer's footer.
fn token(text: &str) -> Option<String> {
    let rest = text.split("\"continue\": \"").nth(1)?;
    Some(rest.split('"').next()?.to_string())
}

/// Table rows of an answer: not the header, notes or the cache line.
fn rows(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with("...")
                && !l.starts_with('(')
                && !l.starts_with(FROM_CACHE)
                && !l.contains(" cluster")
        })
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

/// Every row of a paged answer, following its tokens; each page within
/// the budget.
async fn all_pages(shim: &Shim, tool: &str, args: Value) -> (Vec<String>, usize) {
    let mut text = shim.ok(tool, args.clone()).await;
    let mut all = rows(&text);
    let mut pages = 1;
    while let Some(t) = token(&text) {
        assert!(text.len() <= BUDGET, "{}", text.len());
        let mut next = args.clone();
        next["continue"] = json!(t);
        text = shim.ok(tool, next).await;
        assert!(!text.contains("CLUSTER   CLUSTER"));
        all.extend(rows(&text));
        pages += 1;
        assert!(pages < 500, "pages never end");
    }
    (all, pages)
}

/// The rows of each cluster asked on its own, as `CLUSTER NAMESPACE NAME`.
async fn one_by_one(shim: &Shim, names: &[String], live: bool) -> Vec<String> {
    let mut all = Vec::new();
    for n in names {
        let text = shim
            .ok("pods_list", json!({"cluster": n, "live": live}))
            .await;
        assert!(token(&text).is_none(), "{text}");
        all.extend(rows(&text).into_iter().map(|r| format!("{n} {r}")));
        let cut: Vec<String> = all
            .iter()
            .map(|r| r.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect();
        all = cut;
    }
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_concatenate_to_the_full_list_cached_and_live() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, names) = fleet(rig, 9);
    let shim = Shim::start(&d.socket).await;
    for live in [true, false] {
        let args = json!({"clusters": names, "limit": 7, "live": live});
        if !live {
            // The first call starts the watches; wait until they answer.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !is_cached(&shim.ok("pods_list", args.clone()).await) {
                assert!(std::time::Instant::now() < deadline, "never cached");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        let first = shim.ok("pods_list", args.clone()).await;
        assert!(first.starts_with("CLUSTER   NAMESPACE"), "{first}");
        assert_eq!(first.matches("CLUSTER").count(), 1, "{first}");
        let (paged, pages) = all_pages(&shim, "pods_list", args).await;
        let mut sorted = paged.clone();
        sorted.sort();
        assert_eq!(
            paged, sorted,
            "pages come in cluster, namespace, name order"
        );
        let full = one_by_one(&shim, &names, live).await;
        assert_eq!(paged, full, "live={live}");
        assert_eq!(pages, full.len().div_ceil(7), "live={live}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_for_table_yaml_and_json_at_1_50_and_500_clusters() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, names) = fleet(rig, 500);
    let shim = Shim::start(&d.socket).await;
    for n in [1usize, 50, 500] {
        for output in ["table", "yaml", "json"] {
            let args = if n == 1 {
                json!({"cluster": names[0], "output": output, "live": true})
            } else {
                json!({"clusters": names[..n], "output": output, "live": true})
            };
            let a = shim.call("pods_list", args.clone()).await;
            assert!(!a.is_error, "{n} {output}: {}", a.text);
            assert!(
                a.text.len() <= BUDGET,
                "{n} {output}: {} bytes",
                a.text.len()
            );
            if n > 1 {
                let t = token(&a.text).unwrap_or_else(|| {
                    panic!(
                        "{n} {output}: no next page: {}",
                        &a.text[a.text.len().saturating_sub(600)..]
                    )
                });
                let mut next = args.clone();
                next["continue"] = json!(t);
                let b = shim.ok("pods_list", next).await;
                assert!(b.len() <= BUDGET, "{n} {output} page 2: {} bytes", b.len());
                if output == "table" {
                    assert!(a.text.starts_with("CLUSTER "), "{}", &a.text[..200]);
                } else if output == "yaml" {
                    assert!(a.text.starts_with("cluster: f"), "{}", &a.text[..200]);
                } else {
                    assert!(
                        a.text.starts_with("[\n{\n  \"cluster\": \"f"),
                        "{}",
                        &a.text[..200]
                    );
                }
            }
        }
    }
    let namespaces = shim
        .ok("namespaces_list", json!({"clusters": "*", "live": true}))
        .await;
    assert!(namespaces.len() <= BUDGET);
    assert_eq!(namespaces.matches("=== cluster").count(), 0, "{namespaces}");
    assert_eq!(
        namespaces
            .lines()
            .filter(|l| l.starts_with("CLUSTER"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_equal_counts_from_the_full_list_and_images_are_one_call() {
    let Some(rig) = rig_or_skip() else { return };
    let (d, names) = fleet(rig, 6);
    let shim = Shim::start(&d.socket).await;
    let args =
        json!({"clusters": names, "live": true, "columns": ["NAME", "STATUS"], "limit": 1000});
    let full = shim.ok("pods_list", args).await;
    assert!(token(&full).is_none(), "{full}");
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in full.lines().skip(1).filter(|l| l.starts_with('f')) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        *want.entry((cells[0].into(), cells[2].into())).or_default() += 1;
    }
    assert!(!want.is_empty(), "{full}");
    let summary = shim
        .ok(
            "pods_list",
            json!({"clusters": names, "live": true, "summary": true}),
        )
        .await;
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header[0], "CLUSTER", "{summary}");
    let statuses = &header[1..header.len() - 1];
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut total = 0;
    for line in lines.filter(|l| l.starts_with('f') || l.starts_with("(all)")) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells[0] == "(all)" {
            total = cells.last().unwrap().parse::<u64>().unwrap();
            continue;
        }
        for (i, s) in statuses.iter().enumerate() {
            let n: u64 = cells[1 + i].parse().unwrap();
            if n > 0 {
                got.insert((cells[0].into(), s.to_string()), n);
            }
        }
    }
    assert_eq!(got, want, "{summary}");
    assert_eq!(total, want.values().sum::<u64>());

    let deployments = shim
        .ok(
            "resources_list",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "clusters": names, "count_by": ["cluster", "ready"], "live": true}),
        )
        .await;
    assert!(deployments.starts_with("CLUSTER "), "{deployments}");
    assert!(deployments.contains("TOTAL"), "{deployments}");

    let nodes = shim
        .ok(
            "nodes_list",
            json!({"clusters": names, "summary": true, "live": true}),
        )
        .await;
    let head: Vec<&str> = nodes.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        (head[0], head[head.len() - 1]),
        ("CLUSTER", "TOTAL"),
        "{nodes}"
    );
    assert!(head.contains(&"Ready"), "{nodes}");

    let images = shim
        .ok(
            "pods_list",
            json!({"clusters": "*", "fields": [".spec.containers[*].image"], "columns": ["NAME", "IMAGE"], "live": true}),
        )
        .await;
    let header = images.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["CLUSTER", "NAME", "IMAGE"],
        "{images}"
    );
    let by_image: BTreeSet<&str> = images
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('f'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(
        !by_image.is_empty() && !by_image.contains("<none>"),
        "{images}"
    );
    let sorted = shim
        .ok("pods_list", json!({"clusters": names, "sortBy": "NAME", "columns": ["NAME"], "limit": 1000, "live": true}))
        .await;
    let order: Vec<&str> = sorted
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('f'))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    let mut want_order = order.clone();
    want_order.sort();
    assert_eq!(order, want_order);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tokens_and_shaping_arguments_are_refused_before_anything_is_sent() {
    let Some(rig) = rig_or_skip() else { return };
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        rig.write_kubeconfigs(dir, &SHARED);
    });
    let shim = Shim::start(&d.socket).await;
    let names: Vec<&str> = SHARED.to_vec();
    let base = json!({"clusters": names, "limit": 5, "live": true});
    let first = shim.ok("pods_list", base.clone()).await;
    let good = token(&first).expect("a next page");
    let mut altered = good.clone().into_bytes();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let audit = AuditLog::for_cluster(rig, SHARED[0]);
    let mark = audit.mark();
    let from = now_stamp();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"continue": altered}), "another call"),
        (json!({"continue": &good[..good.len() / 2]}), "malformed"),
        (json!({"continue": "x".repeat(100_000)}), "invalid continue"),
        (json!({"continue": "abc/../def"}), "invalid continue"),
        (json!({"continue": "AAAA\u{0}\n"}), "invalid continue"),
        (
            json!({"continue": good, "namespace": "kube-system"}),
            "another call",
        ),
        (json!({"columns": ["NAME\nFAKE"]}), "invalid columns"),
        (json!({"columns": ["$(id)"]}), "invalid columns"),
        (json!({"columns": vec!["NAME"; 40]}), "invalid columns"),
        (json!({"fields": ["$..*"]}), "invalid fields"),
        (json!({"fields": [".a[?(@.b=='x')]"]}), "invalid fields"),
        (
            json!({"fields": [format!(".{}", "a".repeat(5000))]}),
            "invalid fields",
        ),
        (json!({"sortBy": "NAME;DROP"}), "invalid sortBy"),
        (json!({"sortBy": ".status.startTime"}), "add it to `fields`"),
        (
            json!({"count_by": ["cluster\u{1b}[31m"]}),
            "invalid count_by",
        ),
    ];
    for (extra, want) in &cases {
        let mut args = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        let e = shim.err("pods_list", args).await;
        assert!(e.contains(want), "{extra}: {e}");
        assert!(e.len() < 2000 && !e.contains('\u{1b}'), "{extra}: {e}");
        assert!(
            want.starts_with("invalid")
                || want.contains("field")
                || e.contains("without `continue`"),
            "{extra}: says how to restart: {e}"
        );
    }
    let sent = audit.nskd_requests_since(&mark, &from);
    assert!(
        sent.is_empty(),
        "sent {}",
        sent.iter()
            .map(|e| e.describe())
            .collect::<Vec<_>>()
            .join("; ")
    );
    // An unknown column is a clear error after the rows are read.
    let e = shim
        .err(
            "pods_list",
            json!({"clusters": names, "columns": ["NOPE"], "live": true}),
        )
        .await;
    assert!(
        e.contains("no column \"NOPE\"") && e.contains("STATUS"),
        "{e}"
    );
}

/// The first word of each row of a clusters_status page.
fn status_rows(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| l.starts_with('b') && l.len() > 6 && l.as_bytes()[1].is_ascii_digit())
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap_or_default().to_string();
            let status = w.next().unwrap_or_default().to_string();
            (name, status)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_status_of_600_clusters_fits_the_budget_not_ready_first() {
    let Some(rig) = rig_or_skip() else { return };
    let mut fleet = None;
    let d = Daemon::start(&DaemonSpec::default(), |dir| {
        fleet = Some(nskd_e2e::bench::fleet::Fleet::write(rig, dir, 600, &SHARED));
    });
    let fleet = fleet.expect("fleet");
    let down = fleet.refused + fleet.black_holed;
    let shim = Shim::start(&d.socket).await;
    // Probes of 600 clusters on a loaded machine take a few rounds: wait
    // until the tracker has seen every cluster (the dead ones NotReady).
    let settled = format!("600 clusters: {down} NotReady, {} Ready\n", 600 - down);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut first = shim.ok("clusters_status", json!({"refresh": true})).await;
    while !first.starts_with(&settled) {
        assert!(first.len() <= BUDGET, "{} bytes", first.len());
        assert!(
            std::time::Instant::now() < deadline,
            "never {settled}: {}",
            &first[..first.len().min(600)]
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        first = shim.ok("clusters_status", json!({})).await;
    }
    assert!(first.len() <= BUDGET, "{} bytes", first.len());
    assert!(first.contains("errors: "), "{first}");
    assert!(first.contains("connection refused"), "{first}");
    let mut rows = status_rows(&first);
    assert!(rows.len() > down, "{first}");
    assert!(
        rows[..down].iter().all(|(_, s)| s == "NotReady")
            && rows[down..].iter().all(|(_, s)| s == "Ready"),
        "{rows:?}"
    );
    let mut text = first;
    let mut pages = 1;
    while let Some(t) = token(&text) {
        assert!(text.contains("call clusters_status again"), "{text}");
        text = shim.ok("clusters_status", json!({"continue": t})).await;
        assert!(text.len() <= BUDGET, "{} bytes", text.len());
        rows.extend(status_rows(&text));
        pages += 1;
        assert!(pages < 20, "pages never end");
    }
    assert!(pages > 1, "600 rows do not fit one page: {text}");
    assert!(text.contains("last page"), "{text}");
    let mut names: Vec<String> = rows.into_iter().map(|(n, _)| n).collect();
    names.sort();
    let total = names.len();
    names.dedup();
    assert_eq!((total, names.len()), (600, 600));
    // A forged token is refused with what to do.
    let forged = shim
        .err("clusters_status", json!({"continue": "AAAA"}))
        .await;
    assert!(forged.contains("continue"), "{forged}");
    // nskctl status still prints every cluster (and exits 1: some are down).
    let out = d.nskctl(&["status"]);
    let (stdout, stderr) = nskd_e2e::daemon::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("600 clusters, "), "{stdout}");
    assert_eq!(status_rows(&stdout).len(), 600, "{stdout}");
    shim.close().await;
}
