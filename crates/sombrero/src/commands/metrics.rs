//! `sombrero metrics`: the runbook's "Deployment Analytics Dashboard", and its Prometheus
//! textfile export.
//!
//! Why the dashboard keeps the runbook's look: people compare it with the runbook's
//! example output; the extra lines (median, phases, issues, trend, groups) come after the
//! five the runbook shows. `--json` prints the same `Metrics` struct the text renders.

use std::fmt::Write as _;

use sombrero_core::history::{self, Metrics, MetricsFilter, clock, prometheus};

use crate::cli::MetricsArgs;
use crate::context::HistoryContext;
use crate::exit::ExitStatus;

pub fn run(args: &MetricsArgs, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let store = context.open_for_reading()?;
    let filter = context.filter(args.since.as_deref(), args.command.as_deref())?;
    if let Some(path) = &args.prometheus {
        let metrics = store.metrics(&filter)?;
        let mut per_environment = Vec::new();
        for group in &metrics.by_environment {
            let environment_filter = MetricsFilter {
                environment: Some(group.name.clone()),
                ..filter.clone()
            };
            per_environment.push((group.name.clone(), store.metrics(&environment_filter)?));
        }
        history::write_atomically(path, &prometheus::render(&per_environment))?;
        printer.info(&format!("Wrote Prometheus metrics to {}", path.display()));
        printer.data(&path.display().to_string());
        return Ok(ExitStatus::Success);
    }
    let metrics = store.metrics(&filter)?;
    if printer.json_mode() {
        printer.json(&metrics)?;
    } else {
        printer.data(&dashboard(&metrics));
    }
    Ok(ExitStatus::Success)
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_owned(), |rate| format!("{:.0}%", rate * 100.0))
}

fn duration(ms: Option<i64>) -> String {
    ms.map_or_else(|| "n/a".to_owned(), clock::duration)
}

/// The text view.
pub fn dashboard(metrics: &Metrics) -> String {
    let mut text = String::new();
    let title = "📊 Deployment Analytics Dashboard";
    let _ = writeln!(text, "{title}\n{}", "=".repeat(34));
    // What is counted, always: "Total Deployments" means runs of up and deploy unless
    // --command said otherwise.
    let mut scope = vec![metrics.scope.clone()];
    if let Some(environment) = &metrics.environment {
        scope.push(format!("environment {environment}"));
    }
    if let Some(since) = &metrics.since {
        scope.push(format!("since {since}"));
    }
    let _ = writeln!(text, "({})", scope.join(", "));
    let finished = metrics.succeeded + metrics.failed + metrics.interrupted;
    let _ = writeln!(text, "📈 Total Deployments: {}", metrics.total_runs);
    let _ = writeln!(
        text,
        "✅ Success Rate: {} ({}/{finished})",
        percent(metrics.success_rate),
        metrics.succeeded
    );
    if metrics.failed + metrics.interrupted + metrics.running > 0 {
        let _ = writeln!(
            text,
            "❌ Failed: {}   ⚠️ Interrupted: {}   ⏳ Running: {}",
            metrics.failed, metrics.interrupted, metrics.running
        );
    }
    let stats = metrics.duration.as_ref();
    let _ = writeln!(
        text,
        "⏱️ Average Duration: {}",
        duration(stats.map(|s| s.average_ms))
    );
    let _ = writeln!(
        text,
        "⏱️ Median Duration: {}",
        duration(stats.map(|s| s.median_ms))
    );
    let with_run = |ms: Option<i64>, run: Option<&String>| match (ms, run) {
        (Some(ms), Some(run)) => format!("{} ({run})", clock::duration(ms)),
        _ => "n/a".to_owned(),
    };
    let _ = writeln!(
        text,
        "🚀 Fastest Deployment: {}",
        with_run(stats.map(|s| s.fastest_ms), stats.map(|s| &s.fastest_run))
    );
    let _ = writeln!(
        text,
        "🐌 Slowest Deployment: {}",
        with_run(stats.map(|s| s.slowest_ms), stats.map(|s| &s.slowest_run))
    );

    if !metrics.phases.is_empty() {
        let _ = writeln!(
            text,
            "\nPhases                 average       p95    ok  failed"
        );
        for phase in &metrics.phases {
            let _ = writeln!(
                text,
                "  {:<18} {:>9} {:>9} {:>5} {:>7}",
                phase.name,
                duration(phase.average_ms),
                duration(phase.p95_ms),
                phase.succeeded,
                phase.failed
            );
        }
    }
    let _ = writeln!(text, "\n🐞 Issues Logged: {}", metrics.total_issues);
    for issue in &metrics.issues_by_phase {
        let _ = writeln!(text, "  {:<18} {}", issue.phase, issue.count);
    }
    if !metrics.trend.is_empty() {
        let _ = writeln!(
            text,
            "\nTrend (last {} runs, oldest first)",
            metrics.trend.len()
        );
        for point in &metrics.trend {
            let _ = writeln!(
                text,
                "  {:<24} {:<10} {:<12} {:>9}  {}",
                point.id,
                point.command,
                point.environment,
                duration(point.duration_ms),
                point.status
            );
        }
    }
    for (title, groups) in [
        ("By environment", &metrics.by_environment),
        ("By operator", &metrics.by_operator),
    ] {
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(text, "\n{title}");
        for group in groups {
            let _ = writeln!(
                text,
                "  {:<18} {:>5} runs  {:>4} success  average {}",
                group.name,
                group.runs,
                percent(group.success_rate),
                duration(group.average_ms)
            );
        }
    }
    text.trim_end().to_owned()
}
