//! Team-wide locks: one environment, one writer, across every machine that shares the
//! `PostgreSQL` history.
//!
//! Why a session advisory lock: `pg_try_advisory_lock` is held by the database session
//! that took it, so the server releases it the moment that session ends, however the
//! holder ends (killed, crashed, its machine gone: the TCP connection drops). No lease to
//! tune, no lock row to clean up by hand. The holder's description (operator, host,
//! command, since) is kept in `sombrero_locks`, written only while the advisory lock is
//! held and deleted on release, so a row found under a free lock names a run that
//! ended without releasing: the next run takes it over and says whose it was, exactly
//! like the machine-local [`super::FileLocks`]
//! (docs/decisions/102-team-locks-advisory.md).
//!
//! Each held lock has its own connection, separate from the history's: the lock lives
//! exactly as long as the command's hold on it.

use crate::history::backend::{Db, DbError, PgClient, values};
use crate::history::location::PostgresUrl;

use super::{Acquired, HeldLock, Holder, HolderText, LockBackend, LockError, LockScope};

/// Locks in the `PostgreSQL` database of the team's history.
#[derive(Debug, Clone)]
pub struct PostgresLocks {
    url: PostgresUrl,
}

impl PostgresLocks {
    pub fn new(url: PostgresUrl) -> Self {
        Self { url }
    }
}

/// The advisory lock's key: the first 8 bytes of the scope's SHA-256.
fn lock_key(scope: &LockScope) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{}\n{}", scope.endpoint, scope.environment));
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Creating the holders' table once, whoever comes first (the advisory lock orders two
/// machines creating it at the same moment).
const CREATE_TABLE: &str = "SELECT pg_advisory_xact_lock(1397704002); \
     CREATE TABLE IF NOT EXISTS sombrero_locks (\
         scope_key TEXT PRIMARY KEY, environment TEXT NOT NULL, holder TEXT NOT NULL)";

/// A held advisory lock: its own session. Dropping it deletes the holder's row and
/// closes the session, which releases the lock.
#[derive(Debug)]
struct HeldSession {
    db: Db,
    scope_key: String,
}

impl HeldLock for HeldSession {}

impl Drop for HeldSession {
    fn drop(&mut self) {
        // An absent row under a free lock means "released cleanly". If this fails, the
        // session still ends below, and the next run reports a takeover.
        let _ = self.db.execute(
            "DELETE FROM sombrero_locks WHERE scope_key = ?1",
            &values![&self.scope_key],
        );
    }
}

fn holder_of(db: &Db, scope_key: &str) -> Result<Option<Holder>, DbError> {
    let text = db.query_opt(
        "SELECT holder FROM sombrero_locks WHERE scope_key = ?1",
        &values![scope_key],
        |row| row.string(0),
    )?;
    Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
}

impl LockBackend for PostgresLocks {
    fn acquire(&self, scope: &LockScope, holder: &Holder) -> Result<Acquired, LockError> {
        let failed = |source: DbError| LockError::Database {
            environment: scope.environment.clone(),
            location: self.url.to_string(),
            source: match source {
                DbError::Postgres(error) => Box::new(error),
                DbError::Sqlite(error) => Box::new(error),
                DbError::Io(error) => Box::new(error),
                DbError::Tls(error) => Box::new(error),
            },
        };
        let db = Db::Postgres(PgClient::connect(&self.url).map_err(failed)?);
        db.write(|db| db.batch(CREATE_TABLE)).map_err(failed)?;
        let key = lock_key(scope);
        let scope_key = format!("{key:016x}");
        let taken = db
            .query_opt(
                "SELECT pg_try_advisory_lock(?1)::int",
                &values![key],
                |row| row.i64(0),
            )
            .map_err(failed)?;
        if taken != Some(1) {
            return Err(LockError::Held {
                environment: scope.environment.clone(),
                holder: Box::new(HolderText(holder_of(&db, &scope_key).map_err(failed)?)),
            });
        }
        let took_over = holder_of(&db, &scope_key).map_err(failed)?;
        let description = serde_json::to_string(holder).unwrap_or_default();
        db.execute(
            "INSERT INTO sombrero_locks (scope_key, environment, holder) VALUES (?1, ?2, ?3) \
             ON CONFLICT (scope_key) DO UPDATE SET environment = excluded.environment, \
             holder = excluded.holder",
            &values![&scope_key, &scope.environment, description],
        )
        .map_err(failed)?;
        Ok(Acquired {
            lock: Box::new(HeldSession { db, scope_key }),
            took_over,
        })
    }
}
