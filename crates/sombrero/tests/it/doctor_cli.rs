//! `sombrero doctor` (issue 15, item 3) against an in-process lab: with the full token
//! every cluster check passes; with the read-only token the privileges each stage lacks
//! are listed per stage (exit 1); a template that is not built yet is a warning naming
//! `sombrero build`; without an API URL the API line fails with the variable to set.

use serde_json::Value;

use crate::sandbox::{Sandbox, lab_at, pointed_at_lab};

/// Exit code and the `--json` lines of a run.
fn output_of(mut command: assert_cmd::Command) -> (Option<i32>, Value) {
    let output = command.output().expect("runs");
    let lines = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), lines)
}

fn line<'a>(lines: &'a Value, name: &str) -> &'a Value {
    lines
        .as_array()
        .expect("lines")
        .iter()
        .find(|line| line["name"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {lines:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_checks_the_cluster_and_lists_missing_privileges_per_stage() {
    let lab = lab_at(0.05).await;
    let sandbox = pointed_at_lab(&lab);
    let readonly = lab.readonly_token();
    let (full, weak, unbuilt) = tokio::task::spawn_blocking(move || {
        let key = crate::configure_cli::key_pair(sandbox.path());
        let sandbox = sandbox.env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &key.display().to_string());
        let full = sandbox.command(&["doctor", "--env", "development", "--json"]);
        let full = output_of(full);
        let mut weak = sandbox.command(&["doctor", "--env", "development", "--json"]);
        weak.env("TF_VAR_pve_api_token", &readonly);
        let weak = output_of(weak);
        let mut unbuilt = sandbox.command(&["doctor", "--env", "development", "--json"]);
        unbuilt.env("TEMPLATE_ID", "1009");
        let unbuilt = output_of(unbuilt);
        (full, weak, unbuilt)
    })
    .await
    .expect("runs");

    let (code, lines) = full;
    for name in [
        "ssh",
        "api",
        "privileges (build)",
        "privileges (deploy)",
        "node",
        "storage",
        "bridge",
        "template",
        "address",
        "ssh key",
    ] {
        assert_eq!(line(&lines, name)["level"], "ok", "{name}: {lines:#}");
    }
    assert_eq!(
        line(&lines, "tls")["level"],
        "warn",
        "the test lab is plain http"
    );
    assert!(
        line(&lines, "storage")["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("GiB free")),
        "{lines:#}"
    );
    let fails = lines
        .as_array()
        .expect("lines")
        .iter()
        .filter(|line| line["level"] == "fail")
        .count();
    assert_eq!(code, Some(i32::from(fails > 0)), "{lines:#}");

    let (code, lines) = weak;
    assert_eq!(code, Some(1), "{lines:#}");
    let deploy = line(&lines, "privileges (deploy)");
    assert_eq!(deploy["level"], "fail");
    let detail = deploy["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("VM.Clone on /vms/1001"), "{detail}");
    assert!(
        !detail.contains("VM.Audit"),
        "the auditor holds VM.Audit: {detail}"
    );
    assert!(
        deploy["hint"]
            .as_str()
            .is_some_and(|hint| hint.contains("root@pam!readonly")),
        "{deploy}"
    );
    assert_eq!(line(&lines, "privileges (build)")["level"], "fail");

    let (_, lines) = unbuilt;
    let template = line(&lines, "template");
    assert_eq!(template["level"], "warn", "{template}");
    assert!(
        template["hint"].to_string().contains("sombrero build"),
        "{template}"
    );
}

#[test]
fn doctor_without_an_api_url_fails_the_api_line() {
    let outcome = Sandbox::new()
        .env("TF_VAR_ci_ssh_key", crate::sandbox::SSH_KEY)
        .run(&["doctor", "--env", "development"])
        .expect_code(1);
    assert!(outcome.stdout.contains("✗ api"), "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains("TF_VAR_pve_api_url"),
        "{}",
        outcome.stdout
    );
}
