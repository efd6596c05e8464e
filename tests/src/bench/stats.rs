//! Timing samples and their percentiles.

use std::time::{Duration, Instant};

/// Durations of repeated runs of one thing.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<Duration>);

impl Samples {
    /// Runs `f` once and records how long it took.
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.0.push(t.elapsed());
        out
    }

    /// Awaits `f` and records how long it took.
    pub async fn time_async<F: std::future::Future>(&mut self, f: F) -> F::Output {
        let t = Instant::now();
        let out = f.await;
        self.0.push(t.elapsed());
        out
    }

    /// Records one duration.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Adds all of `other`'s samples.
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No samples yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q` quantile (0.0..=1.0, nearest rank); zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.0.clone();
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// The median.
    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }

    /// Sum of all samples.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    /// Median in milliseconds.
    pub fn p50_ms(&self) -> f64 {
        ms(self.median())
    }

    /// 95th percentile in milliseconds.
    pub fn p95_ms(&self) -> f64 {
        ms(self.quantile(0.95))
    }

    /// 99th percentile in milliseconds.
    pub fn p99_ms(&self) -> f64 {
        ms(self.quantile(0.99))
    }
}

/// A duration in (fractional) milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// "5.2 ms" (or "0.42 s" from one second up).
pub fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", ms(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let s = Samples((1..=100).map(Duration::from_millis).collect());
        assert_eq!(s.median(), Duration::from_millis(50));
        assert_eq!(s.quantile(0.95), Duration::from_millis(95));
        assert_eq!(s.quantile(0.99), Duration::from_millis(99));
        assert_eq!(Samples::default().median(), Duration::ZERO);
    }
}
