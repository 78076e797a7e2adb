//! The one place that knows there are two databases: `SQLite` (a local file) and
//! `PostgreSQL` (a team's server).
//!
//! Why a small portable layer instead of an ORM or two stores: the history's SQL is
//! plain (inserts, updates, scans, a few `GROUP BY`s), so it is written once with `?N`
//! placeholders and integer/text columns, which both engines read the same way; this
//! layer turns `?N` into `$N` for `PostgreSQL`, carries parameters as [`Value`]s and
//! hands rows out through [`Row`], whose getters accept both engines' integer types.
//! The store, the recorder, the metrics and the report therefore have one code path
//! (docs/decisions/100-postgres-history-backend.md). Rows are streamed to a callback,
//! so the metrics' scans never collect rows they do not keep.

mod copy;
mod postgres;
mod tls;
mod verifiers;

pub(crate) use postgres::PgClient;

/// A parameter: the history only stores integers and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null,
    Integer(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Self::Integer(i64::from(value))
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(value: &Option<T>) -> Self {
        value.clone().map_or(Self::Null, Into::into)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Self::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Self::Integer(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            Self::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
        })
    }
}

/// `[Value, ...]` from anything that converts.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        [$($crate::history::backend::Value::from($value)),*]
    };
}
pub(crate) use values;

/// Why a statement failed, in the engine's own words.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    Postgres(tokio_postgres::Error),
    /// The connection's thread or runtime could not start.
    Io(std::io::Error),
    /// The TLS settings are wrong, or the TLS handshake failed.
    Tls(crate::history::tls::TlsError),
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

/// A row of either engine. Integer getters accept `PostgreSQL`'s `int4` and `int8`.
pub(crate) trait Row {
    fn i64(&self, index: usize) -> Result<i64, DbError>;
    fn opt_i64(&self, index: usize) -> Result<Option<i64>, DbError>;
    fn str(&self, index: usize) -> Result<&str, DbError>;
    fn opt_string(&self, index: usize) -> Result<Option<String>, DbError>;

    fn string(&self, index: usize) -> Result<String, DbError> {
        self.str(index).map(ToOwned::to_owned)
    }
}

impl Row for rusqlite::Row<'_> {
    fn i64(&self, index: usize) -> Result<i64, DbError> {
        Ok(self.get(index)?)
    }

    fn opt_i64(&self, index: usize) -> Result<Option<i64>, DbError> {
        Ok(self.get(index)?)
    }

    fn str(&self, index: usize) -> Result<&str, DbError> {
        Ok(self
            .get_ref(index)?
            .as_str()
            .map_err(rusqlite::Error::from)?)
    }

    fn opt_string(&self, index: usize) -> Result<Option<String>, DbError> {
        Ok(self.get(index)?)
    }
}

/// An open connection to either engine.
#[derive(Debug)]
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(PgClient),
}

impl Db {
    /// Runs `sql` and calls `each` for every row, in order.
    pub(crate) fn for_each(
        &self,
        sql: &str,
        params: &[Value],
        mut each: impl FnMut(&dyn Row) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Self::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params))?;
                while let Some(row) = rows.next()? {
                    each(row)?;
                }
                Ok(())
            }
            Self::Postgres(client) => client.for_each(&postgres::placeholders(sql), params, each),
        }
    }

    /// Starts a scan of many rows (`sql` without parameters); [`Scan::for_each`] reads
    /// it. On `SQLite` the query runs when read. On `PostgreSQL` it is a binary `COPY`,
    /// parsed in place, started now: there, decoding rows one `Row` at a time was what
    /// the metrics waited for (docs/performance.md, "On `PostgreSQL`"). With `beside` it
    /// runs on a second session, so this one can run other statements meanwhile.
    pub(crate) fn scan<'a>(&'a self, sql: &'a str, beside: bool) -> Scan<'a> {
        match self {
            Self::Sqlite(_) => Scan::Later(self, sql),
            Self::Postgres(client) => Scan::Copy(client.copy(sql, beside)),
        }
    }

    /// Every row of `sql`, mapped.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        params: &[Value],
        mut map: impl FnMut(&dyn Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut found = Vec::new();
        self.for_each(sql, params, |row| {
            found.push(map(row)?);
            Ok(())
        })?;
        Ok(found)
    }

    /// The first row of `sql`, mapped, if there is one.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[Value],
        map: impl FnOnce(&dyn Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut map = Some(map);
        let mut found = None;
        self.for_each(sql, params, |row| {
            if let Some(map) = map.take() {
                found = Some(map(row)?);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            Self::Sqlite(connection) => {
                let changed = connection
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params))?;
                Ok(changed as u64)
            }
            Self::Postgres(client) => client.execute(&postgres::placeholders(sql), params),
        }
    }

    /// Runs `work` in one transaction that holds the write lock from its start: `BEGIN
    /// IMMEDIATE` on `SQLite`, a transaction-scoped advisory lock on `PostgreSQL` (so
    /// writers of the whole team take turns, as writers of one file do).
    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let begin = match self {
            Self::Sqlite(_) => "BEGIN IMMEDIATE".to_owned(),
            Self::Postgres(_) => {
                format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            }
        };
        self.batch(&begin)?;
        match work(self) {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(error) => {
                let _ = self.batch("ROLLBACK");
                Err(error)
            }
        }
    }

    /// Runs statements separated by `;`, without parameters.
    pub(crate) fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Self::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Self::Postgres(client) => client.batch(sql),
        }
    }
}

/// A scan started by [`Db::scan`].
pub(crate) enum Scan<'a> {
    Later(&'a Db, &'a str),
    Copy(postgres::Copy),
}

impl Scan<'_> {
    /// Calls `each` for every row, in order.
    pub(crate) fn for_each(
        self,
        each: impl FnMut(&dyn Row) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match self {
            Self::Later(db, sql) => db.for_each(sql, &[], each),
            Self::Copy(copy) => copy.for_each(each),
        }
    }
}

/// The advisory lock every history write takes on `PostgreSQL` (`SOMB` in ASCII, as
/// the `SQLite` file's application id).
const WRITE_LOCK_KEY: i64 = super::schema::APPLICATION_ID;
