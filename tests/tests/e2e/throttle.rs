//! The per-cluster request rate (`[pool] qps`, `burst`) is shared by every
//! session: many agents together stay within it.

use std::time::{Duration, Instant};

use nskd_e2e::{
    daemon::{Daemon, DaemonSpec},
    mcp::Shim,
};
use serde_json::json;

use crate::rig_or_skip;

async fn ten_live_calls(shim: &Shim) {
    for _ in 0..10 {
        shim.ok("namespaces_list", json!({"live": true})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_share_one_request_rate_per_cluster() {
    let Some(rig) = rig_or_skip() else { return };
    let spec = DaemonSpec {
        sections: "[health]\nprobe_interval = \"1h\"\n[pool]\nqps = 10\nburst = 2\n".into(),
        ..DaemonSpec::default()
    };
    let d = Daemon::start(&spec, |dir| rig.write_kubeconfigs(dir, &["c1-lax1"]));
    let (a, b) = (Shim::start(&d.socket).await, Shim::start(&d.socket).await);
    // Warm up discovery and the connection, then wait for a full bucket.
    a.ok("namespaces_list", json!({"live": true})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    tokio::join!(ten_live_calls(&a), ten_live_calls(&b));
    let spent = started.elapsed();
    // 20 calls, 2 free, 18 more at 10/s: at least 1.7 s however many
    // sessions ask; and not much more (nothing else waits).
    assert!(
        spent >= Duration::from_millis(1700) && spent < Duration::from_secs(6),
        "20 calls took {spent:?}"
    );
}
