//! The recording API: what a command that changes a cluster calls while it runs.
//!
//! ```text
//! let run = store.start_run(&RunStart::new("deploy", "production", env!("CARGO_PKG_VERSION")))?;
//! let vm = run.phase("clone", || clone_template())?;   // start, duration, status, error
//! run.set_vm_id(vm.id);
//! run.finish(&result)?;                                  // success or failed + error
//! ```
//!
//! Why phases never fail the command: the deployment matters more than its record. A
//! write that fails in the middle of a run (disk full, lock held too long) is kept in
//! [`Run::take_problems`] for the command to warn about, and the work goes on. Starting
//! and finishing a run do return errors, because a command can decide then. Phases are
//! written when they start (status `running`) and again when they end, so a run killed
//! mid-phase shows where it stopped. Errors are stored with credentials scrubbed.

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::LazyLock;

use super::backend::{Db, DbError, values};
use super::{HistoryError, Store, clock, process, redact::redact};

/// Where a run's timestamps come from: the system clock, or a manual one for fixtures.
pub trait Clock: std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        clock::now_ms()
    }
}

/// A clock that moves only when told to: fixtures and benchmarks record runs with exact,
/// known durations through the same API commands use.
#[derive(Debug, Default)]
pub struct ManualClock(Cell<i64>);

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self(Cell::new(start_ms))
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

static SYSTEM_CLOCK: SystemClock = SystemClock;
static PROCESS_TOKEN: LazyLock<Option<String>> =
    LazyLock::new(|| process::process_token(std::process::id()));

/// What is known when a run starts.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub command: String,
    pub environment: String,
    pub sombrero_version: String,
    /// `None`: the `USER` of this process.
    pub operator: Option<String>,
    /// The git branch and commit are read from here; `None`: the current directory.
    pub working_directory: Option<PathBuf>,
    pub template_id: Option<i64>,
    pub vm_id: Option<i64>,
}

impl RunStart {
    pub fn new(command: &str, environment: &str, sombrero_version: &str) -> Self {
        Self {
            command: command.to_owned(),
            environment: environment.to_owned(),
            sombrero_version: sombrero_version.to_owned(),
            operator: None,
            working_directory: None,
            template_id: None,
            vm_id: None,
        }
    }
}

/// A run being recorded. Dropping it unfinished records it as failed.
#[derive(Debug)]
pub struct Run<'store> {
    store: &'store Store,
    clock: &'store dyn Clock,
    seq: i64,
    id: String,
    finished: bool,
    problems: RefCell<Vec<HistoryError>>,
}

impl Store {
    /// Records the start of a run and returns it; the id is `DEP-YYYYMMDD-HHMMSS`, with a
    /// `-2`, `-3`, ... suffix when another run started in the same second.
    ///
    /// # Errors
    /// A database failure.
    pub fn start_run(&self, start: &RunStart) -> Result<Run<'_>, HistoryError> {
        self.start_run_with_clock(start, &SYSTEM_CLOCK)
    }

    /// [`Store::start_run`] with timestamps from `clock` (fixtures, benchmarks).
    ///
    /// # Errors
    /// A database failure.
    pub fn start_run_with_clock<'store>(
        &'store self,
        start: &RunStart,
        clock: &'store dyn Clock,
    ) -> Result<Run<'store>, HistoryError> {
        let directory = start
            .working_directory
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        let (branch, commit) = process::git_revision(&directory);
        let operator = start.operator.clone().unwrap_or_else(process::operator);
        let now = clock.now_ms();
        let base = format!("DEP-{}", clock::id_stamp(now));
        let (seq, id) = self.write(|db| {
            let mut id = base.clone();
            let mut suffix = 1;
            while db
                .query_opt(
                    "SELECT 1 FROM runs WHERE id = ?1",
                    &values![&id],
                    |_| Ok(()),
                )?
                .is_some()
            {
                suffix += 1;
                id = format!("{base}-{suffix}");
            }
            let seq = db.query_opt(
                "INSERT INTO runs (id, command, environment, operator, git_branch, git_commit, \
                 sombrero_version, template_id, vm_id, started_ms, status, host, pid, \
                 process_token) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', \
                 ?11, ?12, ?13) RETURNING seq",
                &values![
                    &id,
                    &start.command,
                    &start.environment,
                    operator,
                    branch,
                    commit,
                    &start.sombrero_version,
                    start.template_id,
                    start.vm_id,
                    now,
                    process::host_name(),
                    std::process::id(),
                    &*PROCESS_TOKEN,
                ],
                |row| row.i64(0),
            )?;
            Ok((seq.unwrap_or_default(), id))
        })?;
        Ok(Run {
            store: self,
            clock,
            seq,
            id,
            finished: false,
            problems: RefCell::new(Vec::new()),
        })
    }
}

impl Run<'_> {
    /// `DEP-...`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `work` as the phase `name`, recording its start, duration and outcome (the
    /// error text on failure) and returning what `work` returned.
    ///
    /// # Errors
    /// Exactly the error `work` returned; recording problems go to [`Run::take_problems`].
    pub fn phase<T, E: Display>(
        &self,
        name: &str,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.begin_phase(name);
        let result = work();
        guard.finish(&result);
        result
    }

    /// [`Run::phase`] for async work.
    ///
    /// # Errors
    /// Exactly the error `work` returned.
    pub async fn phase_async<T, E: Display>(
        &self,
        name: &str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let guard = self.begin_phase(name);
        let result = work.await;
        guard.finish(&result);
        result
    }

    /// Records that phase `name` started; finish it with the guard (dropping it unfinished
    /// records the phase as failed).
    pub fn begin_phase(&self, name: &str) -> PhaseGuard<'_, '_> {
        let started_ms = self.clock.now_ms();
        let seq = self
            .best_effort(|db| {
                db.query_opt(
                    "INSERT INTO phases (run_seq, name, started_ms, status) \
                     VALUES (?1, ?2, ?3, 'running') RETURNING seq",
                    &values![self.seq, name, started_ms],
                    |row| row.i64(0),
                )
            })
            .flatten();
        PhaseGuard {
            run: self,
            seq,
            started_ms,
            finished: false,
        }
    }

    /// Records the template the run uses, once known.
    pub fn set_template_id(&self, template_id: i64) {
        self.best_effort(|db| {
            db.execute(
                "UPDATE runs SET template_id = ?2 WHERE seq = ?1",
                &values![self.seq, template_id],
            )
        });
    }

    /// Records the VM the run creates or changes, once known.
    pub fn set_vm_id(&self, vm_id: i64) {
        self.best_effort(|db| {
            db.execute(
                "UPDATE runs SET vm_id = ?2 WHERE seq = ?1",
                &values![self.seq, vm_id],
            )
        });
    }

    /// Recording failures that happened during the run (the run itself went on).
    pub fn take_problems(&self) -> Vec<HistoryError> {
        self.problems.take()
    }

    /// Finishes the run as success or failed, from the command's result.
    ///
    /// # Errors
    /// A database failure.
    pub fn finish<T, E: Display>(mut self, result: &Result<T, E>) -> Result<(), HistoryError> {
        self.finished = true;
        match result {
            Ok(_) => self.record_end("success", None),
            Err(error) => self.record_end("failed", Some(&format!("{error:#}"))),
        }
    }

    /// Finishes the run as interrupted (the user pressed Ctrl-C).
    ///
    /// # Errors
    /// A database failure.
    pub fn interrupt(mut self) -> Result<(), HistoryError> {
        self.finished = true;
        self.record_end("interrupted", Some("interrupted by the user"))
    }

    fn record_end(&self, status: &str, error: Option<&str>) -> Result<(), HistoryError> {
        let ended_ms = self.clock.now_ms();
        let error = error.map(redact);
        self.store.write(|db| {
            db.execute(
                "UPDATE runs SET status = ?2, ended_ms = ?3, error = ?4 WHERE seq = ?1",
                &values![self.seq, status, ended_ms, error],
            )?;
            db.execute(
                "UPDATE phases SET status = 'interrupted' WHERE run_seq = ?1 AND status = 'running'",
                &values![self.seq],
            )
        })?;
        Ok(())
    }

    fn best_effort<T>(&self, work: impl FnOnce(&Db) -> Result<T, DbError>) -> Option<T> {
        match self.store.write(work) {
            Ok(value) => Some(value),
            Err(problem) => {
                self.problems.borrow_mut().push(problem);
                None
            }
        }
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.record_end(
                "failed",
                Some("the command ended without finishing the run"),
            );
        }
    }
}

/// A phase in progress. Finish it with [`PhaseGuard::finish`], [`PhaseGuard::succeed`] or
/// [`PhaseGuard::fail`]; dropping it unfinished records the phase as failed.
#[derive(Debug)]
pub struct PhaseGuard<'run, 'store> {
    run: &'run Run<'store>,
    seq: Option<i64>,
    started_ms: i64,
    finished: bool,
}

impl PhaseGuard<'_, '_> {
    /// Records success, with an optional detail (e.g. `VM 7000 on lloyd`).
    pub fn succeed(mut self, detail: Option<&str>) {
        self.record("success", detail);
    }

    /// Records failure with the error's text.
    pub fn fail(mut self, error: &dyn Display) {
        self.record("failed", Some(&format!("{error:#}")));
    }

    /// Records the outcome of a result.
    pub fn finish<T, E: Display>(self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.succeed(None),
            Err(error) => self.fail(error),
        }
    }

    fn record(&mut self, status: &str, detail: Option<&str>) {
        self.finished = true;
        let Some(seq) = self.seq else { return };
        let duration_ms = self.run.clock.now_ms() - self.started_ms;
        let detail = detail.map(redact);
        self.run.best_effort(|db| {
            db.execute(
                "UPDATE phases SET duration_ms = ?2, status = ?3, detail = ?4 WHERE seq = ?1",
                &values![seq, duration_ms, status, detail],
            )
        });
    }
}

impl Drop for PhaseGuard<'_, '_> {
    fn drop(&mut self) {
        if !self.finished {
            self.record("failed", Some("the phase ended without a result"));
        }
    }
}
