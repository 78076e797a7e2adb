//! The records the history hands out: runs, phases, issues, and how rows become them.
//!
//! Why separate from the store: these are the types every consumer (commands, `--json`,
//! the checklist, the report) sees; the store is how they are kept. Times are carried both
//! as RFC 3339 text for JSON and as milliseconds (skipped in JSON) for computing.

use rusqlite::Row;
use serde::Serialize;

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

pub(crate) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let started_ms: i64 = row.get(10)?;
    let ended_ms: Option<i64> = row.get(11)?;
    Ok(RunRecord {
        seq: row.get(0)?,
        id: row.get(1)?,
        command: row.get(2)?,
        environment: row.get(3)?,
        operator: row.get(4)?,
        git_branch: row.get(5)?,
        git_commit: row.get(6)?,
        sombrero_version: row.get(7)?,
        template_id: row.get(8)?,
        vm_id: row.get(9)?,
        started_at: clock::rfc3339(started_ms),
        ended_at: ended_ms.map(clock::rfc3339),
        duration_ms: ended_ms.map(|ended| ended - started_ms),
        status: RunStatus::parse(&row.get::<_, String>(12)?),
        error: row.get(13)?,
        started_ms,
    })
}

pub(crate) fn issue_from_row(run: &str, row: &Row<'_>) -> rusqlite::Result<IssueRecord> {
    Ok(IssueRecord {
        run: run.to_owned(),
        recorded_at: clock::rfc3339(row.get(1)?),
        issue: NewIssue {
            phase: row.get(0)?,
            description: row.get(2)?,
            symptoms: row.get(3)?,
            root_cause: row.get(4)?,
            resolution: row.get(5)?,
            time_to_resolve_ms: row.get(6)?,
            impact: row.get(7)?,
            prevention: row.get(8)?,
        },
    })
}
