//! `verify-results.json`: the suite's records, as `verify --json` prints them.
//!
//! Why a file too: CI pipelines and `diagnose --bundle` read the last verification
//! without running it again, as the runbook's stage outputs are read.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CheckResult, CheckStatus, Suite, VerifyError};
use crate::deploy::Layout;

/// The file, in the environment's outputs directory.
pub const RESULTS_FILE: &str = "verify-results.json";

/// One verify run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub environment: String,
    pub vm_id: String,
    pub suite: Suite,
    /// `user@host:port` the checks connected to.
    pub target: String,
    /// RFC 3339, when the run started.
    pub started_at: String,
    pub duration_seconds: f64,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub checks: Vec<CheckResult>,
}

impl VerifyReport {
    pub fn new(
        (environment, vm_id, target): (&str, &str, String),
        suite: Suite,
        started_at: String,
        (checks, took): (Vec<CheckResult>, Duration),
    ) -> Self {
        let count = |status| checks.iter().filter(|c| c.status == status).count();
        Self {
            environment: environment.to_owned(),
            vm_id: vm_id.to_owned(),
            suite,
            target,
            started_at,
            duration_seconds: (took.as_secs_f64() * 1000.0).round() / 1000.0,
            passed: count(CheckStatus::Pass),
            failed: count(CheckStatus::Fail),
            skipped: count(CheckStatus::Skip),
            checks,
        }
    }

    /// Whether the VM passed: nothing failed.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    /// Writes the report to `<outputs>/<env>/verify-results.json` (atomically).
    ///
    /// # Errors
    /// [`VerifyError::Write`].
    pub fn write(&self, layout: &Layout) -> Result<PathBuf, VerifyError> {
        let path = layout.environment_dir().join(RESULTS_FILE);
        let json = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        crate::deploy::outputs::write_atomically(&path, &json).map_err(|error| {
            VerifyError::Write {
                path: path.clone(),
                source: std::io::Error::other(error.to_string()),
            }
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_and_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = Layout::new(dir.path(), "development");
        let result = |name: &str, status| CheckResult {
            name: name.into(),
            group: "services".into(),
            status,
            detail: "d".into(),
            duration_ms: 3,
        };
        let report = VerifyReport::new(
            ("development", "150", "ansible@127.0.0.1:2222".into()),
            Suite::Full,
            "2026-12-05T10:00:00Z".into(),
            (
                vec![
                    result("a", CheckStatus::Pass),
                    result("b", CheckStatus::Fail),
                    result("c", CheckStatus::Skip),
                ],
                Duration::from_millis(1234),
            ),
        );
        assert_eq!((report.passed, report.failed, report.skipped), (1, 1, 1));
        assert!(!report.ok());
        let path = report.write(&layout).expect("written");
        assert_eq!(path, dir.path().join("development").join(RESULTS_FILE));
        let back: VerifyReport =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(back, report);
    }
}
