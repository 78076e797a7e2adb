//! What the client tells a tracing subscriber: at DEBUG each attempt as it is sent and as
//! it is answered, at TRACE also the parameters, and never a secret (the login password,
//! the ticket, the token).

use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;

use super::Client;
use crate::request::{Method, Params, Request};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::test_server::{http, serve};

thread_local! {
    /// The capture of the test running on this thread, while it runs.
    static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Writes into this thread's capture (and drops what other threads log).
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(buffer) = capture.borrow_mut().as_mut() {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on a current-thread runtime (so the client's events are emitted on this
/// thread) and returns what was logged at TRACE meanwhile, as plain text.
///
/// Why one global subscriber rather than `with_default` per test: tracing caches each
/// event site's interest across threads; with scoped subscribers coming and going in
/// parallel tests, an event site could be cached as uninteresting and its event lost (1 run
/// in 10 here). A global subscriber that enables everything has no such race; each
/// test reads only its own thread's capture.
fn traced<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F) -> String {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(|| ThreadCapture)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(Vec::new()));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(work());
    let bytes = CAPTURE.with(|capture| capture.borrow_mut().take().unwrap_or_default());
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn requests_are_traced_with_status_and_without_secrets() {
    let log = traced(|| async {
        let login = http(
            "200 OK",
            r#"{"data":{"ticket":"PVE:root@pam:ticket-s3cret","CSRFPreventionToken":"csrf-s3cret","username":"root@pam"}}"#,
        );
        let script = serve(vec![
            login,
            http("500 VM 150 is not running", r#"{"data":null}"#),
        ])
        .await;
        let ticketed = Client::builder(&script.base)
            .password("root@pam", Secret::new("password-s3cret"))
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let mut params = Params::new();
        params.set("timeout", "30");
        let stop = Request::new(Method::Post, "/nodes/lloyd/qemu/150/status/stop".into())
            .with_params(params);
        ticketed.execute(&stop).await.unwrap_err();

        let script = serve(vec![http("200 OK", r#"{"data":{"version":"9.1.1"}}"#)]).await;
        let tokened = Client::builder(&script.base)
            .token("root@pam!lab=token-s3cret".parse().unwrap())
            .build()
            .unwrap();
        tokened
            .execute(&Request::new(
                Method::Get,
                "/nodes/lloyd/qemu/150/status/current".into(),
            ))
            .await
            .unwrap();
    });
    for expected in [
        "DEBUG pve::client: POST /access/ticket attempt=1",
        "POST /access/ticket -> 200 in ",
        "DEBUG pve::client: POST /nodes/lloyd/qemu/150/status/stop attempt=1",
        "POST /nodes/lloyd/qemu/150/status/stop -> 500 in ",
        "DEBUG pve::client: GET /nodes/lloyd/qemu/150/status/current attempt=1",
        "GET /nodes/lloyd/qemu/150/status/current -> 200 in ",
        // TRACE: the parameters, the password among them redacted.
        "TRACE pve::client: POST /nodes/lloyd/qemu/150/status/stop parameters",
        "\"timeout\", \"30\"",
        "\"username\", \"root@pam\"",
        Secret::REDACTED,
    ] {
        assert!(log.contains(expected), "{expected:?} missing from:\n{log}");
    }
    assert!(
        log.lines()
            .any(|line| line.contains("-> 200 in ") && line.ends_with(" ms attempt=1")),
        "{log}"
    );
    assert!(!log.contains("s3cret"), "a secret was logged:\n{log}");
}

#[test]
fn a_transport_failure_is_traced_with_its_kind() {
    let log = traced(|| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = Client::builder(&base)
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        client
            .execute(&Request::new(Method::Get, "/version".into()))
            .await
            .unwrap_err();
    });
    assert!(
        log.contains("GET /version -> not sent (cannot connect) in "),
        "{log}"
    );
}
