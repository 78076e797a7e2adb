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

use super::tls::{Check, SslMode, TlsError, TlsOptions};

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
    /// shown.
    shown: String,
    /// `shown` without the TLS keys `tokio-postgres` does not know: what the connection
    /// is configured from.
    connect: String,
    password: Option<pve::Secret>,
    /// `sslmode` and `sslrootcert` ([`super::tls`]).
    tls: TlsOptions,
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
        let mut tls = TlsOptions::default();
        let mut tls_keys = Vec::new();
        for (key, value) in url.query_pairs() {
            if key == "password" {
                password = Some(pve::Secret::new(value.into_owned()));
            } else if tls.take(&key, &value).map_err(|error| error.to_string())? {
                tls_keys.push((key.into_owned(), value.into_owned()));
            } else {
                kept.push((key.into_owned(), value.into_owned()));
            }
        }
        let with_query = |url: &mut url::Url, pairs: &[(String, String)]| {
            let query = pairs
                .iter()
                .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
                .collect::<Vec<_>>();
            url.set_query((!query.is_empty()).then(|| query.join("&")).as_deref());
            url.to_string()
        };
        let connect = with_query(&mut url, &kept);
        kept.extend(tls_keys);
        let shown = with_query(&mut url, &kept);
        tokio_postgres::Config::from_str(&connect).map_err(|error| {
            // The cause names the key (`unknown option `sslcert``), never a value.
            let cause = std::error::Error::source(&error)
                .map_or_else(String::new, |cause| format!(": {cause}"));
            format!("not a usable PostgreSQL URL ({error}{cause}); {expected}")
        })?;
        Ok(Self {
            shown,
            connect,
            password,
            tls,
        })
    }

    /// The TLS mode and what is checked of the server's certificate: the URL's
    /// `sslmode` and `sslrootcert`, else `PGSSLMODE` and `PGSSLROOTCERT`, else `prefer`.
    ///
    /// # Errors
    /// An unknown `PGSSLMODE`, or a mode weaker than `verify-full` with
    /// `sslrootcert=system`.
    pub(crate) fn tls(&self) -> Result<(SslMode, Check), TlsError> {
        self.tls.resolve(|name| std::env::var(name).ok())
    }

    /// The connection settings: the URL's, with the password from the URL, else
    /// `PGPASSWORD`, else the password file (`PGPASSFILE` or `~/.pgpass`), as `libpq`
    /// looks for it.
    pub(crate) fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::from_str(&self.connect)
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

/// A query key or value, percent-encoded but for the characters of paths and host
/// lists, so `sslrootcert=/etc/ssl/ca.pem` reads as typed.
fn encode(text: &str) -> percent_encoding::PercentEncode<'_> {
    const KEPT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b':')
        .remove(b',');
    percent_encoding::utf8_percent_encode(text, KEPT)
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
            .field("tls", &self.tls)
            // `connect` is `url` without the TLS keys.
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{HistoryLocation, PostgresUrl};
    use crate::history::tls::{Check, Roots, SslMode, TlsError};

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
        let error =
            PostgresUrl::parse("postgres://alice:s3cr3t-pw@db/h?sslcert=/c.pem").unwrap_err();
        assert!(error.contains("unknown option `sslcert`"), "{error}");
    }

    #[test]
    fn tls_keys_are_kept_for_display_and_taken_out_of_the_connection() {
        let url = PostgresUrl::parse(
            "postgres://alice:s3cr3t-pw@db.example.invalid/history\
             ?sslmode=verify-full&sslrootcert=/etc/ssl/team%20ca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://alice@db.example.invalid/history\
             ?connect_timeout=5&sslmode=verify-full&sslrootcert=/etc/ssl/team%20ca.pem"
        );
        // tokio-postgres, which refuses verify-full and sslrootcert, never sees them.
        assert_eq!(
            url.config().get_hosts(),
            [tokio_postgres::config::Host::Tcp(
                "db.example.invalid".to_owned()
            )]
        );
        let (mode, check) = url.tls.resolve(|_| None).unwrap();
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(
            check,
            Check::ChainAndName(Roots::File {
                key: "sslrootcert",
                path: "/etc/ssl/team ca.pem".into()
            })
        );
    }

    #[test]
    fn an_unknown_sslmode_is_named_with_its_value_and_never_with_the_password() {
        let error = PostgresUrl::parse("postgres://alice:s3cr3t-pw@db/h?sslmode=verify-everything")
            .unwrap_err();
        assert!(error.contains("sslmode \"verify-everything\""), "{error}");
        assert!(error.contains("verify-full"), "{error}");
        assert!(!error.contains("s3cr3t-pw"), "{error}");
    }

    #[test]
    fn modes_default_and_come_from_the_environment_as_libpq_reads_them() {
        let resolve = |raw: &str, environment: &[(&str, &str)]| {
            let url = PostgresUrl::parse(raw).unwrap();
            let environment: Vec<(String, String)> = environment
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            url.tls.resolve(|name| {
                environment
                    .iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            })
        };
        let base = "postgres://alice@db/h";
        assert_eq!(
            resolve(base, &[]).unwrap(),
            (SslMode::Prefer, Check::Nothing)
        );
        assert_eq!(
            resolve(base, &[("PGSSLMODE", "require")]).unwrap(),
            (SslMode::Require, Check::Nothing)
        );
        // The URL wins over the environment.
        assert_eq!(
            resolve(
                &format!("{base}?sslmode=disable"),
                &[("PGSSLMODE", "verify-full")]
            )
            .unwrap(),
            (SslMode::Disable, Check::Nothing)
        );
        // require with a root certificate checks the chain (libpq's verify-ca).
        let file = Roots::File {
            key: "PGSSLROOTCERT",
            path: "/ca.pem".into(),
        };
        assert_eq!(
            resolve(
                &format!("{base}?sslmode=require"),
                &[("PGSSLROOTCERT", "/ca.pem")]
            )
            .unwrap(),
            (SslMode::Require, Check::Chain(file))
        );
        assert_eq!(
            resolve(&format!("{base}?sslmode=verify-ca"), &[]).unwrap(),
            (SslMode::VerifyCa, Check::Chain(Roots::System))
        );
        assert_eq!(
            resolve(&format!("{base}?sslrootcert=system"), &[]).unwrap(),
            (SslMode::VerifyFull, Check::ChainAndName(Roots::System))
        );
        let error = resolve(&format!("{base}?sslrootcert=system&sslmode=require"), &[]);
        assert!(
            matches!(error, Err(TlsError::WeakModeForSystemRoots { .. })),
            "{error:?}"
        );
        let error = resolve(base, &[("PGSSLMODE", "on")])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("PGSSLMODE \"on\" is not a TLS mode"),
            "{error}"
        );
    }
}
