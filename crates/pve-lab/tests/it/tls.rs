//! HTTPS with the self-signed certificate, pinned by the printed fingerprint.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::common::{install_crypto, start_with};

/// Accepts exactly the certificate whose SHA-256 fingerprint is `expected` (PVE style).
#[derive(Debug)]
struct Pinned {
    expected: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual: Vec<String> = Sha256::digest(end_entity)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        if actual.join(":") == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("fingerprint mismatch".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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

fn pinned_client(fingerprint: &str) -> reqwest::Client {
    install_crypto();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            expected: fingerprint.to_owned(),
            provider,
        }))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

#[tokio::test]
async fn https_with_a_pinned_fingerprint_kept_across_restarts() {
    let state = tempfile::tempdir().expect("temp dir");
    let lab = start_with(|options| {
        options.tls = true;
        options.state_dir = Some(state.path().to_owned());
    })
    .await;
    assert!(lab.url().starts_with("https://127.0.0.1:"));
    let fingerprint = lab.fingerprint().expect("a fingerprint").to_owned();
    assert_eq!(fingerprint.len(), 95);
    let response = pinned_client(&fingerprint)
        .get(format!("{}/version", lab.url()))
        .header("Authorization", lab.authorization())
        .send()
        .await
        .expect("TLS with the pinned certificate");
    assert_eq!(response.status(), 200);
    // Another fingerprint: the first hex digit changed (a fresh certificate's fingerprint
    // may hold no particular digit, so `replace` could leave it as it was).
    let first = if fingerprint.starts_with('0') {
        "1"
    } else {
        "0"
    };
    let other = format!("{first}{}", &fingerprint[1..]);
    assert_ne!(other, fingerprint);
    let wrong = pinned_client(&other)
        .get(format!("{}/version", lab.url()))
        .send()
        .await;
    assert!(wrong.is_err(), "a different fingerprint is refused");
    let token = lab.token();
    lab.shutdown().await;
    let again = start_with(|options| {
        options.tls = true;
        options.state_dir = Some(state.path().to_owned());
    })
    .await;
    assert_eq!(again.fingerprint(), Some(fingerprint.as_str()));
    assert_eq!(
        again.token(),
        token,
        "credentials are kept in the state dir"
    );
    assert!(state.path().join("pve-ssl.pem").exists());
}
