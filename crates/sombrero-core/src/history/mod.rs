//! Deployment history: every run of a command that changes a cluster, its phases and the
//! runbook's issue log, kept in one `SQLite` file, plus what is computed from it (metrics,
//! the runbook's checklist, an HTML report, a Prometheus textfile).
//!
//! Why `SQLite` and not checklist files (what the original did): the original's dashboard
//! could only count markdown files and grep for a success marker, and its phase times were
//! never filled in. A database records real start times and durations as they happen,
//! survives two sombrero processes writing at once (WAL + busy timeout + immediate
//! transactions), and answers aggregate questions in milliseconds. The checklist is now
//! rendered *from* the database, so it can never disagree with the metrics.
//!
//! Layout: [`schema`] creates and checks the file, [`store`] reads and writes rows,
//! [`recorder`] is the API commands use while they run, [`metrics`] aggregates,
//! [`checklist`], [`prometheus`] and [`report`] render.

pub(crate) mod backend;
pub mod checklist;
pub mod clock;
mod error;
mod import;
pub mod location;
pub mod metrics;
#[cfg(test)]
mod metrics_tests;
mod pgpass;
pub mod process;
pub mod prometheus;
pub mod recorder;
mod records;
pub mod redact;
pub mod report;
mod schema;
mod schema_postgres;
mod statistics;
pub mod store;
#[cfg(test)]
mod tests;
pub mod tls;

pub use error::HistoryError;
pub use import::ImportSummary;
pub use location::{HistoryLocation, PostgresUrl};
pub use metrics::{CommandScope, Metrics, MetricsFilter};
pub use prometheus::write_atomically;
pub use recorder::{PhaseGuard, Run, RunStart};
pub use store::{IssueRecord, NewIssue, PhaseRecord, RunDetail, RunRecord, RunStatus, Store};
pub use tls::{SslMode, TlsError};

use std::path::PathBuf;

/// Where the history lives when nothing says otherwise, relative to the working directory
/// (the runbook keeps everything under `deployments/`).
pub fn default_path() -> PathBuf {
    PathBuf::from("deployments").join("sombrero.db")
}
