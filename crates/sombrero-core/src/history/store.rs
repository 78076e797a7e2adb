//! The history store: rows in, records out.
//!
//! Why every write is a short immediate transaction: two sombrero processes (a deploy in
//! one terminal, `issue add` in another; or two CI jobs) share the file. WAL lets readers
//! run beside the writer, the busy timeout makes a second writer wait instead of failing,
//! and `BEGIN IMMEDIATE` takes the write lock up front so a transaction never has to be
//! retried half-way. Opening the store also repairs the past: runs whose process died
//! are marked `interrupted`.

use std::path::{Path, PathBuf};

use super::backend::{Db, DbError, PgClient, values};
use super::location::HistoryLocation;
pub use super::records::{IssueRecord, NewIssue, PhaseRecord, RunDetail, RunRecord, RunStatus};
use super::records::{issue_from_row, run_from_row};
use super::{HistoryError, clock, process, redact::redact};

/// How old a `running` run must be before it is called interrupted when its process
/// cannot be checked (recorded on another host, or without a process token). Generous:
/// an image build takes minutes, nothing takes a day.
pub const STALE_AFTER_MS: i64 = 24 * 3_600_000;

/// An open history database: a local `SQLite` file or a team's `PostgreSQL` database.
#[derive(Debug)]
pub struct Store {
    /// What errors and views name: the file, or the URL without its password.
    path: PathBuf,
    location: HistoryLocation,
    db: Db,
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
        let store = Self {
            location: HistoryLocation::File(path.clone()),
            path,
            db: Db::Sqlite(connection),
        };
        store.mark_interrupted(clock::now_ms())?;
        Ok(store)
    }

    /// Opens the history at `location`: [`Store::open`] for a file; for `PostgreSQL`,
    /// connects, checks the database is a sombrero history (or empty) and applies the
    /// migrations it lacks, then marks runs whose process died as interrupted.
    ///
    /// # Errors
    /// As [`Store::open`]; for `PostgreSQL`, [`HistoryError::Postgres`] (unreachable,
    /// login refused), [`HistoryError::ForeignPostgres`] or [`HistoryError::NewerSchema`].
    pub fn open_location(location: &HistoryLocation) -> Result<Self, HistoryError> {
        match location {
            HistoryLocation::File(path) => Self::open(path),
            HistoryLocation::Postgres(url) => {
                let shown = url.to_string();
                let path = PathBuf::from(&shown);
                let client =
                    PgClient::connect(url).map_err(|e| HistoryError::database(&path, e))?;
                let db = Db::Postgres(client);
                super::schema_postgres::migrate(&db, &shown)?;
                let store = Self {
                    path,
                    location: location.clone(),
                    db,
                };
                store.mark_interrupted(clock::now_ms())?;
                Ok(store)
            }
        }
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
            location: HistoryLocation::File(path.to_path_buf()),
            db: Db::Sqlite(connection),
        })
    }

    /// What this store reads and writes, as shown to people: the file, or the
    /// `PostgreSQL` URL without its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where this store is.
    pub fn location(&self) -> &HistoryLocation {
        &self.location
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn fail(&self, source: DbError) -> HistoryError {
        HistoryError::database(&self.path, source)
    }

    /// Runs this function inside one write transaction ([`Db::write`]).
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, DbError>,
    ) -> Result<T, HistoryError> {
        self.db.write(work).map_err(|e| self.fail(e))
    }

    /// Marks `running` runs whose process is gone (or that are older than
    /// [`STALE_AFTER_MS`] and cannot be checked) as interrupted; returns how many.
    ///
    /// # Errors
    /// A database failure.
    pub fn mark_interrupted(&self, now_ms: i64) -> Result<usize, HistoryError> {
        let candidates: Vec<(i64, String, i64, Option<String>, i64)> = self
            .db
            .query(
                "SELECT seq, host, pid, process_token, started_ms FROM runs \
                 WHERE status = 'running'",
                &[],
                |row| {
                    Ok((
                        row.i64(0)?,
                        row.string(1)?,
                        row.i64(2)?,
                        row.opt_string(3)?,
                        row.i64(4)?,
                    ))
                },
            )
            .map_err(|e| self.fail(e))?;
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
        self.write(|db| {
            for (seq, reason) in &dead {
                db.execute(
                    "UPDATE runs SET status = 'interrupted', error = ?2, ended_ms = \
                     (SELECT max(started_ms + coalesce(duration_ms, 0)) FROM phases \
                      WHERE run_seq = ?1) WHERE seq = ?1 AND status = 'running'",
                    &values![*seq, reason],
                )?;
                db.execute(
                    "UPDATE phases SET status = 'interrupted' \
                     WHERE run_seq = ?1 AND status = 'running'",
                    &values![*seq],
                )?;
            }
            Ok(dead.len())
        })
    }

    /// Recorded runs, newest first, optionally of one environment, at most `limit`.
    ///
    /// # Errors
    /// A database failure.
    pub fn runs(
        &self,
        environment: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, HistoryError> {
        let limit = limit.map_or(i64::MAX, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (CAST(?1 AS TEXT) IS NULL OR environment = ?1) \
             ORDER BY started_ms DESC, seq DESC LIMIT ?2"
        );
        self.db
            .query(&sql, &values![environment, limit], run_from_row)
            .map_err(|e| self.fail(e))
    }

    /// The run with this id, or the latest run when `id` is `None`.
    ///
    /// # Errors
    /// [`HistoryError::UnknownRun`] / [`HistoryError::NoRuns`], or an `SQLite` failure.
    pub fn run(&self, id: Option<&str>) -> Result<RunRecord, HistoryError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (CAST(?1 AS TEXT) IS NULL OR id = ?1) \
             ORDER BY started_ms DESC, seq DESC LIMIT 1"
        );
        let found = self
            .db
            .query_opt(&sql, &values![id], run_from_row)
            .map_err(|e| self.fail(e))?;
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
            .db
            .query(
                "SELECT name, started_ms, duration_ms, status, detail FROM phases \
                 WHERE run_seq = ?1 ORDER BY started_ms, seq",
                &values![run.seq],
                |row| {
                    let started_ms = row.i64(1)?;
                    Ok(PhaseRecord {
                        name: row.string(0)?,
                        started_at: clock::rfc3339(started_ms),
                        duration_ms: row.opt_i64(2)?,
                        status: RunStatus::parse(row.str(3)?),
                        detail: row.opt_string(4)?,
                        started_ms,
                    })
                },
            )
            .map_err(|e| self.fail(e))?;
        let issues = self
            .db
            .query(
                "SELECT phase, recorded_ms, description, symptoms, root_cause, resolution, \
                 time_to_resolve_ms, impact, prevention FROM issues WHERE run_seq = ?1 \
                 ORDER BY recorded_ms, seq",
                &values![run.seq],
                |row| issue_from_row(&run.id, row),
            )
            .map_err(|e| self.fail(e))?;
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
        self.write(|db| {
            db.execute(
                "INSERT INTO issues (run_seq, phase, recorded_ms, description, symptoms, \
                 root_cause, resolution, time_to_resolve_ms, impact, prevention) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                &values![
                    record.seq,
                    &issue.phase,
                    now,
                    &issue.description,
                    &issue.symptoms,
                    &issue.root_cause,
                    &issue.resolution,
                    issue.time_to_resolve_ms,
                    &issue.impact,
                    &issue.prevention
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
