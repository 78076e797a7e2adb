//! Opening the history file safely and bringing its schema up to date.
//!
//! Why so careful: the path comes from the user, so it may point at a text file, another
//! program's `SQLite` database, or a history written by a newer sombrero. Each of those is
//! refused with an error naming the path *before* anything is written, so nothing is
//! overwritten. Our files are marked with an `application_id` and versioned with
//! `user_version`; migrations are plain SQL in this file, applied in one immediate
//! transaction so two processes opening a new file at once cannot both apply them.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::HistoryError;

/// `SOMB` in ASCII: marks a file as a sombrero history.
pub(crate) const APPLICATION_ID: i64 = 0x534F_4D42;

/// How long a writer waits for another process's write lock before failing. Writes are
/// short (one row or a handful), so this is only reached if a process hangs holding a lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The migrations, in order; `user_version` is the number applied.
pub(crate) const MIGRATIONS: &[&str] = &[r"
CREATE TABLE runs (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    command          TEXT NOT NULL,
    environment      TEXT NOT NULL,
    operator         TEXT NOT NULL,
    git_branch       TEXT,
    git_commit       TEXT,
    sombrero_version TEXT NOT NULL,
    template_id      INTEGER,
    vm_id            INTEGER,
    started_ms       INTEGER NOT NULL,
    ended_ms         INTEGER,
    status           TEXT NOT NULL
                     CHECK (status IN ('running', 'success', 'failed', 'interrupted')),
    error            TEXT,
    host             TEXT NOT NULL,
    pid              INTEGER NOT NULL,
    process_token    TEXT
);
CREATE INDEX runs_by_start ON runs (started_ms);
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
CREATE TABLE phases (
    seq         INTEGER PRIMARY KEY,
    run_seq     INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    duration_ms INTEGER,
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'success', 'failed', 'interrupted')),
    detail      TEXT
);
CREATE INDEX phases_by_run ON phases (run_seq);
CREATE TABLE issues (
    seq               INTEGER PRIMARY KEY,
    run_seq           INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    phase             TEXT NOT NULL,
    recorded_ms       INTEGER NOT NULL,
    description       TEXT NOT NULL,
    symptoms          TEXT,
    root_cause        TEXT,
    resolution        TEXT,
    time_to_resolve_ms INTEGER,
    impact            TEXT,
    prevention        TEXT
);
CREATE INDEX issues_by_run ON issues (run_seq);
"];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Opens (creating if needed) the history at `path`, checks it is ours, and migrates it.
pub(crate) fn open(path: &Path) -> Result<Connection, HistoryError> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| HistoryError::CreateDirectory {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection =
        Connection::open_with_flags(path, flags).map_err(|e| HistoryError::sqlite(path, e))?;
    let sqlite = |source| HistoryError::sqlite(path, source);
    connection.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    // Reading the header first: a text file fails here with NOTADB, before any write.
    // All three reads (application id, version, tables) in one read transaction: one
    // snapshot. Read one by one, another process's migration could commit in between,
    // and its tables without its application id look like a foreign database.
    {
        let snapshot = connection.unchecked_transaction().map_err(sqlite)?;
        let (application_id, version) = identity(&snapshot).map_err(sqlite)?;
        check_identity(&snapshot, path, application_id, version)?;
        snapshot.commit().map_err(sqlite)?;
    }
    if connection.is_readonly(rusqlite::MAIN_DB).map_err(sqlite)? {
        return Err(HistoryError::Unwritable {
            path: path.to_path_buf(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                Some("the file or its directory is read-only".to_owned()),
            ),
        });
    }
    enable_wal(&connection).map_err(sqlite)?;
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite)?;
    migrate(connection, path)
}

/// Switches the file to WAL. The switch needs the file to itself, and `SQLite` answers
/// `BUSY` at once, without calling the busy handler, when another connection is opening
/// or switching it at that moment; so this retries until the busy timeout. WAL is
/// persistent: once one opener has switched, the others' switch is a no-op.
fn enable_wal(connection: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match connection.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn identity(connection: &Connection) -> rusqlite::Result<(i64, i64)> {
    let application_id = connection.pragma_query_value(None, "application_id", |row| row.get(0))?;
    let version = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    Ok((application_id, version))
}

fn check_identity(
    connection: &Connection,
    path: &Path,
    application_id: i64,
    version: i64,
) -> Result<(), HistoryError> {
    if application_id == APPLICATION_ID {
        if version > current_version() {
            return Err(HistoryError::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                known: current_version(),
            });
        }
        return Ok(());
    }
    let tables: Vec<String> = connection
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|source| HistoryError::sqlite(path, source))?;
    if application_id != 0 || !tables.is_empty() || version != 0 {
        let tables = if tables.is_empty() {
            "none".to_owned()
        } else {
            tables.join(", ")
        };
        return Err(HistoryError::Foreign {
            path: path.to_path_buf(),
            tables,
        });
    }
    Ok(())
}

fn migrate(mut connection: Connection, path: &Path) -> Result<Connection, HistoryError> {
    let sqlite = |source| HistoryError::sqlite(path, source);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let (application_id, version) = identity(&transaction).map_err(sqlite)?;
    check_identity(&transaction, path, application_id, version)?;
    let start = usize::try_from(version).unwrap_or(usize::MAX);
    for migration in MIGRATIONS.iter().skip(start) {
        transaction.execute_batch(migration).map_err(sqlite)?;
    }
    transaction
        .pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(sqlite)?;
    transaction
        .pragma_update(None, "user_version", current_version())
        .map_err(sqlite)?;
    transaction.commit().map_err(sqlite)?;
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    /// Many connections opening one new file at the same instant: each must see either an
    /// empty file or a finished sombrero schema, never another opener's half-way state
    /// (tables created, `application_id` not yet visible), which would be refused as a
    /// foreign database. Separate connections lock the file like separate processes.
    #[test]
    fn openers_racing_on_a_new_file_all_succeed() {
        let openers = 8;
        for round in 0..25 {
            let directory = tempfile::tempdir().unwrap();
            let path = Arc::new(directory.path().join(format!("history-{round}.db")));
            let barrier = Arc::new(Barrier::new(openers));
            let threads: Vec<_> = (0..openers)
                .map(|_| {
                    let (path, barrier) = (Arc::clone(&path), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        super::open(&path).map(drop)
                    })
                })
                .collect();
            for thread in threads {
                let result = thread.join().unwrap();
                assert!(result.is_ok(), "round {round}: {result:?}");
            }
        }
    }
}
