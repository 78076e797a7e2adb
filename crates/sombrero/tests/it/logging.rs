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
