//! The history store's error type.
//!
//! Why one enum that knows which variants are the user's input: the binary maps bad input
//! (a foreign or damaged file, a path that cannot be written, an unknown run id) to exit
//! code 2 with a hint, and everything else (a locked database that stayed locked, a disk
//! that filled up) to 1. Every variant names the path or run it is about.

use std::path::PathBuf;

use super::backend::DbError;

/// Why a history operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The directory for the database (or an output file) could not be created.
    #[error("cannot create the directory {}", path.display())]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database's directory does not exist and is not sombrero's to create (outside
    /// the project, or more than one level missing).
    #[error("the directory {} of the history database does not exist", path.display())]
    MissingDirectory { path: PathBuf },
    /// The file exists but is not an `SQLite` database (or is damaged).
    #[error("{} is not a sombrero history database: it is not an SQLite file or it is damaged", path.display())]
    NotADatabase {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// An `SQLite` database that belongs to another program.
    #[error("{} is an SQLite database of another program (tables: {tables}), not a sombrero history", path.display())]
    Foreign { path: PathBuf, tables: String },
    /// Written by a newer sombrero whose schema this build does not know.
    #[error("{} has history schema version {found}, newer than the {known} this sombrero knows", path.display())]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// The database or its directory cannot be written.
    #[error("the history database {} cannot be written", path.display())]
    Unwritable {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Any other `SQLite` failure (for example a lock held longer than the busy timeout).
    #[error("history database {}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The `PostgreSQL` history could not be reached, refused the login, or failed a
    /// statement. `location` is the URL without its password.
    #[error("PostgreSQL history {location}")]
    Postgres {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS settings for the `PostgreSQL` history are wrong, or the TLS handshake
    /// failed (an untrusted certificate, a wrong host name, a server without TLS).
    #[error("PostgreSQL history {location}")]
    PostgresTls {
        location: String,
        #[source]
        source: super::tls::TlsError,
    },
    /// A `PostgreSQL` database whose tables have our names but are not sombrero's.
    #[error(
        "the PostgreSQL database {location} has tables of another program ({tables}), not a sombrero history"
    )]
    ForeignPostgres { location: String, tables: String },
    /// A file to read (a history to import) that does not exist.
    #[error("there is no file {}", path.display())]
    NotFound { path: PathBuf },
    /// A run id that is not in the database.
    #[error("no run {id} in the history {}", path.display())]
    UnknownRun { id: String, path: PathBuf },
    /// A command needs a run but none has been recorded.
    #[error("no runs recorded yet in the history {}", path.display())]
    NoRuns { path: PathBuf },
    /// An output file (checklist, report, textfile) could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that must not be overwritten already exists.
    #[error("{} already exists; not overwriting it", path.display())]
    Exists { path: PathBuf },
    /// A time or duration the user typed that does not parse.
    #[error(
        "cannot read {input:?} as a time: expected YYYY-MM-DD, an RFC 3339 time or an age like 7d, 12h, 30m"
    )]
    BadTime { input: String },
    /// A duration the user typed that does not parse.
    #[error("cannot read {input:?} as a duration: expected e.g. 90s, 15m, 1h30m")]
    BadDuration { input: String },
}

impl HistoryError {
    /// Whether the error is about the user's input (exit code 2) rather than a failure.
    pub fn is_bad_input(&self) -> bool {
        if let Self::PostgresTls { source, .. } = self {
            return source.is_bad_input();
        }
        matches!(
            self,
            Self::CreateDirectory { .. }
                | Self::MissingDirectory { .. }
                | Self::NotADatabase { .. }
                | Self::Foreign { .. }
                | Self::ForeignPostgres { .. }
                | Self::NewerSchema { .. }
                | Self::Unwritable { .. }
                | Self::NotFound { .. }
                | Self::UnknownRun { .. }
                | Self::NoRuns { .. }
                | Self::Write { .. }
                | Self::Exists { .. }
                | Self::BadTime { .. }
                | Self::BadDuration { .. }
        )
    }

    /// A suggestion for the person reading the error, when there is a useful one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::NotADatabase { .. } | Self::Foreign { .. } => Some(
                "sombrero left the file untouched; move it away or point SOMBRERO_HISTORY at another path",
            ),
            Self::NewerSchema { .. } => Some("upgrade sombrero to read this history"),
            Self::ForeignPostgres { .. } => Some(
                "sombrero changed nothing; give it a database (or a schema, with \
                 ?options=-csearch_path%3DNAME) of its own",
            ),
            Self::PostgresTls { source, .. } => Some(source.hint()),
            Self::Postgres { .. } => Some(
                "check that the server is running and reachable, and the user, database and \
                 password (from the URL, PGPASSWORD or ~/.pgpass)",
            ),
            Self::Unwritable { .. } | Self::CreateDirectory { .. } | Self::Write { .. } => {
                Some("check the path and its permissions, or choose another path")
            }
            Self::MissingDirectory { .. } => Some(
                "create the directory, or point SOMBRERO_HISTORY (paths.history) at a file in an \
                 existing one; sombrero creates only a missing directory of its own inside the \
                 project",
            ),
            Self::UnknownRun { .. } => Some("`sombrero history` lists the recorded run ids"),
            Self::NoRuns { .. } => Some("runs are recorded by commands that change a cluster"),
            Self::Exists { .. } => Some("remove the file or choose another name"),
            _ => None,
        }
    }

    /// Attaches the history's location to a database error, classifying it.
    pub(crate) fn database(location: &std::path::Path, source: DbError) -> Self {
        match source {
            DbError::Sqlite(source) => Self::sqlite(location, source),
            DbError::Postgres(source) => Self::Postgres {
                location: location.display().to_string(),
                source: Box::new(source),
            },
            DbError::Io(source) => Self::Postgres {
                location: location.display().to_string(),
                source: Box::new(source),
            },
            DbError::Tls(source) => Self::PostgresTls {
                location: location.display().to_string(),
                source,
            },
        }
    }

    /// Attaches the database path to an `SQLite` error, classifying it.
    pub(crate) fn sqlite(path: &std::path::Path, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                Self::NotADatabase { path, source }
            }
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                Self::Unwritable { path, source }
            }
            _ => Self::Sqlite { path, source },
        }
    }
}
