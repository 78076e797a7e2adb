//! How many API requests the lab answered, per method and path.
//!
//! Why: an operator's cluster answers `GET /cluster/resources` in tens of milliseconds
//! or more (it lists every VM and storage of every node), so how often a command asks
//! matters as much as what it asks; tests assert it ("one read of the cluster per
//! plan") and `GET /lab/requests` shows it to anyone measuring a command against the
//! lab. Counted before faults and authentication: every request that reached the API.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counts per `"METHOD /path"` (the path after `/api2/json`, without the query).
#[derive(Debug, Default)]
pub struct RequestLog {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl RequestLog {
    /// Counts one request.
    pub fn record(&self, method: &http::Method, path: &str) {
        let relative = path.strip_prefix("/api2/json").unwrap_or(path);
        let key = format!("{method} {relative}");
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counts.entry(key).or_default() += 1;
    }

    /// How many `method path` requests there were (`path` as after `/api2/json`:
    /// `"/cluster/resources"`).
    pub fn count(&self, method: &str, path: &str) -> u64 {
        self.snapshot()
            .get(&format!("{method} {path}"))
            .copied()
            .unwrap_or(0)
    }

    /// Every count so far, by `"METHOD /path"`.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forgets every count (`DELETE /lab/requests`), so a test can count one command.
    pub fn clear(&self) {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::RequestLog;

    #[test]
    fn requests_are_counted_per_method_and_path_without_the_prefix() {
        let log = RequestLog::default();
        log.record(&http::Method::GET, "/api2/json/cluster/resources");
        log.record(&http::Method::GET, "/api2/json/cluster/resources");
        log.record(
            &http::Method::POST,
            "/api2/json/nodes/lloyd/qemu/9000/clone",
        );
        assert_eq!(log.count("GET", "/cluster/resources"), 2);
        assert_eq!(log.count("POST", "/nodes/lloyd/qemu/9000/clone"), 1);
        assert_eq!(log.count("POST", "/cluster/resources"), 0);
        assert_eq!(log.snapshot().len(), 2);
        log.clear();
        assert_eq!(log.count("GET", "/cluster/resources"), 0);
    }
}
