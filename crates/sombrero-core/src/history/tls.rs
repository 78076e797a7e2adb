//! How the connection to a team's `PostgreSQL` is encrypted: `libpq`'s `sslmode` and
//! `sslrootcert`, from the URL or from `PGSSLMODE` and `PGSSLROOTCERT`.
//!
//! Why our own parsing: `tokio-postgres` knows `disable`, `prefer` and `require` only and
//! refuses the other keys, while operators write the URLs they use with `psql`, often
//! `sslmode=verify-full&sslrootcert=/etc/ssl/team-ca.pem`. The URL's TLS keys are taken
//! out before the rest goes to `tokio-postgres` and kept here, with `libpq`'s meanings:
//! `prefer` (the default) tries TLS and falls back to a plain connection, `require`
//! encrypts without checking the certificate unless a root certificate is given, and the
//! `verify-*` modes check the chain (and the host name) against the given file or the
//! system's roots (docs/decisions/105-postgres-tls.md).

use std::fmt;
use std::path::PathBuf;

/// `libpq`'s `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, else plain (also after a failed handshake).
    Prefer,
    /// TLS or nothing; the certificate is checked only against a given root certificate.
    Require,
    /// TLS, with the server's certificate chain checked.
    VerifyCa,
    /// TLS, with the chain and the host name (or IP address) checked.
    VerifyFull,
}

impl SslMode {
    /// The mode as `libpq` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn parse(key: &'static str, value: &str) -> Result<Self, TlsError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // `allow` is `libpq`'s "plain first": sombrero does not retry in that order.
            _ => {
                return Err(TlsError::UnknownMode {
                    key,
                    value: value.to_owned(),
                });
            }
        })
    }

    /// The mode `tokio-postgres` negotiates with (it checks no certificate itself).
    pub(crate) fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            Self::Disable => tokio_postgres::config::SslMode::Disable,
            Self::Prefer => tokio_postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The certificates a server's chain is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file (`sslrootcert=FILE`); `key` says where it was named.
    File { key: &'static str, path: PathBuf },
    /// The system's trust store (`sslrootcert=system`, or no root certificate under a
    /// `verify-*` mode).
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, .. } => write!(formatter, "the certificates in {}", path.display()),
            Self::System => formatter.write_str("the system's trusted certificates"),
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing (the connection is encrypted, not authenticated).
    Nothing,
    /// The chain, against these roots.
    Chain(Roots),
    /// The chain and the host name.
    ChainAndName(Roots),
}

/// The TLS keys of a URL, as written (unresolved: the environment is read at connect
/// time, as `libpq` reads it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    mode: Option<SslMode>,
    root_cert: Option<String>,
}

impl TlsOptions {
    /// Takes `key=value` if it is a TLS key (`true`), checking the mode.
    ///
    /// # Errors
    /// An unknown `sslmode`.
    pub(crate) fn take(&mut self, key: &str, value: &str) -> Result<bool, TlsError> {
        match key {
            "sslmode" => self.mode = Some(SslMode::parse("sslmode", value)?),
            "sslrootcert" => self.root_cert = Some(value.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The mode and the check, with `PGSSLMODE` and `PGSSLROOTCERT` (read by `variable`)
    /// for what the URL does not say.
    ///
    /// # Errors
    /// An unknown `PGSSLMODE`, or a mode weaker than `verify-full` with
    /// `sslrootcert=system` (refused by `libpq` too).
    pub(crate) fn resolve(
        &self,
        variable: impl Fn(&str) -> Option<String>,
    ) -> Result<(SslMode, Check), TlsError> {
        let from_environment = |name: &str| variable(name).filter(|value| !value.is_empty());
        let mode = match (self.mode, from_environment("PGSSLMODE")) {
            (Some(mode), _) => Some(("sslmode", mode)),
            (None, Some(value)) => Some(("PGSSLMODE", SslMode::parse("PGSSLMODE", &value)?)),
            (None, None) => None,
        };
        let root_cert = match (&self.root_cert, from_environment("PGSSLROOTCERT")) {
            (Some(file), _) => Some(("sslrootcert", file.clone())),
            (None, Some(file)) => Some(("PGSSLROOTCERT", file)),
            (None, None) => None,
        };
        let roots = root_cert.map(|(key, file)| {
            if file == "system" {
                Roots::System
            } else {
                Roots::File {
                    key,
                    path: PathBuf::from(file),
                }
            }
        });
        let mode = match (mode, &roots) {
            (None, Some(Roots::System)) => SslMode::VerifyFull,
            (Some((key, mode)), Some(Roots::System)) if mode != SslMode::VerifyFull => {
                return Err(TlsError::WeakModeForSystemRoots { key, mode });
            }
            (Some((_, mode)), _) => mode,
            (None, _) => SslMode::Prefer,
        };
        let check = match (mode, roots) {
            (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Check::Nothing,
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
                Check::Chain(roots)
            }
            (SslMode::VerifyCa, None) => Check::Chain(Roots::System),
            (SslMode::VerifyFull, roots) => Check::ChainAndName(roots.unwrap_or(Roots::System)),
        };
        Ok((mode, check))
    }
}

/// Why a TLS connection to the `PostgreSQL` history could not be set up or made. None
/// of the messages contains a password: they name keys, modes, files and hosts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `sslmode` (or `PGSSLMODE`) is not one of `libpq`'s modes.
    #[error(
        "{key} {value:?} is not a TLS mode: expected disable, prefer, require, verify-ca or \
         verify-full"
    )]
    UnknownMode { key: &'static str, value: String },
    /// `sslrootcert=system` with a mode that would not check the host name.
    #[error("{key} {mode} is too weak for sslrootcert=system, which requires verify-full")]
    WeakModeForSystemRoots { key: &'static str, mode: SslMode },
    /// The root certificate file cannot be read.
    #[error("cannot read the root certificate file {} ({key})", path.display())]
    RootCertUnreadable {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The root certificate file holds no usable PEM certificate.
    #[error("the root certificate file {} ({key}) holds no usable PEM certificate", path.display())]
    RootCertEmpty { key: &'static str, path: PathBuf },
    /// A `verify-*` mode without a root certificate, and the system has no trusted
    /// certificates.
    #[error("sslmode {mode} checks the server's certificate, but the system trusts no certificate")]
    NoSystemRoots { mode: SslMode },
    /// The server asked to encrypt answered that it does not do TLS.
    #[error("the server does not accept TLS connections, and sslmode {mode} requires TLS")]
    ServerWithoutTls { mode: SslMode },
    /// The TLS library could not be set up with these settings.
    #[error("cannot set up TLS: {reason}")]
    Setup { reason: String },
    /// The handshake failed: most often the server's certificate was refused.
    #[error("TLS with {host} failed (sslmode {mode}): {reason}")]
    Handshake {
        host: String,
        mode: SslMode,
        reason: String,
    },
}

impl TlsError {
    /// Whether the settings are wrong (exit code 2) rather than the connection.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::UnknownMode { .. }
                | Self::WeakModeForSystemRoots { .. }
                | Self::RootCertUnreadable { .. }
                | Self::RootCertEmpty { .. }
        )
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::UnknownMode { .. } | Self::WeakModeForSystemRoots { .. } => {
                "docs/scaling-out.md, \"Encrypting the connection\", lists the modes"
            }
            Self::RootCertUnreadable { .. } | Self::RootCertEmpty { .. } => {
                "sslrootcert (or PGSSLROOTCERT) names a PEM file with the CA certificate(s) that \
                 signed the server's certificate"
            }
            Self::NoSystemRoots { .. } => {
                "give the CA certificate that signed the server's certificate with \
                 sslrootcert=FILE in the URL"
            }
            Self::Setup { .. } => "check sslrootcert and sslmode",
            Self::ServerWithoutTls { .. } => {
                "turn on ssl in the server's postgresql.conf, or (on a trusted network only) use \
                 sslmode=prefer or disable"
            }
            Self::Handshake { .. } => {
                "check that sslrootcert names the CA that signed the server's certificate and \
                 that the URL's host is one of the names in it (verify-ca checks the chain only)"
            }
        }
    }
}
