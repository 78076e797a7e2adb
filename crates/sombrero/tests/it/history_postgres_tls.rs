//! TLS to the `PostgreSQL` history, as an operator writes it in a `libpq` URL: with
//! `sslmode=verify-full&sslrootcert=CA` the history is recorded and read over an
//! encrypted session (the server refuses plain sessions to the role the test logs in
//! as, so the server itself vouches for it), a certificate from another CA or for
//! another host name is refused in words that say so, and bad settings name the key.
//!
//! The test cluster (`scripts/pg-throwaway`) serves a certificate for `localhost` and
//! `127.0.0.1` signed by a CA of its own, kept next to it: `SHOW ssl_cert_file`'s
//! directory + `ca.crt`. Host names are tested with `hostaddr=127.0.0.1`, so the TLS
//! name and the address differ without resolving anything: only 127.0.0.1 is contacted.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::history_fixture::Workspace;
use crate::postgres::{execute, query, server, with_database};

const PASSWORD: &str = "Pa55-s3cret-tls-do-not-show";

/// The test cluster's CA certificate.
fn ca_file(server: &str) -> PathBuf {
    let rows = query(server, "SHOW ssl_cert_file");
    let certificate = PathBuf::from(rows[0][0].clone().expect("ssl_cert_file"));
    let ca = certificate.with_file_name("ca.crt");
    assert!(
        ca.is_file(),
        "{} is missing: the test cluster must come from scripts/pg-throwaway (with TLS)",
        ca.display()
    );
    ca
}

/// A database owned by a new role that may only connect over TLS (a member of
/// `sombrero_tls_only`, refused plain sessions by the cluster's `pg_hba.conf`); returns
/// the URL as `postgres://ROLE@127.0.0.1:PORT/DATABASE`.
fn tls_only_database(server: &str, test: &str) -> String {
    execute(
        server,
        "DO $$ BEGIN CREATE ROLE sombrero_tls_only NOLOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    );
    let name = format!("tls_{test}_{}", std::process::id());
    execute(
        server,
        &format!("CREATE ROLE {name} LOGIN IN ROLE sombrero_tls_only"),
    );
    execute(server, &format!("CREATE DATABASE {name} OWNER {name}"));
    with_database(server, &name).replacen("postgres://postgres@", &format!("postgres://{name}@"), 1)
}

fn run(workspace: &Workspace, url: &str, arguments: &[&str]) -> std::process::Output {
    workspace
        .sombrero(arguments)
        .env("SOMBRERO_HISTORY", url)
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .output()
        .unwrap()
}

fn json(workspace: &Workspace, history: Option<&str>, arguments: &[&str]) -> Value {
    let mut command = workspace.sombrero(arguments);
    if let Some(history) = history {
        command.env("SOMBRERO_HISTORY", history);
    }
    let output = command.arg("--json").assert().success();
    let mut value: Value = serde_json::from_slice(&output.get_output().stdout).unwrap();
    value
        .as_object_mut()
        .map(|object| object.remove("database"));
    value
}

/// The exit code and stderr of a run expected to fail.
fn failure(workspace: &Workspace, url: &str, arguments: &[&str]) -> (i32, String) {
    let output = run(workspace, url, arguments);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code().unwrap_or(-1), stderr)
}

/// A CA certificate that signed nothing the test cluster serves.
fn other_ca(directory: &Path) -> PathBuf {
    let (key, certificate) = (
        directory.join("other-ca.key"),
        directory.join("other-ca.crt"),
    );
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=another CA"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("openssl (scripts/pg-throwaway needs it too)");
    assert!(status.status.success(), "{status:?}");
    certificate
}

#[test]
fn verify_full_records_and_reads_the_history_on_an_encrypted_session() {
    let Some(server) = server("verify_full_records_and_reads_the_history_on_an_encrypted_session")
    else {
        return;
    };
    let ca = ca_file(&server);
    let base = tls_only_database(&server, "verify_full");
    let url = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let workspace = Workspace::new();
    let file = workspace
        .path("deployments/sombrero.db")
        .display()
        .to_string();
    let imported = json(&workspace, Some(&url), &["history", "import", &file]);
    assert_eq!(imported["imported"], 14, "{imported}");
    for arguments in [&["metrics"][..], &["history", "--limit", "50"]] {
        let from_file = json(&workspace, None, arguments);
        assert_eq!(
            json(&workspace, Some(&url), arguments),
            from_file,
            "{arguments:?}"
        );
    }
    // The server refuses this role a plain session: what just worked was encrypted.
    let (_, stderr) = failure(&workspace, &format!("{base}?sslmode=disable"), &["history"]);
    assert!(stderr.contains("no encryption"), "{stderr}");
    // The DNS name in the certificate is checked as well (TLS name localhost, TCP to
    // 127.0.0.1), and the password stays out of what is shown.
    let by_name = url
        .replacen("@127.0.0.1:", &format!(":{PASSWORD}@localhost:"), 1)
        .replacen('?', "?hostaddr=127.0.0.1&", 1);
    let output = run(&workspace, &by_name, &["history", "--limit", "1"]);
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(!shown.contains(PASSWORD), "{shown}");
}

#[test]
fn a_certificate_from_another_ca_is_refused_unless_prefer_falls_back_to_plain() {
    let Some(server) = server("a_certificate_from_another_ca_is_refused_unless_prefer_falls_back")
    else {
        return;
    };
    let workspace = Workspace::new();
    let other = other_ca(workspace.directory.path());
    let url = with_database(&server, "postgres").replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{PASSWORD}@"),
        1,
    );
    for mode in ["verify-full", "verify-ca", "require"] {
        let wrong = format!("{url}?sslmode={mode}&sslrootcert={}", other.display());
        let (code, stderr) = failure(&workspace, &wrong, &["history"]);
        assert_eq!(code, 1, "{stderr}");
        let said = format!(
            "TLS with 127.0.0.1 failed (sslmode {mode}): the server's certificate is not signed \
             by a certificate authority in the certificates in {}",
            other.display()
        );
        assert!(stderr.contains(&said), "{stderr}");
        assert!(
            stderr.contains("hint: check that sslrootcert names the CA"),
            "{stderr}"
        );
    }
    // prefer tries TLS, and after a failed handshake a plain session, as libpq does.
    let prefer = format!("{url}?sslmode=prefer&sslrootcert={}", other.display());
    let output = run(&workspace, &prefer, &["history"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_host_name_the_certificate_does_not_name_is_refused_by_verify_full_only() {
    let Some(server) = server("a_host_name_the_certificate_does_not_name_is_refused") else {
        return;
    };
    let ca = ca_file(&server);
    let workspace = Workspace::new();
    // TCP to 127.0.0.1; `.invalid` names never resolve, and nothing resolves them here.
    let url = with_database(&server, "postgres").replacen("@127.0.0.1:", "@db.example.invalid:", 1);
    let query = format!("hostaddr=127.0.0.1&sslrootcert={}", ca.display());
    let (code, stderr) = failure(
        &workspace,
        &format!("{url}?{query}&sslmode=verify-full"),
        &["history"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "TLS with db.example.invalid failed (sslmode verify-full): the server's certificate \
             is not valid for the host name db.example.invalid (it is for localhost, 127.0.0.1)"
        ),
        "{stderr}"
    );
    let output = run(
        &workspace,
        &format!("{url}?{query}&sslmode=verify-ca"),
        &["history"],
    );
    assert!(
        output.status.success(),
        "verify-ca checks the chain only: {output:?}"
    );
}

#[test]
fn bad_tls_settings_are_bad_input_that_names_the_key() {
    // Both are refused before any connection: the address is never contacted.
    let workspace = Workspace::new();
    let url = format!("postgres://alice:{PASSWORD}@127.0.0.1:9/history");
    let (code, stderr) = failure(&workspace, &format!("{url}?sslmode=bogus"), &["history"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("sslmode \"bogus\" is not a TLS mode: expected disable, prefer"),
        "{stderr}"
    );
    let missing = workspace.path("no-such-ca.pem");
    let (code, stderr) = failure(
        &workspace,
        &format!(
            "{url}?sslmode=verify-full&sslrootcert={}",
            missing.display()
        ),
        &["history"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot read the root certificate file {} (sslrootcert)",
            missing.display()
        )),
        "{stderr}"
    );
    let output = workspace
        .sombrero(&["history"])
        .env("SOMBRERO_HISTORY", &url)
        .env("PGSSLMODE", "on")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("PGSSLMODE \"on\" is not a TLS mode"),
        "{stderr}"
    );
}

/// A server that answers `PostgreSQL`'s TLS request with "N" (no TLS here), as one
/// with `ssl = off` does; `require` must stop there and say why.
#[test]
fn require_refuses_a_server_without_tls() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0_u8; 8];
        stream.read_exact(&mut request).unwrap();
        // Length 8, then the SSLRequest code 80877103.
        assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
        stream.write_all(b"N").unwrap();
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let workspace = Workspace::new();
    let url = format!("postgres://alice:{PASSWORD}@127.0.0.1:{port}/history?sslmode=require");
    let (code, stderr) = failure(&workspace, &url, &["history"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "the server does not accept TLS connections, and sslmode require requires TLS"
        ),
        "{stderr}"
    );
    server.join().unwrap();
}
