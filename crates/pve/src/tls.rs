//! TLS trust modes for talking to PVE: system roots, a CA file, a pinned fingerprint, or
//! (only when asked) no verification.
//!
//! Why these four: a fresh PVE node serves a self-signed certificate, so "verify against
//! system roots" fails out of the box and users reach for `insecure`. Pinning the SHA-256
//! fingerprint that the PVE GUI shows (colon hex) is just as easy and still safe: the
//! verifier compares the leaf certificate's hash and keeps checking handshake signatures,
//! so a man in the middle without the key cannot pass. Insecure exists for labs and is
//! logged as a warning every time a client is built with it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// A SHA-256 certificate fingerprint, printed as PVE shows it (`AB:CD:...`, upper case).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// Why a text is not a SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a TLS fingerprint is 32 bytes of hex, colon-separated as Proxmox shows it (AB:CD:...); got {0:?}"
)]
pub struct FingerprintParseError(String);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// A fingerprint from its 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    /// Accepts colon-separated or plain hex, any case, with an optional `sha256:` prefix.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let without_prefix = trimmed
            .strip_prefix("sha256:")
            .or_else(|| trimmed.strip_prefix("SHA256:"))
            .unwrap_or(trimmed);
        let digits: String = without_prefix.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(&digits).map_err(|_| FingerprintParseError(text.to_owned()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| FingerprintParseError(text.to_owned()))?;
        Ok(Self(array))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|byte| format!("{byte:02X}")).collect();
        formatter.write_str(&parts.join(":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Fingerprint({self})")
    }
}

/// How to trust the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// The operating system's trust store (the default).
    #[default]
    SystemRoots,
    /// Only certificates issued by the CA(s) in this PEM file.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint (hostname not checked).
    Fingerprint(Fingerprint),
    /// No certificate verification at all. Only when the user asked for it explicitly.
    Insecure,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup_error(reason: String, source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Setup {
        reason,
        source: Some(Box::new(source)),
    }
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| setup_error(format!("cannot read CA file {}", path.display()), error))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|error| {
            setup_error(format!("invalid PEM in CA file {}", path.display()), error)
        })?;
        roots.add(certificate).map_err(|error| {
            setup_error(format!("unusable certificate in {}", path.display()), error)
        })?;
    }
    if roots.is_empty() {
        return Err(Error::Setup {
            reason: format!("CA file {} holds no certificate", path.display()),
            source: None,
        });
    }
    Ok(roots)
}

/// Why a TLS handshake with the API failed, in the terms an operator acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The certificate does not chain to a trusted CA: typically a PVE node's own
    /// self-signed certificate, with no fingerprint pinned. `fingerprint` is the server's,
    /// to compare with `pvenode cert info` and pin.
    Untrusted {
        fingerprint: Fingerprint,
        reason: String,
    },
    /// The certificate is not the pinned one.
    PinMismatch {
        expected: Fingerprint,
        actual: Fingerprint,
    },
    /// The server did not answer in TLS at all (a plain-http server behind `https://`).
    NotTls,
    /// Anything else the handshake reported.
    Other(String),
}

impl fmt::Display for TlsProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untrusted {
                fingerprint,
                reason,
            } => write!(
                formatter,
                "the server's certificate is not trusted ({reason}); its SHA-256 fingerprint is \
                 {fingerprint}"
            ),
            Self::PinMismatch { expected, actual } => write!(
                formatter,
                "the server's certificate fingerprint {actual} is not the pinned {expected}"
            ),
            Self::NotTls => formatter.write_str(
                "the server does not speak TLS (is it a plain-http server? then the URL is \
                 http://, accepted for a loopback lab only)",
            ),
            Self::Other(text) => formatter.write_str(text),
        }
    }
}

/// A verifier's refusal carrying the [`TlsProblem`], so the client can tell the operator
/// what happened instead of rustls' generic wording.
pub(crate) struct Refused(pub(crate) TlsProblem);

impl fmt::Debug for Refused {
    /// As its `Display`: rustls prints a refusal with `Debug` in its own message.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, formatter)
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

impl std::error::Error for Refused {}

fn refused(problem: TlsProblem) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused(
        problem,
    )))))
}

/// The problem a rustls error stands for.
pub(crate) fn problem_of(error: &rustls::Error) -> TlsProblem {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => other
            .0
            .downcast_ref::<Refused>()
            .map_or_else(|| TlsProblem::Other(error.to_string()), |r| r.0.clone()),
        rustls::Error::InvalidMessage(_) => TlsProblem::NotTls,
        other => TlsProblem::Other(other.to_string()),
    }
}

/// The standard chain-of-trust verifier (system roots or a CA file) that, on refusal,
/// names the server's fingerprint: the value an operator pins for a self-signed node.
#[derive(Debug)]
struct ReportingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ReportingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|error| {
                refused(TlsProblem::Untrusted {
                    fingerprint: Fingerprint::of_certificate(end_entity.as_ref()),
                    reason: error.to_string(),
                })
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn reporting(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ReportingVerifier>, Error> {
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|error| setup_error("cannot build the certificate verifier".to_owned(), error))?;
    Ok(Arc::new(ReportingVerifier { inner }))
}

fn system_roots() -> Result<RootCertStore, Error> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(Error::Setup {
            reason: "no usable certificates in the system trust store; pass a CA file or the \
                     server's fingerprint"
                .to_owned(),
            source: None,
        });
    }
    Ok(roots)
}

/// Builds the rustls configuration for `mode` (ring provider, TLS 1.2 and 1.3).
///
/// # Errors
/// [`Error::Setup`] when the CA file cannot be read or holds no certificate, or the system
/// store has no usable certificate.
pub fn client_config(mode: &TlsMode) -> Result<ClientConfig, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| setup_error("TLS provider has no protocol versions".to_owned(), error))?;
    let config = match mode {
        TlsMode::SystemRoots => builder
            .dangerous()
            .with_custom_certificate_verifier(reporting(system_roots()?, provider)?)
            .with_no_client_auth(),
        TlsMode::CaFile(path) => builder
            .dangerous()
            .with_custom_certificate_verifier(reporting(roots_from_file(path)?, provider)?)
            .with_no_client_auth(),
        TlsMode::Fingerprint(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                expected: Some(*fingerprint),
                provider,
            }))
            .with_no_client_auth(),
        TlsMode::Insecure => {
            tracing::warn!(
                "TLS certificate verification is disabled (insecure mode): anyone on the path \
                 can read the API token"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                    expected: None,
                    provider,
                }))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// A configuration trusting nothing, for plain-http URLs where reqwest still wants one.
///
/// # Errors
/// [`Error::Setup`] when the provider offers no protocol version (never with ring).
pub(crate) fn trust_nothing_config() -> Result<ClientConfig, Error> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| setup_error("TLS provider has no protocol versions".to_owned(), error))?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// Accepts the leaf certificate whose SHA-256 is `expected` (or any, when `None`), and
/// still verifies the handshake signatures with the certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    expected: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(expected) = self.expected else {
            return Ok(ServerCertVerified::assertion());
        };
        let actual = Fingerprint::of_certificate(end_entity.as_ref());
        if actual == expected {
            Ok(ServerCertVerified::assertion())
        } else {
            // The error names both fingerprints and reaches the user; a warning would say
            // it twice.
            tracing::debug!(%expected, %actual, "server certificate fingerprint mismatch");
            Err(refused(TlsProblem::PinMismatch { expected, actual }))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{Fingerprint, TlsMode, client_config};
    use proptest::prelude::*;

    #[test]
    fn parses_pve_style_fingerprints() {
        let text = (0u8..32)
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let fingerprint: Fingerprint = text.parse().unwrap();
        assert_eq!(fingerprint.to_string(), text);
        let plain: Fingerprint = text.replace(':', "").to_lowercase().parse().unwrap();
        assert_eq!(plain, fingerprint);
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn builds_configs_and_reports_bad_ca_files() {
        let fingerprint = Fingerprint::of_certificate(b"not really a certificate");
        assert!(client_config(&TlsMode::Fingerprint(fingerprint)).is_ok());
        assert!(client_config(&TlsMode::Insecure).is_ok());
        let directory = tempfile::tempdir().unwrap();
        let empty = directory.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = client_config(&TlsMode::CaFile(empty)).unwrap_err();
        assert!(error.to_string().contains("no certificate"), "{error}");
        let missing = directory.path().join("missing.pem");
        assert!(client_config(&TlsMode::CaFile(missing)).is_err());
    }

    proptest! {
        #[test]
        fn fingerprints_round_trip(bytes in any::<[u8; 32]>()) {
            let fingerprint = Fingerprint(bytes);
            prop_assert_eq!(fingerprint.to_string().parse::<Fingerprint>().unwrap(), fingerprint);
        }
    }
}
