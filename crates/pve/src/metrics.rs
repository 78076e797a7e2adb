//! Counting API calls: a snapshot of counters and a per-request hook.
//!
//! Why: "how many calls does a deploy make, and how many of them are writes?" is a
//! benchmark number and a regression test ("waiting for a clone must not hammer the API").
//! Counters are cheap atomics; the hook hands each finished attempt to the caller (tests,
//! benchmarks, sombrero's tracing of API traffic) without the client printing anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::request::Method;

/// One finished attempt of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestEvent {
    pub method: Method,
    /// Path below `/api2/json` (below the server root for a
    /// [`PathScope::ServerRoot`](crate::request::PathScope::ServerRoot) request).
    pub path: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    pub elapsed: Duration,
}

/// A callback for every attempt.
pub type RequestHook = Arc<dyn Fn(&RequestEvent) + Send + Sync>;

/// Counters since the client was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct MetricsSnapshot {
    pub get: u64,
    pub post: u64,
    pub put: u64,
    pub delete: u64,
    /// Attempts beyond the first of a request.
    pub retries: u64,
    /// Attempts that ended without a success answer.
    pub failures: u64,
}

impl MetricsSnapshot {
    /// All attempts.
    pub fn total(&self) -> u64 {
        self.get + self.post + self.put + self.delete
    }

    /// POST + PUT + DELETE attempts.
    pub fn writes(&self) -> u64 {
        self.post + self.put + self.delete
    }
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    get: AtomicU64,
    post: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
}

impl Metrics {
    pub(crate) fn record(&self, event: &RequestEvent, succeeded: bool) {
        let counter = match event.method {
            Method::Get => &self.get,
            Method::Post => &self.post,
            Method::Put => &self.put,
            Method::Delete => &self.delete,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if event.attempt > 1 {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
        if !succeeded {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            get: self.get.load(Ordering::Relaxed),
            post: self.post.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Metrics, RequestEvent};
    use crate::request::Method;
    use std::time::Duration;

    #[test]
    fn counts_methods_retries_and_failures() {
        let metrics = Metrics::default();
        let event = |method, attempt| RequestEvent {
            method,
            path: "/version".into(),
            attempt,
            status: Some(200),
            elapsed: Duration::ZERO,
        };
        metrics.record(&event(Method::Get, 1), true);
        metrics.record(&event(Method::Post, 1), false);
        metrics.record(&event(Method::Post, 2), true);
        metrics.record(&event(Method::Delete, 1), true);
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.total(), 4);
        assert_eq!(snapshot.writes(), 3);
        assert_eq!(snapshot.retries, 1);
        assert_eq!(snapshot.failures, 1);
    }
}
