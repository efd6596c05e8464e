//! What every long-running watch of the daemon shares (the watch caches,
//! the metadata indexes): how long a watch lasts and how long silence is
//! tolerated on each protocol, how a failed request is judged, and the
//! backoff between restarts.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};

/// Shortest watch over HTTP/2, in seconds (the API server's own
/// reflectors watch 5 to 10 minutes; a restart costs one request).
pub const LONG_WATCH_SECONDS: u32 = 240;

/// Watches over HTTP/2 last up to this many seconds longer, per watch.
pub const LONG_WATCH_SPREAD: u32 = 50;

/// What interrupted a list or watch.
#[derive(Debug)]
pub enum Setback {
    /// Try again after a backoff (the server is unreachable, the watch
    /// broke).
    Retry(String),
    /// Give up (refused by the server, too large, not a table); answers
    /// come from the API server until the watch is dropped.
    Refuse(String),
}

/// How long one watch request asks to last, and how long its stream may
/// stay silent before the watch counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `timeoutSeconds` of the watch request.
    pub seconds: u32,
    /// Longest wait for the next event.
    pub silence: Duration,
}

/// The timing of a watch over HTTP/2 (`h2`: its connection is pinged, so
/// a dead server is noticed without the watch: it lasts minutes, spread
/// by `key` so a fleet's watches do not restart together) or HTTP/1.1
/// (nothing but the watch notices a silent server: it ends a second
/// before the request `deadline`, and silence beyond the deadline is an
/// error).
pub fn timing(h2: bool, deadline: Duration, key: impl Hash) -> Timing {
    if h2 {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let seconds = LONG_WATCH_SECONDS + (h.finish() % u64::from(LONG_WATCH_SPREAD)) as u32;
        Timing {
            seconds,
            silence: Duration::from_secs(u64::from(seconds)) + deadline,
        }
    } else {
        Timing {
            seconds: deadline.as_secs().saturating_sub(1).clamp(1, 290) as u32,
            silence: deadline + Duration::from_secs(1),
        }
    }
}

/// A failed request: retried, unless the server refused the caller the
/// kind or does not serve it (401, 403, 404, 405, 406), which a retry
/// cannot change.
pub fn setback(e: kube::Error) -> Setback {
    match &e {
        kube::Error::Api(status) if matches!(status.code, 401 | 403 | 404 | 405 | 406) => {
            Setback::Refuse(format!(
                "the API server refused to list or watch it ({} {})",
                status.code, status.message
            ))
        }
        _ => Setback::Retry(crate::error::error_chain(&e)),
    }
}

/// Delays between restarts after errors: 200 ms doubling to 10 s, with
/// jitter, forever.
pub fn restart_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_watches_last_minutes_and_http1_watches_end_before_the_deadline() {
        let deadline = Duration::from_secs(15);
        let h1 = timing(false, deadline, "c1/pods");
        assert_eq!(h1.seconds, 14);
        assert_eq!(h1.silence, Duration::from_secs(16));
        let h2 = timing(true, deadline, "c1/pods");
        assert!((LONG_WATCH_SECONDS..LONG_WATCH_SECONDS + LONG_WATCH_SPREAD).contains(&h2.seconds));
        assert_eq!(h2, timing(true, deadline, "c1/pods"), "fixed per watch");
        let spread: std::collections::BTreeSet<u32> = (0..100)
            .map(|i| timing(true, deadline, format!("c{i}/pods")).seconds)
            .collect();
        assert!(spread.len() > 10, "restarts are spread: {spread:?}");
    }
}
