//! `sombrero api`: raw calls through the typed client against a real `sombrero lab serve`
//! child process, configured only by the runbook's variables and the printed fingerprint.

use serde_json::Value;

use crate::lab_serve::{lab_faults, serve, terminate};
use crate::sandbox::Sandbox;
use crate::snapshot::sombrero_snapshot;

/// A sandbox whose environment points at the lab that `ready` describes (HTTPS, pinned).
fn pointed_at(ready: &Value) -> Sandbox {
    Sandbox::new()
        .env("TF_VAR_pve_api_url", ready["url"].as_str().expect("url"))
        .env(
            "TF_VAR_pve_api_token",
            ready["token"].as_str().expect("token"),
        )
        .env(
            "SOMBRERO_PVE_FINGERPRINT",
            ready["fingerprint"].as_str().expect("fingerprint"),
        )
        .env("SOMBRERO_RETRY_DELAY_MS", "0")
}

const FAULTS: &str = "http5xx=0.2,reset=0.05,seed=11";

/// Runs `sombrero api get /cluster/resources` 20 times; every run must succeed.
fn twenty_of_twenty(sandbox: &Sandbox) {
    for attempt in 1..=20 {
        let outcome = sandbox.run(&["api", "get", "/cluster/resources", "--json"]);
        assert_eq!(
            outcome.code,
            Some(0),
            "attempt {attempt}: stderr:\n{}",
            outcome.stderr
        );
        let data: Value = serde_json::from_str(&outcome.stdout).expect("JSON data");
        let resources = data.as_array().expect("a list");
        assert!(
            resources
                .iter()
                .any(|resource| resource["vmid"] == 1001 && resource["template"] == 1),
            "attempt {attempt}: template 1001 missing from {data}"
        );
    }
}

/// The issue's "done when", against the lab as users start it (HTTPS, pinned).
#[test]
fn cluster_resources_succeed_twenty_of_twenty_under_twenty_percent_faults() {
    let (child, ready) = serve(&["--guests", "state", "--with-template", "--faults", FAULTS]);
    twenty_of_twenty(&pointed_at(&ready));
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

/// The same calls with the same seed over plain HTTP, where the test can read
/// `GET /lab/faults` afterwards: faults really were injected while the 20 calls ran, so
/// without retries in the client some of them would have failed.
#[test]
fn the_twenty_calls_really_met_injected_faults() {
    let (child, ready) = serve(&[
        "--plain-http",
        "--guests",
        "state",
        "--with-template",
        "--faults",
        FAULTS,
    ]);
    let url = ready["url"].as_str().expect("url");
    let token = ready["token"].as_str().expect("token");
    let sandbox = Sandbox::new()
        .env("TF_VAR_pve_api_url", url)
        .env("TF_VAR_pve_api_token", token)
        .env("SOMBRERO_RETRY_DELAY_MS", "0");
    twenty_of_twenty(&sandbox);
    let injected = lab_faults(url, token)["injected"].clone();
    let faults =
        injected["http5xx"].as_u64().expect("count") + injected["reset"].as_u64().expect("count");
    assert!(
        faults >= 3,
        "the lab injected too few faults for this test to show anything: {injected}"
    );
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

#[test]
fn api_errors_exit_one_with_the_reason_and_bad_input_exits_two() {
    let (child, ready) = serve(&[]);
    let sandbox = pointed_at(&ready);
    // The error names the request and the VM, and the API failure exits 1.
    sombrero_snapshot!(sandbox, &["api", "get", "/nodes/lloyd/qemu/4242/config"], @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: GET /nodes/lloyd/qemu/4242/config: 500 Configuration file 'nodes/lloyd/qemu-server/4242.conf' does not exist
    ");
    // A bad method is bad input: exit 2.
    sombrero_snapshot!(sandbox, &["api", "frobnicate", "/version"], @r#"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: "frobnicate" is not one of GET, POST, PUT, DELETE

    hint: use get, post, put or delete (pvesh's create and set work too)
    "#);
    // A pin mismatch is named, with both fingerprints (filtered: the lab's changes on
    // every start).
    let wrong_pin = pointed_at(&ready).env("SOMBRERO_PVE_FINGERPRINT", &["AB"; 32].join(":"));
    sombrero_snapshot!(wrong_pin, &["api", "get", "/version"], @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: TLS handshake with https://127.0.0.1:[PORT]/api2/json failed: the server's certificate fingerprint [FINGERPRINT] is not the pinned [FINGERPRINT]

    Caused by:
      error sending request for url (https://127.0.0.1:[PORT]/api2/json/version)
      client error (Connect)
      invalid peer certificate: Other(OtherError(the server's certificate fingerprint [FINGERPRINT] is not the pinned [FINGERPRINT]))

    hint: the node's certificate changed, or this is not your node: compare the pinned fingerprint (SOMBRERO_PVE_FINGERPRINT, api.fingerprint) with `pvenode cert info` on the node before pinning the new one
    ");
    // Nothing pinned and a self-signed node: "not trusted", never "not the one
    // configured", with the server's own fingerprint and the setting that pins it.
    let unpinned = Sandbox::new()
        .env("TF_VAR_pve_api_url", ready["url"].as_str().expect("url"))
        .env(
            "TF_VAR_pve_api_token",
            ready["token"].as_str().expect("token"),
        );
    let outcome = unpinned.run(&["api", "get", "/version"]).expect_code(1);
    let served = ready["fingerprint"].as_str().expect("fingerprint");
    assert!(
        outcome.stderr.contains("the server's certificate is not trusted")
            && outcome
                .stderr
                .contains(&format!("hint: if this is your node (compare with `pvenode cert info` on it, or what `sombrero lab serve` printed), pin its certificate: SOMBRERO_PVE_FINGERPRINT={served}")),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("pinned"), "{}", outcome.stderr);
    // A server that does not speak TLS at all is named as such.
    let (plain, plain_ready) = serve(&["--plain-http"]);
    let https = plain_ready["url"]
        .as_str()
        .expect("url")
        .replacen("http://", "https://", 1);
    let outcome = Sandbox::new()
        .env("TF_VAR_pve_api_url", &https)
        .env(
            "TF_VAR_pve_api_token",
            plain_ready["token"].as_str().expect("token"),
        )
        .run(&["api", "get", "/version"])
        .expect_code(1);
    assert!(
        outcome.stderr.contains("the server does not speak TLS")
            && outcome
                .stderr
                .contains("hint: check the API URL's scheme and port"),
        "{}",
        outcome.stderr
    );
    terminate(plain);
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

/// A raw write whose answer is lost is not sent again: the clone may be running, and only
/// the user can tell whether to repeat it. With `lost=1` every answer is dropped, so a
/// retry would show as a second lost answer in the lab's count.
#[test]
fn a_raw_write_whose_answer_was_lost_is_sent_once_and_reported() {
    let (child, ready) = serve(&[
        "--plain-http",
        "--guests",
        "state",
        "--with-template",
        "--faults",
        "lost=1,seed=1",
    ]);
    let url = ready["url"].as_str().expect("url");
    let token = ready["token"].as_str().expect("token");
    let sandbox = Sandbox::new()
        .env("TF_VAR_pve_api_url", url)
        .env("TF_VAR_pve_api_token", token)
        .env("SOMBRERO_RETRY_DELAY_MS", "0");
    let outcome = sandbox.run(&[
        "api",
        "post",
        "/nodes/lloyd/qemu/1001/clone",
        "newid=150",
        "name=once",
    ]);
    // Not a snapshot: how the dropped connection surfaces (reset or closed early, and
    // the OS error number) depends on timing and platform.
    assert_eq!(outcome.code, Some(1), "stderr:\n{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("/nodes/lloyd/qemu/1001/clone")
            && outcome.stderr.contains("may have reached the server"),
        "the error names the request and the doubt:\n{}",
        outcome.stderr
    );
    let injected = lab_faults(url, token)["injected"].clone();
    assert_eq!(injected["lost"], 1, "sent exactly once: {injected}");
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}
