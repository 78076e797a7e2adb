//! One writer per environment at a time.
//!
//! Why: two commands that write the same environment (a `deploy` while a `destroy` runs,
//! two `deploy`s from two checkouts) interleave their API writes; the later one then
//! reports a state that the other one changes a second later. Every command that writes
//! (`deploy`, `destroy`, `adopt`; later `build`, `configure`, `up`, `rollback`) takes the
//! environment's lock before its first request; readers (`plan`, `status`, `outputs`)
//! never take it and never wait. A second writer is refused at once, naming the holder.
//!
//! The lock is keyed by the API endpoint and the environment, not by the project
//! directory, so two checkouts on one machine contend for the same cluster's
//! environment. It sits behind [`LockBackend`] so that team-wide locks (`PostgreSQL`) can
//! replace the file locks of one machine ([`FileLocks`]) without touching the commands.

mod file;
mod postgres;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use file::FileLocks;
pub use postgres::PostgresLocks;

/// What is locked: one environment of one cluster (or of one lab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockScope {
    /// The API endpoint (`https://pve:8006/api2/json`) or, for the in-process lab, its
    /// state directory (`lab:/path/deployments/lab`): what identifies the cluster.
    pub endpoint: String,
    pub environment: String,
}

impl LockScope {
    /// A stable file-name-safe key: the environment (readable) and a hash of the scope.
    pub fn key(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(format!("{}\n{}", self.endpoint, self.environment));
        let safe: String = self
            .environment
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}-{}", hex::encode(&digest[..8]))
    }
}

/// Who holds (or held) a lock: enough for an operator to find the other run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    /// RFC 3339.
    pub since: String,
}

impl Holder {
    /// This process, running `command` now.
    pub fn this_process(command: &str) -> Self {
        Self {
            pid: std::process::id(),
            host: crate::history::process::host_name(),
            user: crate::history::process::operator(),
            command: command.to_owned(),
            since: crate::history::clock::rfc3339(crate::history::clock::now_ms()),
        }
    }
}

impl fmt::Display for Holder {
    /// `sombrero deploy (pid 4242 on host jump by alice, since 2026-12-04T15:36:17Z)`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "sombrero {} (pid {} on host {} by {}, since {})",
            self.command, self.pid, self.host, self.user, self.since
        )
    }
}

/// A held lock; dropping it releases the lock.
pub trait HeldLock: fmt::Debug + Send {}

/// The outcome of a successful acquisition.
#[derive(Debug)]
pub struct Acquired {
    pub lock: Box<dyn HeldLock>,
    /// The previous holder, when its process ended without releasing the lock (killed):
    /// the lock was taken over, and the caller says so.
    pub took_over: Option<Holder>,
}

/// Where locks live: one machine's lock files today, a team database later.
pub trait LockBackend: fmt::Debug + Send + Sync {
    /// Takes the lock of `scope` for `holder`, without waiting.
    ///
    /// # Errors
    /// [`LockError::Held`] when another run holds it; [`LockError::Io`] when the lock
    /// cannot be created or read.
    fn acquire(&self, scope: &LockScope, holder: &Holder) -> Result<Acquired, LockError>;
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another run writes the environment now.
    #[error("environment {environment} is locked by {holder}")]
    Held {
        environment: String,
        /// Who holds it (unknown when the holder wrote nothing yet: it is starting
        /// this instant).
        holder: Box<HolderText>,
    },
    /// The lock's storage failed.
    #[error("cannot take the lock of environment {environment} at {path}")]
    Io {
        environment: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The team's `PostgreSQL` database (where team-wide locks live) failed or cannot be
    /// reached; `location` is its URL without the password.
    #[error("cannot take the lock of environment {environment} in {location}")]
    Database {
        environment: String,
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A holder as the refusal names it (or "another sombrero run" if it is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderText(pub Option<Holder>);

impl fmt::Display for HolderText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(holder) => holder.fmt(formatter),
            None => formatter.write_str("another sombrero run that is starting"),
        }
    }
}

impl LockError {
    /// What the operator can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Held { .. } => Some(
                "wait until that run ends (readers such as `sombrero status` and `sombrero \
                 plan` do not wait), or stop it; a lock whose process is gone is taken over \
                 by the next run"
                    .to_owned(),
            ),
            Self::Database { source, .. }
                if source.downcast_ref::<crate::history::TlsError>().is_some() =>
            {
                source
                    .downcast_ref::<crate::history::TlsError>()
                    .map(|tls| tls.hint().to_owned())
            }
            Self::Database { .. } => Some(
                "the environment locks live in the PostgreSQL history (paths.history); check \
                 that the server is reachable and the login works"
                    .to_owned(),
            ),
            Self::Io { .. } => Some(
                "set XDG_STATE_HOME to a writable directory (sombrero keeps its locks in \
                 $XDG_STATE_HOME/sombrero/locks)"
                    .to_owned(),
            ),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
