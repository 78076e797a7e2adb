//! Metrics in the Prometheus text format for node-exporter's textfile collector.
//!
//! Why a textfile and not an endpoint: sombrero is a command, not a daemon; node-exporter
//! already runs on the hosts people monitor and picks up `*.prom` files from a directory.
//! The file is written atomically (a temporary file in the same directory, then a rename)
//! so the collector never reads half a file; the temporary name does not end in `.prom`,
//! so the collector ignores it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::{CommandScope, HistoryError, Metrics};

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[expect(
    clippy::cast_precision_loss,
    reason = "milliseconds of a deployment are far below 2^52"
)]
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

struct Family<'text> {
    text: &'text mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP sombrero_{name} {help}");
        let _ = writeln!(self.text, "# TYPE sombrero_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", label(value)))
            .collect();
        let _ = writeln!(self.text, "sombrero_{name}{{{}}} {value}", labels.join(","));
    }
}

/// Renders one metrics value per environment (each computed with that environment as
/// filter) in the text exposition format.
pub fn render(per_environment: &[(String, Metrics)]) -> String {
    let mut text = String::new();
    let mut family = Family { text: &mut text };
    // What the runs are ("runs of up and deploy"): the same filter made every value.
    let runs = per_environment.first().map_or_else(
        || CommandScope::default().describe(),
        |(_, metrics)| metrics.scope.clone(),
    );
    family.header(
        "runs_total",
        "counter",
        &format!("Recorded {runs} by environment and status."),
    );
    for (environment, metrics) in per_environment {
        for (status, value) in [
            ("success", metrics.succeeded),
            ("failed", metrics.failed),
            ("interrupted", metrics.interrupted),
            ("running", metrics.running),
        ] {
            family.sample(
                "runs_total",
                &[("env", environment), ("status", status)],
                value,
            );
        }
    }
    family.header(
        "success_ratio",
        "gauge",
        "Successful runs over finished runs (0 to 1).",
    );
    for (environment, metrics) in per_environment {
        if let Some(rate) = metrics.success_rate {
            family.sample("success_ratio", &[("env", environment)], rate);
        }
    }
    family.header(
        "run_duration_seconds",
        "gauge",
        &format!("Duration of successful {runs}: average, median, min and max."),
    );
    for (environment, metrics) in per_environment {
        if let Some(duration) = &metrics.duration {
            for (statistic, ms) in [
                ("average", duration.average_ms),
                ("median", duration.median_ms),
                ("min", duration.fastest_ms),
                ("max", duration.slowest_ms),
            ] {
                family.sample(
                    "run_duration_seconds",
                    &[("env", environment), ("statistic", statistic)],
                    seconds(ms),
                );
            }
        }
    }
    family.header(
        "phase_duration_seconds",
        "gauge",
        &format!("Duration of successful phases of {runs}: average and 95th percentile."),
    );
    for (environment, metrics) in per_environment {
        for phase in &metrics.phases {
            for (statistic, ms) in [("average", phase.average_ms), ("p95", phase.p95_ms)] {
                if let Some(ms) = ms {
                    family.sample(
                        "phase_duration_seconds",
                        &[
                            ("env", environment),
                            ("phase", &phase.name),
                            ("statistic", statistic),
                        ],
                        seconds(ms),
                    );
                }
            }
        }
    }
    family.header(
        "phase_failures_total",
        "counter",
        &format!("Failed or interrupted phases of {runs}."),
    );
    for (environment, metrics) in per_environment {
        for phase in &metrics.phases {
            family.sample(
                "phase_failures_total",
                &[("env", environment), ("phase", &phase.name)],
                phase.failed,
            );
        }
    }
    family.header(
        "issues_total",
        "counter",
        &format!("Issues logged with `sombrero issue add` on {runs}, by phase."),
    );
    for (environment, metrics) in per_environment {
        for issue in &metrics.issues_by_phase {
            family.sample(
                "issues_total",
                &[("env", environment), ("phase", &issue.phase)],
                issue.count,
            );
        }
    }
    text
}

/// Writes `text` to `path` atomically.
///
/// # Errors
/// [`HistoryError::Write`] naming the path (the old file, if any, is left as it was).
pub fn write_atomically(path: &Path, text: &str) -> Result<(), HistoryError> {
    let failed = |source| HistoryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".sombrero-")
        .suffix(".tmp")
        .tempfile_in(directory)
        .map_err(failed)?;
    temporary.write_all(text.as_bytes()).map_err(failed)?;
    temporary.as_file().sync_all().map_err(failed)?;
    // The collector usually runs as another user; a temporary file starts as 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let readable = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(temporary.path(), readable).map_err(failed)?;
    }
    temporary
        .persist(path)
        .map_err(|error| failed(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{label, render, write_atomically};
    use crate::history::{MetricsFilter, Store};

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_empty_history_renders_headers_only_and_replaces_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(directory.path().join("sombrero.db")).unwrap();
        let metrics = store.metrics(&MetricsFilter::default()).unwrap();
        let text = render(&[("production".to_owned(), metrics)]);
        assert!(text.contains("sombrero_runs_total{env=\"production\",status=\"success\"} 0\n"));
        assert!(
            !text.contains("sombrero_success_ratio{"),
            "no ratio without finished runs"
        );
        let target = directory.path().join("sombrero.prom");
        std::fs::write(&target, "old").unwrap();
        write_atomically(&target, &text).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), text);
    }
}
