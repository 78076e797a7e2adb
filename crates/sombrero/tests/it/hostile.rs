//! Servers that are not a healthy Proxmox VE: each gives a clear error (exit 1) within the
//! configured timeouts, never a hang or a panic. (A server that does not speak TLS and an
//! untrusted certificate are in `api.rs`.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::sandbox::Sandbox;

/// An HTTP/1.1 answer with a correct length.
fn answer(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves every connection with `answer` (or holds it silently when `None`) on a thread.
fn serve(answer: Option<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            match &answer {
                Some(text) => {
                    let mut buffer = [0_u8; 4096];
                    let _ = stream.read(&mut buffer);
                    let _ = stream.write_all(text.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    url
}

fn against(url: &str) -> Sandbox {
    Sandbox::new()
        .env("TF_VAR_pve_api_url", url)
        .env(
            "TF_VAR_pve_api_token",
            "root@pam!lab=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        )
        .env("SOMBRERO_RETRY_DELAY_MS", "0")
        .env("SOMBRERO_API_TIMEOUT", "1")
        .timeout(Duration::from_secs(60))
}

#[test]
fn a_server_that_never_answers_fails_after_one_retry() {
    let outcome = against(&serve(None))
        .run(&["api", "get", "/version"])
        .expect_code(1);
    assert!(
        outcome
            .stderr
            .contains("error: GET /version: no complete answer"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.contains("timed out"), "{}", outcome.stderr);
    // One retry, announced; not eight.
    assert_eq!(
        outcome.stderr.matches("retrying in").count(),
        1,
        "{}",
        outcome.stderr
    );
}

#[test]
fn an_html_error_page_and_garbage_are_clear_errors() {
    let html = answer(
        "502 Bad Gateway",
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    );
    let outcome = against(&serve(Some(html)))
        .run(&["api", "get", "/version"])
        .expect_code(1);
    assert!(
        outcome
            .stderr
            .contains("error: GET /version: 502 Bad Gateway"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
    let garbage = answer("200 OK", "application/json", "{not json");
    let outcome = against(&serve(Some(garbage)))
        .run(&["api", "get", "/version"])
        .expect_code(1);
    assert!(
        outcome
            .stderr
            .contains("error: GET /version: unexpected answer: the body is not JSON"),
        "{}",
        outcome.stderr
    );
}

/// `https://` to a server that accepts and never answers: the TLS handshake gets no
/// answer either, and the call fails after one retry, not eight timeouts.
#[test]
fn a_tls_server_that_never_answers_fails_after_one_retry() {
    let url = serve(None).replacen("http://", "https://", 1);
    let outcome = against(&url)
        .env("SOMBRERO_PVE_FINGERPRINT", &["AB"; 32].join(":"))
        .run(&["api", "get", "/version"])
        .expect_code(1);
    assert!(
        outcome.stderr.matches("retrying in").count() <= 1,
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("error: GET /version"),
        "{}",
        outcome.stderr
    );
}
