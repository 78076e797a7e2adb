//! TLS for the `PostgreSQL` connection, on rustls (the TLS stack the Proxmox client
//! already uses, so one implementation and one crypto provider, ring, in the binary).
//!
//! Why not `tokio-postgres-rustls`: `verify-ca` needs a verifier of our own anyway (the
//! chain checked, the name not), and a refused certificate should reach the operator as
//! "not signed by the CA in FILE" or "not valid for HOST (it names ...)", which needs the
//! rustls error before `tokio-postgres` boxes it. What is left is a small adapter from
//! `tokio-rustls` to `tokio-postgres`' [`MakeTlsConnect`] (docs/decisions/105-postgres-tls.md).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::verifiers::{ChainOnly, Unchecked};
use crate::history::tls::{Check, Roots, SslMode, TlsError};

/// Makes one TLS connector per host the URL names.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    config: Arc<ClientConfig>,
    mode: SslMode,
    check: Arc<Check>,
}

impl Connector {
    /// The rustls configuration for `check`: the root certificates are read here.
    ///
    /// # Errors
    /// The root certificate file cannot be read or holds no certificate, or the system
    /// trusts none.
    pub(crate) fn new(mode: SslMode, check: Check) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match &check {
            // `disable` never gets here with a handshake; nothing to load for it.
            Check::Nothing => Arc::new(Unchecked {
                provider: Arc::clone(&provider),
            }),
            Check::Chain(roots) => Arc::new(ChainOnly {
                inner: web_pki(roots, mode, &provider)?,
            }),
            Check::ChainAndName(roots) => web_pki(roots, mode, &provider)?,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Setup {
                reason: error.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            mode,
            check: Arc::new(check),
        })
    }
}

fn web_pki(
    roots: &Roots,
    mode: SslMode,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File { key, path } => {
            let unreadable = |source| TlsError::RootCertUnreadable {
                key,
                path: path.clone(),
                source,
            };
            let text = std::fs::read(path).map_err(unreadable)?;
            let certificates = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| unreadable(io::Error::new(io::ErrorKind::InvalidData, error)))?;
            let (added, _) = store.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(TlsError::RootCertEmpty {
                    key,
                    path: path.clone(),
                });
            }
        }
        Roots::System => {
            let loaded = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                return Err(TlsError::NoSystemRoots { mode });
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
        .build()
        .map_err(|error| TlsError::Setup {
            reason: format!("cannot use {roots}: {error}"),
        })
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connect;
    type Error = HandshakeFailed;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, HandshakeFailed> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| HandshakeFailed {
            host: host.to_owned(),
            mode: self.mode,
            reason: "the host is neither a DNS name nor an IP address".to_owned(),
        })?;
        Ok(Connect {
            config: Arc::clone(&self.config),
            name,
            failed: Failed {
                host: host.to_owned(),
                mode: self.mode,
                check: Arc::clone(&self.check),
            },
        })
    }
}

/// The handshake with one host.
#[derive(Debug)]
pub(crate) struct Connect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    failed: Failed,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = HandshakeFailed;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<S>, HandshakeFailed>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            match connector.connect(self.name, stream).await {
                Ok(stream) => Ok(TlsStream(stream)),
                Err(error) => Err(self.failed.explain(&error)),
            }
        })
    }
}

/// What a failed handshake is reported with.
#[derive(Debug, Clone)]
struct Failed {
    host: String,
    mode: SslMode,
    check: Arc<Check>,
}

impl Failed {
    /// The rustls refusal in an operator's words.
    fn explain(&self, error: &io::Error) -> HandshakeFailed {
        let rustls_error = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let roots = match &*self.check {
            Check::Chain(roots) | Check::ChainAndName(roots) => roots.to_string(),
            Check::Nothing => "nothing".to_owned(),
        };
        let reason = match rustls_error {
            Some(rustls::Error::InvalidCertificate(problem)) => match problem {
                CertificateError::UnknownIssuer => format!(
                    "the server's certificate is not signed by a certificate authority in {roots}"
                ),
                CertificateError::NotValidForName => format!(
                    "the server's certificate is not valid for the host name {}",
                    self.host
                ),
                CertificateError::NotValidForNameContext { presented, .. } => format!(
                    "the server's certificate is not valid for the host name {} (it is for {})",
                    self.host,
                    presented
                        .iter()
                        .map(|name| plain_name(name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "the server's certificate has expired".to_owned()
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet".to_owned()
                }
                other => format!("the server's certificate was refused ({other:?})"),
            },
            Some(other) => format!("the handshake failed: {other}"),
            None => format!("the handshake failed: {error}"),
        };
        HandshakeFailed {
            host: self.host.clone(),
            mode: self.mode,
            reason,
        }
    }
}

/// A name rustls presents (`DnsName("db")`, `IpAddress(10.0.0.1)`) as written in a URL.
fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|name| name.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|name| name.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

/// A failed handshake as `tokio-postgres` carries it (as its error's source), said as
/// [`TlsError::Handshake`] says it; [`HandshakeFailed::take`] gets that back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS with {host} failed (sslmode {mode}): {reason}")]
pub(crate) struct HandshakeFailed {
    host: String,
    mode: SslMode,
    reason: String,
}

impl HandshakeFailed {
    /// The TLS error behind a connection error, if the handshake failed (refused
    /// certificate, or a server without TLS under a mode that requires it).
    pub(crate) fn take(error: &tokio_postgres::Error, mode: SslMode) -> Option<TlsError> {
        let source = std::error::Error::source(error)?;
        if let Some(failed) = source.downcast_ref::<Self>() {
            let failed = failed.clone();
            return Some(TlsError::Handshake {
                host: failed.host,
                mode: failed.mode,
                reason: failed.reason,
            });
        }
        // `tokio-postgres`' own words when the server answers "no TLS here".
        (error.to_string() == "error performing TLS handshake"
            && source.to_string() == "server does not support TLS")
            .then_some(TlsError::ServerWithoutTls { mode })
    }
}

/// An encrypted connection.
#[derive(Debug)]
pub(crate) struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(context, buffer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(context, buffer)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(context)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    /// No `tls-server-end-point` binding (SCRAM without `-PLUS`): computing it needs the
    /// certificate's signature hash algorithm, and a verified chain already stops a man
    /// in the middle.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
