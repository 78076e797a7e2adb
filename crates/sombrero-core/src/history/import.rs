//! `sombrero history import FILE`: a local `SQLite` history copied into this store
//! (typically a team's `PostgreSQL` history), once.
//!
//! Why runs are matched by who ran them and when, not by id: run ids are made from the
//! start second (`DEP-20261204-153617`), so two machines can record different runs with
//! the same id. A run is the same run when its host, process id, start time, command
//! and environment are the same; such a run is skipped, so importing a file twice (or a
//! file that was itself partly imported) adds nothing. A new run whose id is taken by a
//! different run gets the next free `-2`, `-3`, ... suffix, as when it was recorded.
//! The source file is opened read-only and never changed; the copy is one transaction,
//! so an import that fails half-way leaves nothing behind
//! (docs/decisions/103-history-import-identity.md).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use rusqlite::OpenFlags;
use serde::Serialize;

use super::backend::{Db, DbError, Value};
use super::schema::{APPLICATION_ID, current_version};
use super::{HistoryError, Store};

/// What an import did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImportSummary {
    /// The file imported from.
    pub source: String,
    /// Runs in the file.
    pub runs_found: u64,
    /// Runs copied now (with their phases and issues).
    pub imported: u64,
    /// Runs that were already in the history.
    pub already_present: u64,
    pub phases_imported: u64,
    pub issues_imported: u64,
}

/// The columns copied for a run, in this order (`seq` is read to attach phases and
/// issues, never written).
const RUN_COLUMNS: [&str; 16] = [
    "id",
    "command",
    "environment",
    "operator",
    "git_branch",
    "git_commit",
    "sombrero_version",
    "template_id",
    "vm_id",
    "started_ms",
    "ended_ms",
    "status",
    "error",
    "host",
    "pid",
    "process_token",
];
const PHASE_COLUMNS: [&str; 5] = ["name", "started_ms", "duration_ms", "status", "detail"];
const ISSUE_COLUMNS: [&str; 9] = [
    "phase",
    "recorded_ms",
    "description",
    "symptoms",
    "root_cause",
    "resolution",
    "time_to_resolve_ms",
    "impact",
    "prevention",
];
/// Parameters per multi-row `INSERT`: below `SQLite`'s 32,766 and `PostgreSQL`'s 65,535.
const PARAMETERS_PER_STATEMENT: usize = 30_000;

/// Which integer columns hold integers (the rest are text), by column name.
fn is_integer(column: &str) -> bool {
    column.ends_with("_ms") || column.ends_with("_id") || column == "pid"
}

/// Reads one row's columns as [`Value`]s.
fn read_values(
    row: &rusqlite::Row<'_>,
    columns: &[&str],
    offset: usize,
) -> rusqlite::Result<Vec<Value>> {
    columns
        .iter()
        .enumerate()
        .map(|(index, column)| {
            Ok(if is_integer(column) {
                row.get::<_, Option<i64>>(index + offset)?.into()
            } else {
                row.get::<_, Option<String>>(index + offset)?.into()
            })
        })
        .collect()
}

/// A run from the file: its seq there and its column values.
type SourceRun = (i64, Vec<Value>);

/// Everything in the source file, rows keyed by their run's seq in the file.
struct Source {
    runs: Vec<SourceRun>,
    phases: HashMap<i64, Vec<Vec<Value>>>,
    issues: HashMap<i64, Vec<Vec<Value>>>,
}

fn read_source(path: &Path) -> Result<Source, HistoryError> {
    if !path.is_file() {
        return Err(HistoryError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let sqlite = |source| HistoryError::sqlite(path, source);
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    let application_id: i64 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(sqlite)?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite)?;
    if application_id != APPLICATION_ID {
        return Err(HistoryError::Foreign {
            path: path.to_path_buf(),
            tables: "not checked: the file is not marked as a sombrero history".to_owned(),
        });
    }
    if version > current_version() {
        return Err(HistoryError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            known: current_version(),
        });
    }
    let read = || -> rusqlite::Result<Source> {
        let snapshot = connection.unchecked_transaction()?;
        let sql = format!(
            "SELECT seq, {} FROM runs ORDER BY seq",
            RUN_COLUMNS.join(", ")
        );
        let runs = snapshot
            .prepare(&sql)?
            .query_map([], |row| {
                Ok((row.get(0)?, read_values(row, &RUN_COLUMNS, 1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let children = |table: &str, columns: &[&str]| {
            let sql = format!(
                "SELECT run_seq, {} FROM {table} ORDER BY seq",
                columns.join(", ")
            );
            let mut grouped: HashMap<i64, Vec<Vec<Value>>> = HashMap::new();
            let mut statement = snapshot.prepare(&sql)?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                grouped
                    .entry(row.get(0)?)
                    .or_default()
                    .push(read_values(row, columns, 1)?);
            }
            Ok::<_, rusqlite::Error>(grouped)
        };
        let phases = children("phases", &PHASE_COLUMNS)?;
        let issues = children("issues", &ISSUE_COLUMNS)?;
        Ok(Source {
            runs,
            phases,
            issues,
        })
    };
    read().map_err(sqlite)
}

/// The identity of a run: host, pid, start, command, environment.
type RunKey = (String, i64, i64, String, String);

fn key_of(values: &[Value]) -> RunKey {
    let text = |index: usize| match &values[index] {
        Value::Text(text) => text.clone(),
        _ => String::new(),
    };
    let integer = |index: usize| match values[index] {
        Value::Integer(value) => value,
        _ => 0,
    };
    // Indexes into RUN_COLUMNS.
    (text(13), integer(14), integer(9), text(1), text(2))
}

/// Inserts `rows` into `table` in multi-row statements; with `returning`, returns that
/// column's values in the order the rows were given.
fn insert_rows(
    db: &Db,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<Vec<i64>, DbError> {
    let mut returned = Vec::with_capacity(rows.len());
    let per_statement = (PARAMETERS_PER_STATEMENT / columns.len()).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut parameters = Vec::with_capacity(chunk.len() * columns.len());
        for (row_index, row) in chunk.iter().enumerate() {
            if row_index > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column_index in 0..columns.len() {
                if column_index > 0 {
                    sql.push_str(", ");
                }
                let _ = write!(sql, "?{}", parameters.len() + column_index + 1);
            }
            sql.push(')');
            parameters.extend(row.iter().cloned());
        }
        // Not every engine promises RETURNING in VALUES order, so the rows say who they
        // are (the first column: a run's id, unique) and are put back in order.
        let _ = write!(sql, " RETURNING seq, {}", columns[0]);
        let found: HashMap<String, i64> = db
            .query(&sql, &parameters, |row| Ok((row.string(1)?, row.i64(0)?)))?
            .into_iter()
            .collect();
        for row in chunk {
            if let Value::Text(first) = &row[0] {
                returned.push(found.get(first).copied().unwrap_or_default());
            }
        }
    }
    Ok(returned)
}

impl Store {
    /// Copies the runs of the `SQLite` history at `source` that this history does not
    /// have yet, with their phases and issues, in one transaction.
    ///
    /// # Errors
    /// The source is missing, not a sombrero history, or newer ([`HistoryError`] naming
    /// it); or a failure writing this history.
    pub fn import(&self, source: &Path) -> Result<ImportSummary, HistoryError> {
        let data = read_source(source)?;
        let mut summary = ImportSummary {
            source: source.display().to_string(),
            runs_found: data.runs.len() as u64,
            imported: 0,
            already_present: 0,
            phases_imported: 0,
            issues_imported: 0,
        };
        let counts = self.write(|db| copy(db, &data))?;
        summary.imported = counts.0;
        summary.already_present = summary.runs_found - counts.0;
        summary.phases_imported = counts.1;
        summary.issues_imported = counts.2;
        Ok(summary)
    }
}

/// Inserts the new runs and their children; returns (runs, phases, issues) inserted.
fn copy(db: &Db, data: &Source) -> Result<(u64, u64, u64), DbError> {
    let mut known: HashSet<RunKey> = HashSet::new();
    let mut ids: HashSet<String> = HashSet::new();
    db.for_each(
        "SELECT id, host, pid, started_ms, command, environment FROM runs",
        &[],
        |row| {
            ids.insert(row.string(0)?);
            known.insert((
                row.string(1)?,
                row.i64(2)?,
                row.i64(3)?,
                row.string(4)?,
                row.string(5)?,
            ));
            Ok(())
        },
    )?;
    let mut new_runs: Vec<Vec<Value>> = Vec::new();
    let mut source_seqs: Vec<i64> = Vec::new();
    for (seq, values) in &data.runs {
        if !known.insert(key_of(values)) {
            continue;
        }
        let mut values = values.clone();
        if let Value::Text(base) = &values[0] {
            let base = base.clone();
            let mut id = base.clone();
            let mut suffix = 1;
            while ids.contains(&id) {
                suffix += 1;
                id = format!("{base}-{suffix}");
            }
            ids.insert(id.clone());
            values[0] = Value::Text(id);
        }
        new_runs.push(values);
        source_seqs.push(*seq);
    }
    let target_seqs = insert_rows(db, "runs", &RUN_COLUMNS, &new_runs)?;
    let mut counts = (new_runs.len() as u64, 0, 0);
    for (table, columns, rows, count) in [
        ("phases", &PHASE_COLUMNS[..], &data.phases, &mut counts.1),
        ("issues", &ISSUE_COLUMNS[..], &data.issues, &mut counts.2),
    ] {
        let mut children: Vec<Vec<Value>> = Vec::new();
        for (source_seq, target_seq) in source_seqs.iter().zip(&target_seqs) {
            for row in rows.get(source_seq).into_iter().flatten() {
                let mut with_run = vec![Value::from(*target_seq)];
                with_run.extend(row.iter().cloned());
                children.push(with_run);
            }
        }
        let mut all_columns = vec!["run_seq"];
        all_columns.extend_from_slice(columns);
        insert_children(db, table, &all_columns, &children)?;
        *count = children.len() as u64;
    }
    Ok(counts)
}

/// Inserts phase or issue rows in multi-row statements.
fn insert_children(
    db: &Db,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<(), DbError> {
    let per_statement = (PARAMETERS_PER_STATEMENT / columns.len()).max(1);
    for chunk in rows.chunks(per_statement) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|row| {
                let numbers: Vec<String> = (1..=columns.len())
                    .map(|column| format!("?{}", row * columns.len() + column))
                    .collect();
                format!("({})", numbers.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            placeholders.join(", ")
        );
        let parameters: Vec<Value> = chunk.iter().flatten().cloned().collect();
        db.execute(&sql, &parameters)?;
    }
    Ok(())
}
