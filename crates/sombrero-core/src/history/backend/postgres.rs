//! A blocking `PostgreSQL` client that works inside and outside a tokio runtime.
//!
//! Why not the `postgres` crate: it blocks on its own runtime and panics when called
//! from a task of the CLI's runtime ("Cannot start a runtime from within a runtime"),
//! and the history is a synchronous API called from async commands. Here the
//! connection's I/O runs on a dedicated thread with its own current-thread runtime, and
//! callers wait on the client's futures with [`futures_executor::block_on`]: those
//! futures only exchange messages with the connection thread over channels, so waiting
//! on them needs no runtime and never starves the caller's. When the client is dropped
//! the connection ends and its thread exits (and the server releases the session's
//! advisory locks: what makes the team-wide environment locks crash-safe).

use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use futures_executor::block_on;
use futures_util::StreamExt;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::copy::CopyParser;
use super::tls::{Connector, HandshakeFailed};
use super::{DbError, Row, Value};
use crate::history::location::PostgresUrl;
use crate::history::tls::SslMode;

/// A connected client; its connection thread lives as long as it does.
#[derive(Debug)]
pub(crate) struct PgClient {
    client: Arc<tokio_postgres::Client>,
    /// The connection thread's runtime, for work that is cheaper done next to the
    /// connection than across threads ([`Self::copy`]).
    runtime: tokio::runtime::Handle,
    url: PostgresUrl,
    /// A second session, opened on first use, so a big scan can be read while this one
    /// runs another query ([`Self::copy`]).
    side: OnceLock<Result<Box<PgClient>, ()>>,
}

/// How many bytes of a copy the connection thread gathers before handing them over: a
/// wake-up of the caller per 256 KiB instead of per row.
const COPY_BATCH: usize = 256 * 1024;

impl PgClient {
    /// Connects (password from the URL, `PGPASSWORD` or the password file), over TLS as
    /// the URL's `sslmode` says ([`crate::history::tls`]). Under `prefer`, a failed
    /// handshake is followed by a plain connection, as `libpq` does.
    ///
    /// # Errors
    /// The TLS settings are wrong, the server cannot be reached, the TLS handshake fails
    /// (an untrusted certificate, a server without TLS under `require`), or the server
    /// refuses the login.
    pub(crate) fn connect(url: &PostgresUrl) -> Result<Self, DbError> {
        let (mode, check) = url.tls().map_err(DbError::Tls)?;
        let tls = Connector::new(mode, check).map_err(DbError::Tls)?;
        let mut config = url.config();
        config.ssl_mode(mode.negotiation());
        let (sender, receiver) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("sombrero-postgres".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = sender.send(Err(DbError::Io(error)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut connected = config.connect(tls.clone()).await;
                    if let Err(error) = &connected
                        && mode == SslMode::Prefer
                        && HandshakeFailed::take(error, mode).is_some()
                    {
                        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                        connected = config.connect(tls).await;
                    }
                    match connected {
                        Ok((client, connection)) => {
                            let handle = tokio::runtime::Handle::current();
                            let _ = sender.send(Ok((client, handle)));
                            // Runs until the client is dropped or the server goes away.
                            let _ = connection.await;
                        }
                        Err(error) => {
                            let _ = sender.send(Err(match HandshakeFailed::take(&error, mode) {
                                Some(tls) => DbError::Tls(tls),
                                None => DbError::Postgres(error),
                            }));
                        }
                    }
                });
            });
        spawned.map_err(DbError::Io)?;
        let (client, runtime) = receiver.recv().map_err(|_| connection_ended())??;
        Ok(Self {
            client: Arc::new(client),
            runtime,
            url: url.clone(),
            side: OnceLock::new(),
        })
    }

    /// Runs `sql` and hands each row to `each` as it arrives (`query_raw`), so a scan
    /// of 500,000 phases is decoded while the server still sends it and is never
    /// collected. `each` must not run a statement on this client: the connection is busy
    /// with the stream until it ends.
    pub(crate) fn for_each(
        &self,
        sql: &str,
        params: &[Value],
        mut each: impl FnMut(&dyn Row) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let references = params.iter().map(|value| value as &(dyn ToSql + Sync));
        let rows = block_on(self.client.query_raw(sql, references))?;
        for row in futures_executor::block_on_stream(Box::pin(rows)) {
            each(&row?)?;
        }
        Ok(())
    }

    /// Starts `COPY (sql) TO STDOUT (FORMAT binary)` (`sql` without parameters: `COPY`
    /// takes none) and returns at once; [`Copy::for_each`] then hands out the rows.
    ///
    /// With `beside`, the copy runs on a second session (opened the first time, kept
    /// after), so this session can run other queries while the server produces it: the
    /// metrics read the runs while the phases arrive, on two server processes. If the
    /// second session cannot be opened the copy runs here, after the caller's queries.
    ///
    /// The copy is read by a task on its connection's thread, which passes it on in
    /// batches of [`COPY_BATCH`] bytes: one hand-over per row (what `tokio-postgres`'
    /// stream does) cost more thread wake-ups than the rows cost to parse.
    pub(crate) fn copy(&self, sql: &str, beside: bool) -> Copy {
        let copy = format!("COPY ({sql}) TO STDOUT (FORMAT binary)");
        let session = if beside {
            let side = self.side.get_or_init(|| {
                PgClient::connect(&self.url).map(Box::new).map_err(|error| {
                    tracing::debug!(?error, "no second session; the copy waits for this one");
                })
            });
            match side {
                Ok(side) => side,
                Err(()) => {
                    return Copy::Deferred(Arc::clone(&self.client), self.runtime.clone(), copy);
                }
            }
        } else {
            self
        };
        Copy::Started(start_copy(&session.client, &session.runtime, copy))
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let references: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|value| value as &(dyn ToSql + Sync))
            .collect();
        Ok(block_on(self.client.execute(sql, &references))?)
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<(), DbError> {
        Ok(block_on(self.client.batch_execute(sql))?)
    }
}

/// A copy under way ([`PgClient::copy`]).
pub(crate) enum Copy {
    /// Batches of the copy's bytes as they arrive; the sender's end closes after the
    /// last (or after an error, which comes as a batch).
    Started(Receiver<Result<Vec<u8>, tokio_postgres::Error>>),
    /// To be started when read, on the caller's own session.
    Deferred(Arc<tokio_postgres::Client>, tokio::runtime::Handle, String),
}

impl Copy {
    /// Hands every row to `each`, in order, parsed in place (see [`super::copy`]).
    pub(crate) fn for_each(
        self,
        mut each: impl FnMut(&dyn Row) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let batches = match self {
            Self::Started(batches) => batches,
            Self::Deferred(client, runtime, copy) => start_copy(&client, &runtime, copy),
        };
        let mut parser = CopyParser::default();
        for batch in batches {
            parser.feed(&batch?, &mut each)?;
        }
        parser.finish()
    }
}

/// Spawns the task that reads `copy` on the connection's thread and sends its bytes in
/// batches. The channel is unbounded, so the server never waits for the caller.
fn start_copy(
    client: &Arc<tokio_postgres::Client>,
    runtime: &tokio::runtime::Handle,
    copy: String,
) -> Receiver<Result<Vec<u8>, tokio_postgres::Error>> {
    let (sender, batches) = std::sync::mpsc::channel();
    let client = Arc::clone(client);
    runtime.spawn(async move {
        let read = async {
            let stream = client.copy_out(copy.as_str()).await?;
            let mut stream = std::pin::pin!(stream);
            let mut batch = Vec::with_capacity(COPY_BATCH);
            while let Some(chunk) = stream.next().await {
                batch.extend_from_slice(&chunk?);
                if batch.len() >= COPY_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(COPY_BATCH));
                    if sender.send(Ok(full)).is_err() {
                        // The reader stopped (its callback failed): drop the stream.
                        return Ok(());
                    }
                }
            }
            let _ = sender.send(Ok(batch));
            Ok(())
        };
        if let Err(error) = read.await {
            let _ = sender.send(Err(error));
        }
    });
    batches
}

fn connection_ended() -> DbError {
    DbError::Io(std::io::Error::other(
        "the PostgreSQL connection thread ended",
    ))
}

/// `?N` placeholders (`SQLite`) as `$N` (`PostgreSQL`). The history's SQL has no `?` in
/// string literals.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut translated = String::with_capacity(sql.len());
    let mut characters = sql.chars().peekable();
    while let Some(character) = characters.next() {
        if character == '?' && characters.peek().is_some_and(char::is_ascii_digit) {
            translated.push('$');
        } else {
            translated.push(character);
        }
    }
    translated
}

impl Row for tokio_postgres::Row {
    fn i64(&self, index: usize) -> Result<i64, DbError> {
        if is_int4(self, index) {
            Ok(i64::from(self.try_get::<_, i32>(index)?))
        } else {
            Ok(self.try_get::<_, i64>(index)?)
        }
    }

    fn opt_i64(&self, index: usize) -> Result<Option<i64>, DbError> {
        if is_int4(self, index) {
            Ok(self.try_get::<_, Option<i32>>(index)?.map(i64::from))
        } else {
            Ok(self.try_get::<_, Option<i64>>(index)?)
        }
    }

    fn str(&self, index: usize) -> Result<&str, DbError> {
        Ok(self.try_get::<_, &str>(index)?)
    }

    fn opt_string(&self, index: usize) -> Result<Option<String>, DbError> {
        Ok(self.try_get::<_, Option<String>>(index)?)
    }
}

fn is_int4(row: &tokio_postgres::Row, index: usize) -> bool {
    row.columns()
        .get(index)
        .is_some_and(|column| *column.type_() == Type::INT4)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Integer(value) => match *ty {
                Type::INT2 => i16::try_from(*value)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*value)?.to_sql(ty, out),
                _ => value.to_sql(ty, out),
            },
            Self::Text(text) => text.as_str().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2 | Type::INT4 | Type::INT8 | Type::TEXT | Type::VARCHAR | Type::BPCHAR
        )
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            super::placeholders("SELECT 1 WHERE a = ?1 AND (?2 IS NULL OR b = ?2) AND c <> '?'"),
            "SELECT 1 WHERE a = $1 AND (?2 IS NULL OR b = $2) AND c <> '?'"
                .replace("?2 IS", "$2 IS")
        );
    }
}
