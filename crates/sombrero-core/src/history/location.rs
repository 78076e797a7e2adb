//! Where the history lives: a local `SQLite` file, or a team's `PostgreSQL` database.
//!
//! Why a type and not a path: `paths.history` (or `SOMBRERO_HISTORY`) holds either a path
//! or a `postgres://` URL, and the URL may carry a password. Parsing it once, when the
//! settings are resolved, turns a mistyped URL into an error naming the key or variable
//! before any command runs, and keeps the password inside [`pve::Secret`] so that no
//! `Display`, `Debug`, `--json` or error text can show it
//! (docs/decisions/101-postgres-password-sources.md).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use serde::Serialize;

/// The history's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryLocation {
    /// A local `SQLite` file.
    File(PathBuf),
    /// A `PostgreSQL` database shared by a team.
    Postgres(PostgresUrl),
}

impl HistoryLocation {
    /// A `postgres://` or `postgresql://` URL becomes [`HistoryLocation::Postgres`];
    /// anything else is a path, resolved by `relative_to` when relative.
    ///
    /// # Errors
    /// A URL that does not parse; the message never contains the URL itself (it may
    /// carry a password).
    pub fn parse(raw: &str, relative_to: impl FnOnce(&str) -> PathBuf) -> Result<Self, String> {
        if PostgresUrl::is_url(raw) {
            return PostgresUrl::parse(raw).map(Self::Postgres);
        }
        Ok(Self::File(relative_to(raw)))
    }

    /// The file, for a local history.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Postgres(_) => None,
        }
    }

    /// The directory of a local history (the lab keeps its state next to it); `None` for
    /// `PostgreSQL`, whose callers fall back to their own default.
    pub fn parent(&self) -> Option<&Path> {
        self.file().and_then(Path::parent)
    }

    /// Whether the history (and so the environment locks) is shared by a team.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

impl fmt::Display for HistoryLocation {
    /// The path, or the URL without its password.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => path.display().fmt(formatter),
            Self::Postgres(url) => url.fmt(formatter),
        }
    }
}

impl Serialize for HistoryLocation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A `PostgreSQL` connection URL whose password (if it has one) is a [`pve::Secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl {
    /// The URL with its password (user info and `password=` parameter) removed: what is
    /// shown, and what the connection is configured from.
    shown: String,
    password: Option<pve::Secret>,
}

impl PostgresUrl {
    /// Whether `raw` is meant as a `PostgreSQL` URL (by its scheme).
    pub fn is_url(raw: &str) -> bool {
        let lower = raw.trim_start().to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }

    /// Parses and checks a URL.
    ///
    /// # Errors
    /// What is wrong, without repeating the URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let expected = "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE";
        let mut url = url::Url::parse(raw.trim())
            .map_err(|error| format!("not a PostgreSQL URL ({error}); {expected}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("the PostgreSQL URL names no host; {expected}"));
        }
        let mut password = url
            .password()
            .map(|text| percent_encoding::percent_decode_str(text).decode_utf8_lossy())
            .map(|text| pve::Secret::new(text.into_owned()));
        let _ = url.set_password(None);
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            if key == "password" {
                password = Some(pve::Secret::new(value.into_owned()));
            } else {
                kept.push((key.into_owned(), value.into_owned()));
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let shown = url.to_string();
        tokio_postgres::Config::from_str(&shown)
            .map_err(|error| format!("not a usable PostgreSQL URL ({error}); {expected}"))?;
        Ok(Self { shown, password })
    }

    /// The connection settings: the URL's, with the password from the URL, else
    /// `PGPASSWORD`, else the password file (`PGPASSFILE` or `~/.pgpass`), as `libpq`
    /// looks for it.
    pub(crate) fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::from_str(&self.shown)
            .unwrap_or_else(|_| tokio_postgres::Config::new());
        config.connect_timeout(std::time::Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("sombrero");
        }
        if let Some(password) = self.password(&config) {
            config.password(password.expose());
        }
        config
    }

    fn password(&self, config: &tokio_postgres::Config) -> Option<pve::Secret> {
        if let Some(password) = &self.password {
            return Some(password.clone());
        }
        if let Some(password) = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()) {
            return Some(pve::Secret::new(password));
        }
        let file = std::env::var_os("PGPASSFILE")
            .filter(|file| !file.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
        let text = std::fs::read_to_string(file).ok()?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config
            .get_user()
            .map(ToOwned::to_owned)
            .or_else(|| std::env::var("USER").ok())?;
        let database = config.get_dbname().unwrap_or(&user);
        super::pgpass::lookup(&text, &host, port, database, &user).map(pve::Secret::new)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PostgresUrl")
            .field("url", &self.shown)
            .field("password", &self.password)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{HistoryLocation, PostgresUrl};

    #[test]
    fn a_password_never_shows() {
        for raw in [
            "postgres://alice:s3cr3t-pw@db.example.invalid:5433/history",
            "postgresql://alice@db.example.invalid/history?password=s3cr3t-pw&sslmode=disable",
        ] {
            let url = PostgresUrl::parse(raw).unwrap();
            let location = HistoryLocation::Postgres(url.clone());
            for text in [
                url.to_string(),
                format!("{url:?}"),
                format!("{location:?}"),
                serde_json::to_string(&location).unwrap(),
            ] {
                assert!(!text.contains("s3cr3t-pw"), "{text}");
                assert!(text.contains("alice"), "{text}");
            }
            assert_eq!(url.config().get_password(), Some(&b"s3cr3t-pw"[..]));
        }
    }

    #[test]
    fn paths_stay_paths_and_bad_urls_say_why_without_the_url() {
        let location = HistoryLocation::parse("h.db", |raw| format!("/p/{raw}").into()).unwrap();
        assert_eq!(location.file(), Some(std::path::Path::new("/p/h.db")));
        let error = PostgresUrl::parse("postgres://alice:s3cr3t-pw@/history").unwrap_err();
        assert!(error.contains("empty host"), "{error}");
        let error = PostgresUrl::parse("postgres://alice:s3cr3t-pw@db:notaport/h").unwrap_err();
        assert!(!error.contains("s3cr3t-pw"), "{error}");
    }
}
