//! The libraries' own messages reach the user, and `-v` levels show what they promise
//! (docs/configuration.md, "Verbosity"): warnings at default verbosity, every API request
//! at `-vv`, request parameters at `-vvv`, never a secret.

use std::time::Duration;

use crate::lab_serve::{serve, terminate};
use crate::sandbox::Sandbox;

/// The insecure-TLS warning of the client (a tracing event in `pve`, the only place that
/// says who can read the token) is printed.
#[test]
fn insecure_tls_prints_the_clients_warning() {
    let (child, ready) = serve(&["--guests", "state", "--with-template"]);
    let outcome = Sandbox::new()
        .env("TF_VAR_pve_api_url", ready["url"].as_str().expect("url"))
        .env(
            "TF_VAR_pve_api_token",
            ready["token"].as_str().expect("token"),
        )
        .env("TF_VAR_proxmox_insecure", "true")
        .run(&["api", "get", "/version"])
        .expect_code(0);
    terminate(child);
    assert!(
        outcome.stderr.lines().any(|line| line
            .starts_with("warning: TLS certificate verification is disabled")
            && line.contains("anyone on the path can read the API token")),
        "stderr:\n{}",
        outcome.stderr
    );
    // Once, not once from the binary and once from the library.
    assert_eq!(
        outcome.stderr.matches("verification is disabled").count(),
        1
    );
}

/// A lab that cannot write its state file says so (the lab's tracing error), and the
/// command still completes. As root a read-only directory does not stop a write, so the
/// lab's temporary state file is made a directory instead.
#[test]
fn a_lab_that_cannot_save_its_state_says_so() {
    let sandbox = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .timeout(Duration::from_secs(120));
    let blocked = sandbox.path().join("deployments/lab/node-state.json.tmp");
    std::fs::create_dir_all(&blocked).expect("a directory where the lab writes its state");
    let outcome = sandbox.run(&["--lab", "deploy", "--yes"]).expect_code(0);
    assert!(
        outcome.stderr.contains("error: cannot save the lab state"),
        "stderr:\n{}",
        outcome.stderr
    );
    // The line names the file it could not write.
    assert!(
        outcome.stderr.contains("deployments/lab/node-state.json"),
        "stderr:\n{}",
        outcome.stderr
    );
}

/// The issue's "done when": `-vv --lab deploy` shows each API call as sent and as
/// answered, with its status and duration; without `-v` none of that is shown.
#[test]
fn double_v_shows_every_api_call_with_status_and_duration() {
    let sandbox = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .timeout(Duration::from_secs(120));
    let outcome = sandbox
        .run(&["-vv", "--lab", "deploy", "--yes"])
        .expect_code(0);
    let answered = regex::Regex::new(
        r"(?m)^debug: \[pve::client\] (GET|POST|PUT|DELETE) /\S+ -> (\d{3}) in \d+ ms attempt=\d+$",
    )
    .expect("regex");
    let calls: Vec<(String, String)> = answered
        .captures_iter(&outcome.stderr)
        .map(|captures| (captures[1].to_owned(), captures[2].to_owned()))
        .collect();
    assert!(
        calls
            .iter()
            .any(|(method, status)| method == "POST" && status == "200"),
        "the clone is shown answered:\n{}",
        outcome.stderr
    );
    // Every request sent is answered in the log: as many "sent" lines as answers.
    let sent =
        regex::Regex::new(r"(?m)^debug: \[pve::client\] (GET|POST|PUT|DELETE) /\S+ attempt=\d+$")
            .expect("regex")
            .find_iter(&outcome.stderr)
            .count();
    assert_eq!(sent, calls.len(), "{}", outcome.stderr);
    assert!(calls.len() >= 15, "a deploy sends more requests: {calls:?}");

    let quiet = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .timeout(Duration::from_secs(120))
        .run(&["--lab", "deploy", "--yes"])
        .expect_code(0);
    assert!(!quiet.stderr.contains("[pve::client]"), "{}", quiet.stderr);
}

/// `-vvv` adds every request's parameters, and neither the token's secret nor the
/// password appears anywhere in the output, with either kind of login.
#[test]
fn triple_v_shows_parameters_but_never_a_secret() {
    let (child, ready) = serve(&["--guests", "state", "--with-template"]);
    let token = ready["token"].as_str().expect("token");
    let secret = token.split_once('=').expect("USER@REALM!ID=SECRET").1;
    let password = ready["password"].as_str().expect("password");
    let base = || {
        Sandbox::new()
            .env("TF_VAR_pve_api_url", ready["url"].as_str().expect("url"))
            .env(
                "SOMBRERO_PVE_FINGERPRINT",
                ready["fingerprint"].as_str().expect("fingerprint"),
            )
            .env("TF_VAR_ci_ssh_key", crate::sandbox::SSH_KEY)
            .timeout(Duration::from_secs(180))
    };
    let with_token = base()
        .env("TF_VAR_pve_api_token", token)
        .run(&["-vvv", "deploy", "--env", "staging", "--yes"])
        .expect_code(0);
    let with_password = base()
        .env("PKR_VAR_proxmox_username", "root@pam")
        .env("PKR_VAR_proxmox_password", password)
        .run(&["-vvv", "destroy", "--env", "staging", "--yes"])
        .expect_code(0);
    terminate(child);
    for outcome in [&with_token, &with_password] {
        let all = format!("{}\n{}", outcome.stdout, outcome.stderr);
        assert!(!all.contains(secret), "the token's secret leaked:\n{all}");
        assert!(!all.contains(password), "the password leaked:\n{all}");
    }
    assert!(
        with_token
            .stderr
            .contains("POST /nodes/lloyd/qemu/1001/clone parameters attempt=1 params="),
        "{}",
        with_token.stderr
    );
    assert!(
        with_token.stderr.contains("(\"newid\", \"152\")"),
        "{}",
        with_token.stderr
    );
    // The login itself is traced, its password redacted.
    assert!(
        with_password
            .stderr
            .contains("POST /access/ticket parameters attempt=1"),
        "{}",
        with_password.stderr
    );
    assert!(
        with_password.stderr.contains("[redacted]"),
        "{}",
        with_password.stderr
    );
}
