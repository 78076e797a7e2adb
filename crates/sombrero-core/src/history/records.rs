//! The records the history hands out: runs, phases, issues, and how rows become them.
//!
//! Why separate from the store: these are the types every consumer (commands, `--json`,
//! the checklist, the report) sees; the store is how they are kept. Times are carried both
//! as RFC 3339 text for JSON and as milliseconds (skipped in JSON) for computing.

use serde::Serialize;

use super::backend::{DbError, Row};
use super::clock;

/// A run's or phase's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Success,
    Failed,
    Interrupted,
}

impl RunStatus {
    /// The word stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "success" => Self::Success,
            "failed" => Self::Failed,
            "interrupted" => Self::Interrupted,
            _ => Self::Running,
        }
    }
}

/// One recorded run of a command.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub command: String,
    pub environment: String,
    pub operator: String,
    pub git_branch: Option<String>,
    pub git_commit: Option<String>,
    pub sombrero_version: String,
    pub template_id: Option<i64>,
    pub vm_id: Option<i64>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub status: RunStatus,
    pub error: Option<String>,
    #[serde(skip)]
    pub started_ms: i64,
    #[serde(skip)]
    pub(crate) seq: i64,
}

/// One phase of a run.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRecord {
    pub name: String,
    pub started_at: String,
    pub duration_ms: Option<i64>,
    pub status: RunStatus,
    pub detail: Option<String>,
    #[serde(skip)]
    pub started_ms: i64,
}

/// An entry of the runbook's "Issues & Resolutions" log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewIssue {
    pub phase: String,
    pub description: String,
    pub symptoms: Option<String>,
    pub root_cause: Option<String>,
    pub resolution: Option<String>,
    pub time_to_resolve_ms: Option<i64>,
    pub impact: Option<String>,
    pub prevention: Option<String>,
}

/// A recorded issue, with the run it belongs to and when it was logged.
#[derive(Debug, Clone, Serialize)]
pub struct IssueRecord {
    pub run: String,
    pub recorded_at: String,
    #[serde(flatten)]
    pub issue: NewIssue,
}

/// A run with its phases and issues, in order.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub run: RunRecord,
    pub phases: Vec<PhaseRecord>,
    pub issues: Vec<IssueRecord>,
}

pub(crate) fn run_from_row(row: &dyn Row) -> Result<RunRecord, DbError> {
    let started_ms = row.i64(10)?;
    let ended_ms = row.opt_i64(11)?;
    Ok(RunRecord {
        seq: row.i64(0)?,
        id: row.string(1)?,
        command: row.string(2)?,
        environment: row.string(3)?,
        operator: row.string(4)?,
        git_branch: row.opt_string(5)?,
        git_commit: row.opt_string(6)?,
        sombrero_version: row.string(7)?,
        template_id: row.opt_i64(8)?,
        vm_id: row.opt_i64(9)?,
        started_at: clock::rfc3339(started_ms),
        ended_at: ended_ms.map(clock::rfc3339),
        duration_ms: ended_ms.map(|ended| ended - started_ms),
        status: RunStatus::parse(row.str(12)?),
        error: row.opt_string(13)?,
        started_ms,
    })
}

pub(crate) fn issue_from_row(run: &str, row: &dyn Row) -> Result<IssueRecord, DbError> {
    Ok(IssueRecord {
        run: run.to_owned(),
        recorded_at: clock::rfc3339(row.i64(1)?),
        issue: NewIssue {
            phase: row.string(0)?,
            description: row.string(2)?,
            symptoms: row.opt_string(3)?,
            root_cause: row.opt_string(4)?,
            resolution: row.opt_string(5)?,
            time_to_resolve_ms: row.opt_i64(6)?,
            impact: row.opt_string(7)?,
            prevention: row.opt_string(8)?,
        },
    })
}
