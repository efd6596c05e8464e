//! Blocking file I/O on async paths, done one way: [`run`] moves the
//! current worker's other tasks away (`block_in_place`) and runs the
//! closure where it stands, so callers keep plain synchronous code, order
//! and results (store writes with their fsyncs and rename, audit lines,
//! rescans of the kubeconfig directory).
//!
//! ```
//! let text = nskd::blocking::run(|| std::fs::read_to_string("/proc/self/status"));
//! assert!(text.is_ok());
//! ```

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs blocking `f` without stalling the runtime's other tasks. Outside a
/// multi-threaded runtime (tests, start-up) it simply runs `f`.
pub fn run<T>(f: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_tasks_run_while_a_blocking_call_waits() {
        let (tx, rx) = std::sync::mpsc::channel();
        let other = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.send(()).unwrap();
        });
        // Waits for a task that needs a worker: the runtime must go on.
        let got = run(|| rx.recv_timeout(Duration::from_secs(5)));
        assert!(got.is_ok());
        other.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_single_threaded_runtime_just_runs_it() {
        assert_eq!(run(|| 7), 7);
    }
}
