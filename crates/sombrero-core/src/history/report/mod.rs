//! The HTML report: one self-contained file with the metrics and four charts.
//!
//! Why one file with inline SVG and CSS and no script: a report is mailed, attached to a
//! ticket or opened from a CI artifact, often offline; it must never fetch anything (the
//! network rule in DESIGN.md applies to a browser opening it too). The charts are the
//! runbook's questions: how long each run took and where the time went (duration per run,
//! stacked by phase), whether deployments are getting more reliable (success rate per
//! day), which phase is slow (average and p95 per phase), and which phase causes trouble
//! (issues and failures per phase).

mod charts;
pub mod svg;

use std::fmt::Write as _;

use self::charts::{
    BarRow, bar_rows, duration_chart, float, float_count, phase_colour, seconds_label,
    success_chart,
};
use self::svg::{FAILURE_COLOUR, PALETTE, escape, legend};
use super::backend::DbError;
use super::metrics::filter_sql;
use super::{HistoryError, Metrics, MetricsFilter, Store, clock};

/// How many runs the duration chart shows (the most recent ones).
pub const RUNS_CHARTED: usize = 40;
/// How many days the success-rate chart shows (the most recent days with runs).
pub const DAYS_CHARTED: usize = 30;

/// One bar of the duration chart.
#[derive(Debug, Clone)]
pub struct RunBar {
    pub id: String,
    pub status: String,
    pub started_ms: i64,
    /// (phase name, duration) in the order the phases ran.
    pub phases: Vec<(String, i64)>,
}

/// One point of the success-rate chart.
#[derive(Debug, Clone)]
pub struct DayRate {
    pub day: String,
    pub finished: u64,
    pub succeeded: u64,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub metrics: Metrics,
    pub runs: Vec<RunBar>,
    pub days: Vec<DayRate>,
    pub generated_ms: i64,
}

impl Store {
    /// Collects the report's data for the runs `filter` selects.
    ///
    /// # Errors
    /// A database failure.
    pub fn report_data(&self, filter: &MetricsFilter) -> Result<ReportData, HistoryError> {
        let metrics = self.metrics(filter)?;
        let (where_sql, values) = filter_sql(filter);
        let db = self.db();
        let query = || -> Result<(Vec<RunBar>, Vec<DayRate>), DbError> {
            let sql = format!(
                "SELECT r.seq, r.id, r.status, r.started_ms, p.name, p.duration_ms FROM \
                 (SELECT * FROM runs r WHERE {where_sql} AND status != 'running' \
                  ORDER BY started_ms DESC, seq DESC LIMIT {RUNS_CHARTED}) r \
                 LEFT JOIN phases p ON p.run_seq = r.seq \
                 ORDER BY r.started_ms, r.seq, p.started_ms, p.seq"
            );
            let mut runs: Vec<(i64, RunBar)> = Vec::new();
            db.for_each(&sql, &values, |row| {
                let seq = row.i64(0)?;
                if runs.last().is_none_or(|(last, _)| *last != seq) {
                    runs.push((
                        seq,
                        RunBar {
                            id: row.string(1)?,
                            status: row.string(2)?,
                            started_ms: row.i64(3)?,
                            phases: Vec::new(),
                        },
                    ));
                }
                if let (Some(name), Some(duration)) = (row.opt_string(4)?, row.opt_i64(5)?)
                    && let Some((_, bar)) = runs.last_mut()
                {
                    bar.phases.push((name, duration));
                }
                Ok(())
            })?;
            let sql = format!(
                "SELECT r.started_ms / 86400000 AS day, count(*), \
                 count(*) FILTER (WHERE r.status = 'success') \
                 FROM runs r WHERE {where_sql} AND r.status != 'running' \
                 GROUP BY day ORDER BY day DESC LIMIT {DAYS_CHARTED}"
            );
            let mut days: Vec<DayRate> = db.query(&sql, &values, |row| {
                Ok(DayRate {
                    day: clock::day(row.i64(0)? * 86_400_000),
                    finished: u64::try_from(row.i64(1)?).unwrap_or(0),
                    succeeded: u64::try_from(row.i64(2)?).unwrap_or(0),
                })
            })?;
            days.reverse();
            Ok((runs.into_iter().map(|(_, bar)| bar).collect(), days))
        };
        let (runs, days) = query().map_err(|e| self.fail(e))?;
        Ok(ReportData {
            metrics,
            runs,
            days,
            generated_ms: clock::now_ms(),
        })
    }
}

/// The whole page.
pub fn render(data: &ReportData) -> String {
    let metrics = &data.metrics;
    let mut html = String::new();
    let environments = metrics.environment.as_deref().unwrap_or("all environments");
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>sombrero deployment report</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        html,
        "<h1>Deployment Analytics</h1><p class=\"muted\">{} · {} · generated {}{}</p>",
        escape(&metrics.scope),
        escape(environments),
        escape(&clock::human(data.generated_ms)),
        metrics
            .since
            .as_deref()
            .map(|since| format!(" · since {}", escape(since)))
            .unwrap_or_default()
    );
    let rate = metrics
        .success_rate
        .map_or_else(|| "n/a".to_owned(), |rate| format!("{:.0}%", rate * 100.0));
    let stat = |ms: Option<i64>| ms.map_or_else(|| "n/a".to_owned(), clock::duration);
    let duration = metrics.duration.as_ref();
    let cards = [
        ("Total runs", metrics.total_runs.to_string()),
        (
            "Success rate",
            format!(
                "{rate} ({}/{})",
                metrics.succeeded,
                metrics.succeeded + metrics.failed + metrics.interrupted
            ),
        ),
        ("Average", stat(duration.map(|d| d.average_ms))),
        ("Median", stat(duration.map(|d| d.median_ms))),
        ("Fastest", stat(duration.map(|d| d.fastest_ms))),
        ("Slowest", stat(duration.map(|d| d.slowest_ms))),
        ("Issues", metrics.total_issues.to_string()),
    ];
    html.push_str("<div class=\"cards\">");
    for (label, value) in cards {
        let _ = write!(
            html,
            "<div class=\"card\"><b>{}</b><span>{}</span></div>",
            escape(&value),
            label
        );
    }
    html.push_str("</div>");

    let phase_legend: Vec<(String, &str)> = metrics
        .phases
        .iter()
        .map(|phase| (phase.name.clone(), phase_colour(metrics, &phase.name)))
        .chain([("run failed or interrupted (dot)".to_owned(), FAILURE_COLOUR)])
        .collect();
    let _ = write!(
        html,
        "<section><h2>Duration per run (last {RUNS_CHARTED}), by phase</h2>{}{}</section>",
        legend(&phase_legend),
        duration_chart(data)
    );
    let _ = write!(
        html,
        "<section><h2>Success rate per day</h2>{}</section>",
        success_chart(data)
    );

    let phase_rows: Vec<BarRow<'_>> = metrics
        .phases
        .iter()
        .map(|phase| {
            let colour = phase_colour(metrics, &phase.name);
            let average = float(phase.average_ms.unwrap_or(0)) / 1000.0;
            let p95 = float(phase.p95_ms.unwrap_or(0)) / 1000.0;
            (
                phase.name.clone(),
                vec![
                    (
                        average,
                        colour,
                        format!("{} average {}", phase.name, stat(phase.average_ms)),
                    ),
                    (
                        p95,
                        "#9a9a9a",
                        format!("{} p95 {}", phase.name, stat(phase.p95_ms)),
                    ),
                ],
            )
        })
        .collect();
    let _ = write!(
        html,
        "<section><h2>Phase breakdown: average (colour) and p95 (grey)</h2>{}</section>",
        bar_rows("Phase durations", &phase_rows, seconds_label)
    );

    let issue_rows: Vec<BarRow<'_>> = metrics
        .phases
        .iter()
        .map(|phase| phase.name.clone())
        .chain(
            metrics
                .issues_by_phase
                .iter()
                .map(|issue| issue.phase.clone()),
        )
        .fold(Vec::<String>::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        })
        .into_iter()
        .map(|name| {
            let issues = metrics
                .issues_by_phase
                .iter()
                .find(|issue| issue.phase == name)
                .map_or(0, |issue| issue.count);
            let failures = metrics
                .phases
                .iter()
                .find(|phase| phase.name == name)
                .map_or(0, |phase| phase.failed);
            let bars = vec![
                (
                    float_count(issues),
                    PALETTE[1],
                    format!("{name}: {issues} issues logged"),
                ),
                (
                    float_count(failures),
                    FAILURE_COLOUR,
                    format!("{name}: {failures} failed"),
                ),
            ];
            (name, bars)
        })
        .collect();
    let _ = write!(
        html,
        "<section><h2>Issue frequency by phase: issues logged (amber), phase failures (red)</h2>{}</section>",
        bar_rows(
            "Issues and failures per phase",
            &issue_rows,
            |value| format!("{value:.0}")
        )
    );

    html.push_str("<section><h2>Latest runs</h2><table><tr><th>Run</th><th>Command</th><th>Environment</th><th>Started</th><th>Status</th><th>Duration</th></tr>");
    for point in metrics.trend.iter().rev() {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&point.id),
            escape(&point.command),
            escape(&point.environment),
            escape(&point.started_at),
            escape(&point.status),
            escape(&point.status),
            stat(point.duration_ms)
        );
    }
    html.push_str("</table></section></body></html>\n");
    html
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fff}\
h1{margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.muted{color:#666;margin:0 0 16px}\
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ddd;border-radius:8px;\
padding:10px 16px;min-width:110px}.card b{display:block;font-size:22px}.card span{color:#666;\
font-size:13px}.legend span{margin-right:16px;font-size:13px}.legend i{display:inline-block;\
width:12px;height:12px;margin-right:6px;vertical-align:-1px}table{border-collapse:collapse;\
font-size:13px}td,th{border-bottom:1px solid #eee;padding:4px 12px;text-align:left}\
.success{color:#00805c}.failed,.interrupted{color:#c04a00}";
