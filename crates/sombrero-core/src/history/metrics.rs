//! Deployment metrics: the runbook's "Deployment Analytics Dashboard", computed for real.
//!
//! Why this split between SQL and Rust: counts, sums and groupings are done by `SQLite`
//! (`GROUP BY` over integer columns, no rows leave the engine); medians and 95th
//! percentiles need the distribution, so the durations are streamed once as plain
//! integers (no per-row allocation) and the order statistics are found with
//! `select_nth_unstable`, which is linear, instead of sorting. This keeps 100,000 runs
//! well under the 200 ms budget (docs/performance.md, "History metrics").
//!
//! Definitions (docs/decisions/051-metrics-definitions.md): the success rate is success
//! over finished runs (success + failed + interrupted); run durations (average, median,
//! fastest, slowest) are over successful runs, because a run that failed after three
//! seconds is not a fast deployment; phase durations are over phases that succeeded,
//! and each phase also counts its failures. Median of an even count is the mean of the
//! two middle values (rounded down); p95 is the nearest-rank percentile.
//!
//! What is counted (docs/decisions/096-metrics-count-pipeline-runs.md): by default the
//! runs of the pipeline commands, `up` and `deploy` on its own, so "Total Deployments"
//! counts deployments and not every `verify` or `destroy`; [`CommandScope`] selects one
//! command or every recorded command instead.

use rusqlite::{ToSql, params_from_iter};
use serde::Serialize;

use super::statistics::{Groups, RunScan, RunSet, count, median, percentile, ratio};
use super::{HistoryError, Store, clock};

/// The commands whose runs are deployments: `up` (the whole pipeline) and `deploy` run on
/// its own. What the metrics count unless told otherwise.
pub const PIPELINE_COMMANDS: [&str; 2] = ["up", "deploy"];

/// The `--command` value that selects every recorded command.
pub const ALL_COMMANDS: &str = "all";

/// Which commands' runs the metrics cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CommandScope {
    /// Runs of the [`PIPELINE_COMMANDS`]: the default.
    #[default]
    Pipeline,
    /// Runs of every recorded command (`--command all`).
    All,
    /// Runs of this one command (`--command NAME`).
    Only(String),
}

impl CommandScope {
    /// The scope a `--command` value asks for: none is the pipeline, [`ALL_COMMANDS`] is
    /// every command, anything else that command.
    pub fn from_flag(command: Option<&str>) -> Self {
        match command {
            None => Self::Pipeline,
            Some(ALL_COMMANDS) => Self::All,
            Some(command) => Self::Only(command.to_owned()),
        }
    }

    /// The commands counted; `None` for every command.
    pub fn commands(&self) -> Option<Vec<String>> {
        match self {
            Self::Pipeline => Some(PIPELINE_COMMANDS.map(str::to_owned).to_vec()),
            Self::All => None,
            Self::Only(command) => Some(vec![command.clone()]),
        }
    }

    /// What the figures count, for a dashboard's scope line: "runs of up and deploy".
    pub fn describe(&self) -> String {
        match self {
            Self::Pipeline => format!(
                "runs of {} and {}",
                PIPELINE_COMMANDS[0], PIPELINE_COMMANDS[1]
            ),
            Self::All => "runs of every command".to_owned(),
            Self::Only(command) => format!("runs of {command}"),
        }
    }
}

/// Which runs the metrics cover. The default is every pipeline run of every environment.
#[derive(Debug, Clone, Default)]
pub struct MetricsFilter {
    pub environment: Option<String>,
    /// Only runs started at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    pub commands: CommandScope,
}

/// Everything `sombrero metrics` shows; `--json` prints this struct.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub environment: Option<String>,
    pub since: Option<String>,
    /// The commands whose runs are counted; `null` for every command.
    pub commands: Option<Vec<String>>,
    /// The same in words ("runs of up and deploy"), as the dashboard shows it.
    pub scope: String,
    pub total_runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub interrupted: u64,
    pub running: u64,
    /// Success over finished runs, 0..=1; `None` before any run finished.
    pub success_rate: Option<f64>,
    /// Over successful runs; `None` before the first success.
    pub duration: Option<DurationStats>,
    pub phases: Vec<PhaseStats>,
    pub total_issues: u64,
    pub issues_by_phase: Vec<IssueCount>,
    /// The last runs, oldest first.
    pub trend: Vec<TrendPoint>,
    pub by_environment: Vec<GroupStats>,
    pub by_operator: Vec<GroupStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DurationStats {
    pub average_ms: i64,
    pub median_ms: i64,
    pub fastest_ms: i64,
    pub fastest_run: String,
    pub slowest_ms: i64,
    pub slowest_run: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    pub name: String,
    pub succeeded: u64,
    pub failed: u64,
    pub average_ms: Option<i64>,
    pub p95_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueCount {
    pub phase: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub id: String,
    pub command: String,
    pub environment: String,
    pub started_at: String,
    pub status: String,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    pub name: String,
    pub runs: u64,
    pub succeeded: u64,
    pub success_rate: Option<f64>,
    pub average_ms: Option<i64>,
}

/// How many runs the trend shows.
pub const TREND_LENGTH: usize = 10;

/// The `WHERE` clause (on `runs r`) and its parameters for a filter.
pub(crate) fn filter_sql(filter: &MetricsFilter) -> (String, Vec<Box<dyn ToSql>>) {
    let mut clauses = vec!["1 = 1".to_owned()];
    let mut values: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(environment) = &filter.environment {
        values.push(Box::new(environment.clone()));
        clauses.push(format!("r.environment = ?{}", values.len()));
    }
    if let Some(since) = filter.since_ms {
        values.push(Box::new(since));
        clauses.push(format!("r.started_ms >= ?{}", values.len()));
    }
    if let Some(commands) = filter.commands.commands() {
        let mut placeholders = Vec::new();
        for command in commands {
            values.push(Box::new(command));
            placeholders.push(format!("?{}", values.len()));
        }
        clauses.push(format!("r.command IN ({})", placeholders.join(", ")));
    }
    (clauses.join(" AND "), values)
}

/// Whether `filter` selects every run, so the phases need no filtering at all.
fn is_unfiltered(filter: &MetricsFilter) -> bool {
    filter.environment.is_none()
        && filter.since_ms.is_none()
        && filter.commands == CommandScope::All
}

impl Store {
    /// Computes the metrics for the runs `filter` selects.
    ///
    /// # Errors
    /// An `SQLite` failure.
    pub fn metrics(&self, filter: &MetricsFilter) -> Result<Metrics, HistoryError> {
        self.compute_metrics(filter).map_err(|e| self.sqlite(e))
    }

    fn compute_metrics(&self, filter: &MetricsFilter) -> rusqlite::Result<Metrics> {
        let connection = self.connection();
        let (where_sql, values) = filter_sql(filter);
        let arguments = || params_from_iter(values.iter());

        let unfiltered = is_unfiltered(filter);
        let mut scan = self.scan_runs(&where_sql, &values, !unfiltered)?;
        let mut selected = (!unfiltered).then(|| RunSet::new(std::mem::take(&mut scan.seqs)));
        let [succeeded, failed, interrupted, running] = scan.by_status;
        let mut durations = scan.durations;
        let duration = if durations.is_empty() {
            None
        } else {
            let total: i64 = durations.iter().sum();
            let average_ms = total / i64::try_from(durations.len()).unwrap_or(i64::MAX);
            let id_of = |seq: i64| {
                connection.query_row("SELECT id FROM runs WHERE seq = ?1", [seq], |row| {
                    row.get::<_, String>(0)
                })
            };
            Some(DurationStats {
                average_ms,
                median_ms: median(&mut durations).unwrap_or(average_ms),
                fastest_ms: scan.fastest.0,
                fastest_run: id_of(scan.fastest.1)?,
                slowest_ms: scan.slowest.0,
                slowest_run: id_of(scan.slowest.1)?,
            })
        };

        let phases = self.phase_stats(selected.as_mut())?;

        let sql = format!(
            "SELECT i.phase, count(*) FROM issues i JOIN runs r ON r.seq = i.run_seq \
             WHERE {where_sql} GROUP BY i.phase ORDER BY count(*) DESC, i.phase"
        );
        let issues_by_phase: Vec<IssueCount> = connection
            .prepare(&sql)?
            .query_map(arguments(), |row| {
                Ok(IssueCount {
                    phase: row.get(0)?,
                    count: count(row.get(1)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;

        let sql = format!(
            "SELECT id, command, environment, started_ms, ended_ms, status FROM runs r \
             WHERE {where_sql} ORDER BY started_ms DESC, seq DESC LIMIT {TREND_LENGTH}"
        );
        let mut trend: Vec<TrendPoint> = connection
            .prepare(&sql)?
            .query_map(arguments(), |row| {
                let started_ms: i64 = row.get(3)?;
                let ended_ms: Option<i64> = row.get(4)?;
                Ok(TrendPoint {
                    id: row.get(0)?,
                    command: row.get(1)?,
                    environment: row.get(2)?,
                    started_at: clock::rfc3339(started_ms),
                    status: row.get(5)?,
                    duration_ms: ended_ms.map(|ended| ended - started_ms),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        trend.reverse();

        Ok(Metrics {
            environment: filter.environment.clone(),
            since: filter.since_ms.map(clock::rfc3339),
            commands: filter.commands.commands(),
            scope: filter.commands.describe(),
            total_runs: succeeded + failed + interrupted + running,
            succeeded,
            failed,
            interrupted,
            running,
            success_rate: ratio(succeeded, succeeded + failed + interrupted),
            duration,
            phases,
            total_issues: issues_by_phase.iter().map(|issue| issue.count).sum(),
            issues_by_phase,
            trend,
            by_environment: scan.by_environment.finish(),
            by_operator: scan.by_operator.finish(),
        })
    }

    /// One pass over the selected runs: status counts, successful durations (with the
    /// fastest and slowest run), the per-environment and per-operator groups, and (with
    /// `keep_seqs`) the selected runs' seqs for the phase scan. One sequential scan is
    /// cheaper than four `GROUP BY` queries that each scan and sort.
    fn scan_runs(
        &self,
        where_sql: &str,
        values: &[Box<dyn ToSql>],
        keep_seqs: bool,
    ) -> rusqlite::Result<RunScan> {
        let sql = format!(
            "SELECT seq, status, environment, operator, started_ms, ended_ms FROM runs r \
             WHERE {where_sql}"
        );
        let mut scan = RunScan {
            by_status: [0; 4],
            durations: Vec::new(),
            fastest: (i64::MAX, 0),
            slowest: (i64::MIN, 0),
            by_environment: Groups::default(),
            by_operator: Groups::default(),
            seqs: Vec::new(),
        };
        let mut statement = self.connection().prepare(&sql)?;
        let mut rows = statement.query(params_from_iter(values.iter()))?;
        while let Some(row) = rows.next()? {
            let status = row.get_ref(1)?.as_str()?;
            let slot = match status {
                "success" => 0,
                "failed" => 1,
                "interrupted" => 2,
                _ => 3,
            };
            scan.by_status[slot] += 1;
            if keep_seqs {
                scan.seqs.push(row.get(0)?);
            }
            let duration = match (slot, row.get::<_, Option<i64>>(5)?) {
                (0, Some(ended)) => Some(ended - row.get::<_, i64>(4)?),
                _ => None,
            };
            if let Some(duration) = duration {
                let seq: i64 = row.get(0)?;
                if duration < scan.fastest.0 {
                    scan.fastest = (duration, seq);
                }
                if duration > scan.slowest.0 {
                    scan.slowest = (duration, seq);
                }
                scan.durations.push(duration);
            }
            let finished = slot < 3;
            scan.by_environment
                .add(row.get_ref(2)?.as_str()?, finished, slot == 0, duration);
            scan.by_operator
                .add(row.get_ref(3)?.as_str()?, finished, slot == 0, duration);
        }
        Ok(scan)
    }

    /// Per-phase counts, average and p95, from one scan of the phases, keeping those of
    /// the `selected` runs (`None`: every run). Filtering here instead of joining the
    /// phases to the runs saves a lookup in the runs table per phase row: the default
    /// filter (the pipeline's runs) selects most runs, so the join would visit nearly all
    /// of them again (docs/performance.md, "History metrics").
    fn phase_stats(&self, mut selected: Option<&mut RunSet>) -> rusqlite::Result<Vec<PhaseStats>> {
        let sql = "SELECT p.run_seq, p.name, p.duration_ms, p.status FROM phases p ORDER BY p.seq";
        // (name, successful durations, failures) in order of first appearance.
        let mut collected: Vec<(String, Vec<i64>, u64)> = Vec::new();
        let mut statement = self.connection().prepare(sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            if let Some(selected) = selected.as_deref_mut()
                && !selected.contains(row.get(0)?)
            {
                continue;
            }
            let name = row.get_ref(1)?.as_str()?;
            let index = if let Some(index) = collected.iter().position(|(known, ..)| known == name)
            {
                index
            } else {
                collected.push((name.to_owned(), Vec::new(), 0));
                collected.len() - 1
            };
            let entry = &mut collected[index];
            match (row.get_ref(3)?.as_str()?, row.get::<_, Option<i64>>(2)?) {
                ("success", Some(duration)) => entry.1.push(duration),
                ("failed" | "interrupted", _) => entry.2 += 1,
                _ => {}
            }
        }
        Ok(collected
            .into_iter()
            .map(|(name, mut durations, failed)| {
                let total: i64 = durations.iter().sum();
                let succeeded = durations.len();
                PhaseStats {
                    name,
                    succeeded: succeeded as u64,
                    failed,
                    average_ms: (succeeded > 0)
                        .then(|| total / i64::try_from(succeeded).unwrap_or(i64::MAX)),
                    p95_ms: percentile(&mut durations, 95),
                }
            })
            .collect())
    }
}
