//! A client-side request rate per cluster (`[pool] qps`, `burst`), shared
//! by every session on that cluster, so a crowd of agents never hammers
//! one API server: calls beyond the rate wait for their turn.

use std::{
    num::NonZeroU32,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tower::{Layer, Service};

/// Adds the rate limit to a client's service stack.
#[derive(Clone)]
pub struct ThrottleLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl ThrottleLayer {
    /// `qps` requests per second on average, bursts of up to `burst`.
    pub fn new(qps: u32, burst: u32) -> Self {
        let qps = NonZeroU32::new(qps.max(1)).expect("non-zero");
        let burst = NonZeroU32::new(burst.max(1)).expect("non-zero");
        Self {
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(qps).allow_burst(burst),
            )),
        }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// A service that waits for the rate limit before its request is sent.
pub struct Throttle<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl<S, R> Service<R> for Throttle<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The inner future sends nothing until polled, so waiting first
        // keeps the request from leaving before its turn.
        let sent = self.inner.call(request);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            limiter.until_ready().await;
            sent.await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    #[tokio::test]
    async fn calls_beyond_the_burst_wait_for_the_rate() {
        let layer = ThrottleLayer::new(20, 5);
        let mut svc = layer.layer(tower::service_fn(|n: u32| async move {
            Ok::<_, std::convert::Infallible>(n)
        }));
        let started = Instant::now();
        for n in 0..5 {
            assert_eq!(svc.ready().await.unwrap().call(n).await.unwrap(), n);
        }
        assert!(
            started.elapsed() < Duration::from_millis(40),
            "the burst is free"
        );
        for n in 0..10 {
            svc.ready().await.unwrap().call(n).await.unwrap();
        }
        // 10 more at 20/s take about half a second.
        let spent = started.elapsed();
        assert!(spent >= Duration::from_millis(400), "{spent:?}");
    }
}
