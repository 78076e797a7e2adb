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

use serde::Serialize;

use super::backend::{DbError, Scan, Value};
use super::statistics::{Groups, RunScan, RunSet, median, percentile, ratio};
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

/// Every phase, for [`Store::phase_stats`], in no particular order: an `ORDER BY` made
/// `PostgreSQL` walk the primary key instead of the table (~10 % of the scan); the
/// phases are listed in the order of their first `seq` instead.
const PHASES_SQL: &str = "SELECT p.run_seq, p.name, p.duration_ms, p.status, p.seq FROM phases p";

/// How many runs the trend shows.
pub const TREND_LENGTH: usize = 10;

/// The `WHERE` clause (on `runs r`) and its parameters for a filter.
pub(crate) fn filter_sql(filter: &MetricsFilter) -> (String, Vec<Value>) {
    let mut clauses = vec!["1 = 1".to_owned()];
    let mut values: Vec<Value> = Vec::new();
    if let Some(environment) = &filter.environment {
        values.push(Value::from(environment));
        clauses.push(format!("r.environment = ?{}", values.len()));
    }
    if let Some(since) = filter.since_ms {
        values.push(Value::from(since));
        clauses.push(format!("r.started_ms >= ?{}", values.len()));
    }
    if let Some(commands) = filter.commands.commands() {
        let mut placeholders = Vec::new();
        for command in commands {
            values.push(Value::from(command));
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
    /// A database failure.
    pub fn metrics(&self, filter: &MetricsFilter) -> Result<Metrics, HistoryError> {
        self.compute_metrics(filter).map_err(|e| self.fail(e))
    }

    fn compute_metrics(&self, filter: &MetricsFilter) -> Result<Metrics, DbError> {
        let db = self.db();
        let (where_sql, values) = filter_sql(filter);

        let unfiltered = is_unfiltered(filter);
        // Started first: on PostgreSQL the phases then arrive on a second session while
        // this one reads the runs.
        let phases = db.scan(PHASES_SQL, true);
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
                db.query_opt(
                    "SELECT id FROM runs WHERE seq = ?1",
                    &[Value::from(seq)],
                    |row| row.string(0),
                )
                .map(Option::unwrap_or_default)
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

        let phases = Self::phase_stats(phases, selected.as_mut())?;

        let issues_by_phase = self.issue_counts(selected.as_mut())?;

        let sql = format!(
            "SELECT id, command, environment, started_ms, ended_ms, status FROM runs r \
             WHERE {where_sql} ORDER BY started_ms DESC, seq DESC LIMIT {TREND_LENGTH}"
        );
        let mut trend: Vec<TrendPoint> = db.query(&sql, &values, |row| {
            let started_ms = row.i64(3)?;
            let ended_ms = row.opt_i64(4)?;
            Ok(TrendPoint {
                id: row.string(0)?,
                command: row.string(1)?,
                environment: row.string(2)?,
                started_at: clock::rfc3339(started_ms),
                status: row.string(5)?,
                duration_ms: ended_ms.map(|ended| ended - started_ms),
            })
        })?;
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
        values: &[Value],
        keep_seqs: bool,
    ) -> Result<RunScan, DbError> {
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
        self.db().for_each(&sql, values, |row| {
            let status = row.str(1)?;
            let slot = match status {
                "success" => 0,
                "failed" => 1,
                "interrupted" => 2,
                _ => 3,
            };
            scan.by_status[slot] += 1;
            if keep_seqs {
                scan.seqs.push(row.i64(0)?);
            }
            let duration = match (slot, row.opt_i64(5)?) {
                (0, Some(ended)) => Some(ended - row.i64(4)?),
                _ => None,
            };
            if let Some(duration) = duration {
                let seq = row.i64(0)?;
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
                .add(row.str(2)?, finished, slot == 0, duration);
            scan.by_operator
                .add(row.str(3)?, finished, slot == 0, duration);
            Ok(())
        })?;
        Ok(scan)
    }

    /// Issues per phase, most first (ties by name, byte order), of the `selected` runs
    /// (`None`: every run). Filtered with the run set like the phases rather than joined
    /// to the runs: on `PostgreSQL` the join scanned every run again (~20 ms of the
    /// metrics' budget for ~2,000 issues), and sorting here gives both engines the same
    /// order whatever the database's collation.
    fn issue_counts(&self, mut selected: Option<&mut RunSet>) -> Result<Vec<IssueCount>, DbError> {
        let mut counts: Vec<IssueCount> = Vec::new();
        self.db()
            .scan("SELECT i.run_seq, i.phase FROM issues i", false)
            .for_each(|row| {
                if let Some(selected) = selected.as_deref_mut()
                    && !selected.contains(row.i64(0)?)
                {
                    return Ok(());
                }
                let phase = row.str(1)?;
                if let Some(known) = counts.iter_mut().find(|known| known.phase == phase) {
                    known.count += 1;
                } else {
                    counts.push(IssueCount {
                        phase: phase.to_owned(),
                        count: 1,
                    });
                }
                Ok(())
            })?;
        counts.sort_by(|left, right| {
            right
                .count
                .cmp(&left.count)
                .then_with(|| left.phase.cmp(&right.phase))
        });
        Ok(counts)
    }

    /// Per-phase counts, average and p95, from one scan of the phases, keeping those of
    /// the `selected` runs (`None`: every run). Filtering here instead of joining the
    /// phases to the runs saves a lookup in the runs table per phase row: the default
    /// filter (the pipeline's runs) selects most runs, so the join would visit nearly all
    /// of them again (docs/performance.md, "History metrics").
    fn phase_stats(
        phases: Scan<'_>,
        mut selected: Option<&mut RunSet>,
    ) -> Result<Vec<PhaseStats>, DbError> {
        // (name, successful durations, failures, first seq).
        let mut collected: Vec<(String, Vec<i64>, u64, i64)> = Vec::new();
        phases.for_each(|row| {
            if let Some(selected) = selected.as_deref_mut()
                && !selected.contains(row.i64(0)?)
            {
                return Ok(());
            }
            let name = row.str(1)?;
            let seq = row.i64(4)?;
            let index = if let Some(index) = collected.iter().position(|(known, ..)| known == name)
            {
                index
            } else {
                collected.push((name.to_owned(), Vec::new(), 0, seq));
                collected.len() - 1
            };
            let entry = &mut collected[index];
            entry.3 = entry.3.min(seq);
            match (row.str(3)?, row.opt_i64(2)?) {
                ("success", Some(duration)) => entry.1.push(duration),
                ("failed" | "interrupted", _) => entry.2 += 1,
                _ => {}
            }
            Ok(())
        })?;
        collected.sort_unstable_by_key(|(.., first)| *first);
        Ok(collected
            .into_iter()
            .map(|(name, mut durations, failed, _)| {
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
