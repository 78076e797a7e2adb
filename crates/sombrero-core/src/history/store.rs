//! The history store: rows in, records out.
//!
//! Why every write is a short immediate transaction: two sombrero processes (a deploy in
//! one terminal, `issue add` in another; or two CI jobs) share the file. WAL lets readers
//! run beside the writer, the busy timeout makes a second writer wait instead of failing,
//! and `BEGIN IMMEDIATE` takes the write lock up front so a transaction never has to be
//! retried half-way. Opening the store also repairs the past: runs whose process died
//! are marked `interrupted`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use super::records::{IssueRecord, NewIssue, PhaseRecord, RunDetail, RunRecord, RunStatus};
use super::records::{issue_from_row, run_from_row};
use super::{HistoryError, clock, process, redact::redact};

/// How old a `running` run must be before it is called interrupted when its process
/// cannot be checked (recorded on another host, or without a process token). Generous:
/// an image build takes minutes, nothing takes a day.
pub const STALE_AFTER_MS: i64 = 24 * 3_600_000;

/// An open history database.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    connection: Connection,
}

const RUN_COLUMNS: &str = "seq, id, command, environment, operator, git_branch, git_commit, \
     sombrero_version, template_id, vm_id, started_ms, ended_ms, status, error";

impl Store {
    /// Opens (or creates) the history at `path` and marks runs whose process died as
    /// interrupted.
    ///
    /// # Errors
    /// A [`HistoryError`] naming the path: not a database, another program's database, a
    /// newer schema, unwritable, or an `SQLite` failure. Nothing is written to a file that
    /// is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref().to_path_buf();
        let connection = super::schema::open(&path)?;
        let store = Self { path, connection };
        store.mark_interrupted(clock::now_ms())?;
        Ok(store)
    }

    /// [`Store::open`] for a recording command of the project in `project`: a missing
    /// directory of the database is created only when it is the file's own directory and
    /// lies inside the project (the default `deployments/`); anywhere else a missing
    /// directory is an error, so a mistyped `SOMBRERO_HISTORY` never creates a tree of
    /// directories somewhere on the machine.
    ///
    /// # Errors
    /// [`HistoryError::MissingDirectory`], or as [`Store::open`].
    pub fn open_in_project(path: impl AsRef<Path>, project: &Path) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        if let Some(directory) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty() && !parent.exists())
        {
            // A relative path's empty parent is the working directory.
            let or_here = |path: &Path| {
                if path.as_os_str().is_empty() {
                    Path::new(".").to_path_buf()
                } else {
                    path.to_path_buf()
                }
            };
            let within = |base: &Path| {
                let base = std::fs::canonicalize(or_here(base)).ok()?;
                let above = std::fs::canonicalize(or_here(directory.parent()?)).ok()?;
                Some(above.starts_with(base))
            };
            if within(project) != Some(true) {
                return Err(HistoryError::MissingDirectory {
                    path: directory.to_path_buf(),
                });
            }
            std::fs::create_dir(directory).map_err(|source| HistoryError::CreateDirectory {
                path: directory.to_path_buf(),
                source,
            })?;
        }
        Self::open(path)
    }

    /// Opens the history at `path` if the file exists; otherwise an empty store in memory
    /// that still names `path` in its errors. For commands that only read: they must not
    /// create a history file wherever they happen to be run.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        if path.exists() {
            return Self::open(path);
        }
        let connection =
            super::schema::open(Path::new(":memory:")).map_err(|error| match error {
                HistoryError::Sqlite { source, .. } => HistoryError::sqlite(path, source),
                other => other,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            connection,
        })
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    pub(crate) fn sqlite(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::sqlite(&self.path, source)
    }

    /// Runs this function inside one `BEGIN IMMEDIATE` transaction.
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        let transaction =
            rusqlite::Transaction::new_unchecked(&self.connection, TransactionBehavior::Immediate)
                .map_err(|e| self.sqlite(e))?;
        let value = work(&transaction).map_err(|e| self.sqlite(e))?;
        transaction.commit().map_err(|e| self.sqlite(e))?;
        Ok(value)
    }

    /// Marks `running` runs whose process is gone (or that are older than
    /// [`STALE_AFTER_MS`] and cannot be checked) as interrupted; returns how many.
    ///
    /// # Errors
    /// An `SQLite` failure.
    pub fn mark_interrupted(&self, now_ms: i64) -> Result<usize, HistoryError> {
        let candidates: Vec<(i64, String, i64, Option<String>, i64)> = self
            .connection
            .prepare(
                "SELECT seq, host, pid, process_token, started_ms FROM runs \
                 WHERE status = 'running'",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })?
                    .collect()
            })
            .map_err(|e| self.sqlite(e))?;
        let dead: Vec<(i64, String)> = candidates
            .into_iter()
            .filter_map(|(seq, host, pid, token, started_ms)| {
                let gone = match process::is_alive(&host, pid, token.as_deref()) {
                    Some(alive) => !alive,
                    None => now_ms - started_ms > STALE_AFTER_MS,
                };
                gone.then(|| {
                    let reason = format!(
                        "process {pid} on {host} stopped before finishing the run \
                         (noticed {})",
                        clock::rfc3339(now_ms)
                    );
                    (seq, reason)
                })
            })
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        self.write(|connection| {
            for (seq, reason) in &dead {
                connection.execute(
                    "UPDATE runs SET status = 'interrupted', error = ?2, ended_ms = \
                     (SELECT max(started_ms + coalesce(duration_ms, 0)) FROM phases \
                      WHERE run_seq = ?1) WHERE seq = ?1 AND status = 'running'",
                    params![seq, reason],
                )?;
                connection.execute(
                    "UPDATE phases SET status = 'interrupted' \
                     WHERE run_seq = ?1 AND status = 'running'",
                    params![seq],
                )?;
            }
            Ok(dead.len())
        })
    }

    /// Recorded runs, newest first, optionally of one environment, at most `limit`.
    ///
    /// # Errors
    /// An `SQLite` failure.
    pub fn runs(
        &self,
        environment: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, HistoryError> {
        let limit = limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR environment = ?1) \
             ORDER BY started_ms DESC, seq DESC LIMIT ?2"
        );
        self.connection
            .prepare(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params![environment, limit], run_from_row)?
                    .collect()
            })
            .map_err(|e| self.sqlite(e))
    }

    /// The run with this id, or the latest run when `id` is `None`.
    ///
    /// # Errors
    /// [`HistoryError::UnknownRun`] / [`HistoryError::NoRuns`], or an `SQLite` failure.
    pub fn run(&self, id: Option<&str>) -> Result<RunRecord, HistoryError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR id = ?1) \
             ORDER BY started_ms DESC, seq DESC LIMIT 1"
        );
        let found = self
            .connection
            .query_row(&sql, params![id], run_from_row)
            .optional()
            .map_err(|e| self.sqlite(e))?;
        found.ok_or_else(|| match id {
            Some(id) => HistoryError::UnknownRun {
                id: id.to_owned(),
                path: self.path.clone(),
            },
            None => HistoryError::NoRuns {
                path: self.path.clone(),
            },
        })
    }

    /// A run with its phases and issues.
    ///
    /// # Errors
    /// As [`Store::run`].
    pub fn run_detail(&self, id: Option<&str>) -> Result<RunDetail, HistoryError> {
        let run = self.run(id)?;
        let phases = self
            .connection
            .prepare(
                "SELECT name, started_ms, duration_ms, status, detail FROM phases \
                 WHERE run_seq = ?1 ORDER BY started_ms, seq",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([run.seq], |row| {
                        let started_ms: i64 = row.get(1)?;
                        Ok(PhaseRecord {
                            name: row.get(0)?,
                            started_at: clock::rfc3339(started_ms),
                            duration_ms: row.get(2)?,
                            status: RunStatus::parse(&row.get::<_, String>(3)?),
                            detail: row.get(4)?,
                            started_ms,
                        })
                    })?
                    .collect()
            })
            .map_err(|e| self.sqlite(e))?;
        let issues = self
            .connection
            .prepare(
                "SELECT phase, recorded_ms, description, symptoms, root_cause, resolution, \
                 time_to_resolve_ms, impact, prevention FROM issues WHERE run_seq = ?1 \
                 ORDER BY recorded_ms, seq",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([run.seq], |row| issue_from_row(&run.id, row))?
                    .collect()
            })
            .map_err(|e| self.sqlite(e))?;
        Ok(RunDetail {
            run,
            phases,
            issues,
        })
    }

    /// Adds an entry to the issue log of a run (the latest when `run` is `None`).
    /// Free text is scrubbed of anything that looks like a credential.
    ///
    /// # Errors
    /// As [`Store::run`], or an `SQLite` failure.
    pub fn add_issue(
        &self,
        run: Option<&str>,
        issue: &NewIssue,
    ) -> Result<IssueRecord, HistoryError> {
        let record = self.run(run)?;
        let clean = |text: &Option<String>| text.as_deref().map(redact);
        let issue = NewIssue {
            phase: redact(&issue.phase),
            description: redact(&issue.description),
            symptoms: clean(&issue.symptoms),
            root_cause: clean(&issue.root_cause),
            resolution: clean(&issue.resolution),
            time_to_resolve_ms: issue.time_to_resolve_ms,
            impact: clean(&issue.impact),
            prevention: clean(&issue.prevention),
        };
        let now = clock::now_ms();
        self.write(|connection| {
            connection.execute(
                "INSERT INTO issues (run_seq, phase, recorded_ms, description, symptoms, \
                 root_cause, resolution, time_to_resolve_ms, impact, prevention) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    record.seq,
                    issue.phase,
                    now,
                    issue.description,
                    issue.symptoms,
                    issue.root_cause,
                    issue.resolution,
                    issue.time_to_resolve_ms,
                    issue.impact,
                    issue.prevention
                ],
            )
        })?;
        Ok(IssueRecord {
            run: record.id,
            recorded_at: clock::rfc3339(now),
            issue,
        })
    }
}
