//! Gives back to the kernel the memory a fleet-wide answer freed: one
//! answer over a thousand clusters allocates and frees tens of megabytes
//! of rows, which glibc would otherwise keep resident (docs/benchmarks.md,
//! fleet section). Off the request path, at most every [`EVERY`].

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Shortest time between two trims.
pub const EVERY: Duration = Duration::from_secs(2);

static LAST_MS: AtomicU64 = AtomicU64::new(0);

/// Trims the heap on a blocking thread after an answer that touched
/// several clusters, unless a trim ran within [`EVERY`].
pub fn after_fan_out() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let last = LAST_MS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < EVERY.as_millis() as u64
        || LAST_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(nskd_proto::memory::release_freed);
    }
}
