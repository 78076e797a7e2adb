//! TLS modes against the lab's self-signed HTTPS endpoint.

use pve::{Client, Error, Fingerprint, RetryPolicy, TlsMode, TlsProblem};

use crate::common::lab;

#[tokio::test]
async fn pinned_fingerprint_connects_and_a_wrong_one_is_refused() {
    let lab = lab(|options| options.tls = true).await;
    let fingerprint: Fingerprint = lab
        .fingerprint()
        .expect("TLS lab has a fingerprint")
        .parse()
        .unwrap();
    let token = lab.token();
    let build = |mode: TlsMode| {
        Client::builder(lab.url())
            .token(token.parse().unwrap())
            .tls(mode)
            .retry(RetryPolicy::default().without_delays())
            .build()
            .unwrap()
    };
    build(TlsMode::Fingerprint(fingerprint))
        .version()
        .await
        .unwrap();
    build(TlsMode::Insecure).version().await.unwrap();
    let wrong = Fingerprint::of_certificate(b"some other certificate");
    let error = build(TlsMode::Fingerprint(wrong))
        .version()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Tls { problem: TlsProblem::PinMismatch { expected, actual }, .. }
            if *expected == wrong && *actual == fingerprint),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!(
            "fingerprint {fingerprint} is not the pinned {wrong}"
        )),
        "{error}"
    );
    // The wrong pin is refused once, not retried like a connection failure.
    let client = build(TlsMode::Fingerprint(wrong));
    let _ = client.version().await;
    assert_eq!(client.metrics().total(), 1);
}

/// `TlsMode::CaFile` with the lab's certificate file (what an operator does with
/// `/etc/pve/pve-root-ca.pem`): trusted; system roots (the default) refuse the lab.
#[tokio::test]
async fn ca_file_mode_trusts_the_lab_certificate_and_system_roots_do_not() {
    let state = tempfile::tempdir().unwrap();
    let lab = lab(|options| {
        options.tls = true;
        options.state_dir = Some(state.path().to_owned());
    })
    .await;
    let token = lab.token();
    let build = |mode: TlsMode| {
        Client::builder(lab.url())
            .token(token.parse().unwrap())
            .tls(mode)
            .retry(RetryPolicy::default().without_delays())
            .build()
            .unwrap()
    };
    build(TlsMode::CaFile(state.path().join("pve-ssl.pem")))
        .version()
        .await
        .unwrap();
    let error = build(TlsMode::SystemRoots).version().await.unwrap_err();
    // A self-signed node without a pin: "not trusted", with the fingerprint to pin (not
    // "not the one configured": nothing was configured).
    let served: Fingerprint = lab.fingerprint().expect("fingerprint").parse().unwrap();
    assert!(
        matches!(&error, Error::Tls { problem: TlsProblem::Untrusted { fingerprint, .. }, .. }
            if *fingerprint == served),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("is not trusted")
            && error.to_string().contains(&served.to_string()),
        "{error}"
    );
}

/// `https://` to a server that answers plain HTTP is said to be not TLS, not a wrong
/// certificate, and is not retried.
#[tokio::test]
async fn a_server_that_does_not_speak_tls_is_named_as_such() {
    let lab = lab(|options| options.tls = false).await;
    let https = lab.url().replacen("http://", "https://", 1);
    let client = Client::builder(&https)
        .token(lab.token().parse().unwrap())
        .tls(TlsMode::Fingerprint(Fingerprint::of_certificate(b"any")))
        .retry(RetryPolicy::default().without_delays())
        .build()
        .unwrap();
    let error = client.version().await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Tls {
                problem: TlsProblem::NotTls,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("does not speak TLS"), "{error}");
    assert_eq!(client.metrics().total(), 1);
}
