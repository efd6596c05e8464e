//! Benchmark: concurrent MCP sessions over HTTP against one replica and
//! against two behind a round-robin "Service" (each a daemon with its own
//! `mcp-shim --http --stateless`), on the rig's real apiservers. Every
//! request opens its own connection, so with two replicas consecutive calls
//! of one session alternate between them. Half the sessions read one
//! cluster and half another, as two users: alice (group readers) and bob
//! (group shop-editors), each with a real OIDC token from the test
//! provider (tests/oidc), so every call is checked, named to the daemon and
//! sent to the apiserver impersonating its user (answered live: impersonated
//! callers never read the daemon's caches).
//!
//! Rewrites the replicas section of docs/benchmarks.md only.
//! Usage: scripts/bench replicas (or, with the binaries built,
//! target/<profile>/bench-replicas [--out FILE] [--sessions 50] [--calls 40])

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use nskd_e2e::{
    bench::{
        machine,
        replicas::{SECTION_BEGIN as BEGIN, SECTION_END as END, section},
        stats::Samples,
    },
    daemon::{Daemon, DaemonSpec},
    endpoints::ServiceProxy,
    mcp_http::{StatelessShim, post},
    oidc::{Provider, grant_team_rbac},
    rig::{self, SHARED},
};
use serde_json::{Value, json};

const TOKEN: &str = "bench-replicas-shared-token-0123456789";

/// A daemon trusting `provider` and its stateless HTTP shim with
/// `--http-oidc`. No per-user rate limit: the benchmark measures the path,
/// not the limit (`[http_auth] per_user_qps = 0`).
fn replica(rig: &rig::Rig, provider: &Provider) -> (Daemon, StatelessShim) {
    let spec = DaemonSpec {
        default_cluster: Some(SHARED[0].into()),
        sections: format!(
            "{}{}per_user_qps = 0\n",
            DaemonSpec::default().sections,
            provider.http_auth_section()
        ),
        ..DaemonSpec::default()
    };
    let daemon = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &SHARED));
    let shim = StatelessShim::start_with(&daemon.socket, TOKEN, true);
    (daemon, shim)
}

/// One tool call through `port` as the bearer of `token`: whether it
/// answered a table.
fn call(port: u16, token: &str, cluster: &str) -> bool {
    let req = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "pods_list", "arguments": {"cluster": cluster, "namespace": "shop"}}});
    let (status, _, message) = post(port, None, Some(token), &req);
    status == 200
        && message.is_some_and(|m: Value| {
            m["result"]["isError"] != true
                && m["result"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("NAME"))
        })
}

/// What one run measured.
struct Run {
    samples: Samples,
    errors: usize,
    elapsed: Duration,
}

/// `sessions` threads, each `initialize` then `calls` calls, all through
/// `port`; session i is user i % 2 (`users`) on cluster i % 2.
fn run(port: u16, users: &[String; 2], sessions: usize, calls: usize) -> Run {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let errors = Arc::new(Mutex::new(0usize));
    let started = Instant::now();
    let threads: Vec<_> = (0..sessions)
        .map(|i| {
            let (samples, errors) = (samples.clone(), errors.clone());
            let token = users[i % 2].clone();
            std::thread::spawn(move || {
                let cluster = SHARED[i % 2];
                let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "bench-replicas", "version": "1"}}});
                let mut failed = usize::from(post(port, None, Some(&token), &init).0 != 200);
                let mut mine = Samples::default();
                for _ in 0..calls {
                    if !mine.time(|| call(port, &token, cluster)) {
                        failed += 1;
                    }
                }
                samples.lock().unwrap().extend(mine);
                *errors.lock().unwrap() += failed;
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let elapsed = started.elapsed();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let errors = *errors.lock().unwrap();
    Run {
        samples,
        errors,
        elapsed,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn row(what: &str, r: &Run) -> String {
    format!(
        "| {what} | {} | {} | {} | {:.0} | {} |\n",
        ms(r.samples.median()),
        ms(r.samples.quantile(0.95)),
        ms(r.samples.quantile(0.99)),
        r.samples.len() as f64 / r.elapsed.as_secs_f64(),
        r.errors
    )
}

fn main() -> anyhow::Result<()> {
    let mut out = PathBuf::from("docs/benchmarks.md");
    let (mut sessions, mut calls) = (50usize, 40usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().context("--out needs a path")?.into(),
            "--sessions" => sessions = args.next().context("--sessions needs a number")?.parse()?,
            "--calls" => calls = args.next().context("--calls needs a number")?.parse()?,
            other => anyhow::bail!(
                "unknown argument {other:?}; usage: bench-replicas [--out FILE] [--sessions N] [--calls N]"
            ),
        }
    }
    let started = Instant::now();
    let load_before = machine::load_average();
    let rig = rig::shared().context("no kube-apiserver rig: build it with tests/rig/build.sh")?;
    for c in &SHARED[..2] {
        grant_team_rbac(rig.cluster(c));
    }
    let provider = Provider::start();
    let users = [
        provider.token("alice@example.com", &["readers"]),
        provider.token("bob@example.com", &["shop-editors"]),
    ];
    let (_da, sa) = replica(rig, &provider);
    let (_db, sb) = replica(rig, &provider);
    let (a, b) = (sa.port, sb.port);
    // Warm both: links to the daemons, the issuer's keys, each user's client.
    for port in [a, b] {
        for (user, cluster) in users.iter().zip(&SHARED[..2]) {
            for _ in 0..5 {
                anyhow::ensure!(
                    call(port, user, cluster),
                    "warm-up call as {user:.12}… on {cluster} through port {port} failed"
                );
            }
        }
    }
    // The same proxy in front of both runs, so only the replicas differ.
    let one = ServiceProxy::start(vec![a]);
    let two = ServiceProxy::start(vec![a, b]);
    eprintln!("[bench-replicas] {sessions} sessions × {calls} calls, one replica");
    let single = run(one.port, &users, sessions, calls);
    eprintln!("[bench-replicas] {sessions} sessions × {calls} calls, two replicas");
    let double = run(two.port, &users, sessions, calls);
    let spread = two.connections();

    let profile = if std::env::current_exe()?
        .components()
        .any(|c| c.as_os_str() == "release")
    {
        "Release"
    } else {
        "**Debug** (unoptimized; run `scripts/bench replicas` for release figures)"
    };
    let mut md = format!("{BEGIN}\n## Two replicas behind one Service\n\n");
    md.push_str(&format!(
        "`scripts/bench replicas` on {} ({}; load average {} at the start, {} at the end), {:.0} s in all. {profile} binaries. \
{sessions} concurrent MCP sessions over HTTP, each `initialize` then {calls} `pods_list` (namespace shop, 20 pods) back to back, \
half as alice (group readers) on {} and half as bob (group shop-editors) on {}, each with a real OIDC token from the test \
provider (`mcp-shim --http-oidc`, `[http_auth]`): every call is authenticated, checked against `[[access]]` and sent \
to the apiserver impersonating its user, so it is answered live (impersonated callers never read the daemon's caches; \
`per_user_qps = 0`: the limit is not what is measured); every request a new \
connection through a round-robin TCP proxy (what kube-proxy does), in front of one replica or of two (each a daemon with \
its own `mcp-shim --http --stateless`; the two-replica run sent {} and {} connections). All processes share this \
machine's cores, so a second replica adds no CPU here: the figures show what spreading costs and that nothing fails, \
not the scaling of a real two-node deployment.\n\n",
        machine::today(),
        machine::describe(),
        load_before,
        machine::load_average(),
        started.elapsed().as_secs_f64(),
        SHARED[0],
        SHARED[1],
        spread[0],
        spread.get(1).copied().unwrap_or(0),
    ));
    md.push_str("| replicas | p50 | p95 | p99 | calls/s | errors |\n|---|---|---|---|---|---|\n");
    md.push_str(&row("one", &single));
    md.push_str(&row("two, alternating per request", &double));
    md.push_str(&format!("\n{END}"));

    let doc = std::fs::read_to_string(&out).unwrap_or_default();
    let doc = match section(&doc) {
        Some(old) => doc.replacen(old, &md, 1),
        None => format!("{}\n{md}\n", doc.trim_end()),
    };
    std::fs::write(&out, doc).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("{md}");
    anyhow::ensure!(
        single.errors == 0 && double.errors == 0,
        "calls failed: {} with one replica, {} with two",
        single.errors,
        double.errors
    );
    Ok(())
}
