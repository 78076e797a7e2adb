//! The lab's self-signed TLS certificate and its PVE-style fingerprint.
//!
//! Why: clients connect to PVE over HTTPS with a self-signed certificate pinned by its
//! SHA-256 fingerprint (`AA:BB:...`, what the PVE GUI shows), and the lab must exercise
//! that path. The certificate is generated on first start (rcgen, ring) and kept in the
//! state dir as `pve-ssl.pem` / `pve-ssl.key`, so a restarted lab keeps its fingerprint;
//! it is regenerated only when missing. Files are written atomically (temp + rename).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot generate the lab's certificate")]
    Generate(#[source] rcgen::Error),
    #[error("cannot read or write {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: String, what: &'static str },
    #[error("the certificate is not usable for TLS")]
    Rustls(#[source] rustls::Error),
}

/// A certificate and key in PEM, with the certificate's fingerprint.
#[derive(Clone)]
pub struct TlsMaterial {
    pub certificate_pem: String,
    private_key_pem: String,
    /// SHA-256 of the DER certificate, upper-case hex pairs joined by `:`.
    pub fingerprint: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TlsMaterial")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// `AA:BB:...`: SHA-256 of `der` the way PVE displays fingerprints.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes `bytes` to `path` via a temp file and rename; the file is readable by the owner
/// only (it may hold a private key or secrets).
///
/// # Errors
/// Any IO error of the write, sync or rename.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temporary = path.with_file_name(name);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

impl TlsMaterial {
    /// A new self-signed certificate for `localhost` and `127.0.0.1`.
    ///
    /// # Errors
    /// [`TlsError::Generate`] if key or certificate generation fails.
    pub fn generate() -> Result<Self, TlsError> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).map_err(TlsError::Generate)?;
        Ok(Self {
            fingerprint: fingerprint(certified.cert.der()),
            certificate_pem: certified.cert.pem(),
            private_key_pem: certified.signing_key.serialize_pem(),
        })
    }

    /// Loads `pve-ssl.pem`/`pve-ssl.key` from `dir`, or generates and saves them.
    ///
    /// # Errors
    /// IO errors, or files that do not hold a certificate and key.
    pub fn load_or_generate(dir: &Path) -> Result<Self, TlsError> {
        let certificate_path = dir.join("pve-ssl.pem");
        let key_path = dir.join("pve-ssl.key");
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Io { path, source }
        };
        if certificate_path.exists() && key_path.exists() {
            let certificate_pem =
                std::fs::read_to_string(&certificate_path).map_err(io(&certificate_path))?;
            let private_key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes()).map_err(|_| {
                TlsError::Pem {
                    path: certificate_path.display().to_string(),
                    what: "certificate",
                }
            })?;
            return Ok(Self {
                fingerprint: fingerprint(&der),
                certificate_pem,
                private_key_pem,
            });
        }
        let material = Self::generate()?;
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        write_private_atomically(&key_path, material.private_key_pem.as_bytes())
            .map_err(io(&key_path))?;
        write_private_atomically(&certificate_path, material.certificate_pem.as_bytes())
            .map_err(io(&certificate_path))?;
        Ok(material)
    }

    /// A rustls server configuration (ring provider) serving this certificate.
    ///
    /// # Errors
    /// The PEM text does not parse or rustls rejects the key.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certificate =
            CertificateDer::from_pem_slice(self.certificate_pem.as_bytes()).map_err(|_| {
                TlsError::Pem {
                    path: "pve-ssl.pem".into(),
                    what: "certificate",
                }
            })?;
        let key = PrivateKeyDer::from_pem_slice(self.private_key_pem.as_bytes()).map_err(|_| {
            TlsError::Pem {
                path: "pve-ssl.key".into(),
                what: "private key",
            }
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(vec![certificate], key)
            .map_err(TlsError::Rustls)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_in_the_state_dir_and_reused() {
        let dir = tempfile::tempdir().expect("a value");
        let first = TlsMaterial::load_or_generate(dir.path()).expect("a value");
        let second = TlsMaterial::load_or_generate(dir.path()).expect("a value");
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        assert!(
            first
                .fingerprint
                .chars()
                .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert!(second.server_config().is_ok());
        std::fs::remove_file(dir.path().join("pve-ssl.pem")).expect("a value");
        let third = TlsMaterial::load_or_generate(dir.path()).expect("a value");
        assert_ne!(first.fingerprint, third.fingerprint);
    }
}
