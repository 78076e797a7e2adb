//! `sombrero verify` and `sombrero diagnose` where no real guest is needed (issue 14):
//! no outputs (exit 2, deploy first), `--lab`'s state-only guests, an unreachable VM
//! (the SSH check fails, every other check is reported as skipped, the results file and
//! the history's `verify` phase are still written), bad `[verify]` limits; diagnose
//! against a lab with a wrong token, a read-only token and a missing template, each
//! named with the runbook's fix, and a bundle without any secret in it.

use serde_json::Value;
use sombrero_core::history::{RunStatus, Store};

use crate::configure_cli::{key_pair, outputs_to_a_closed_port};
use crate::sandbox::{Sandbox, lab_at, pointed_at_lab};

#[test]
fn verify_without_stage_two_outputs_says_to_deploy_first() {
    Sandbox::new()
        .run(&["verify", "--env", "staging"])
        .expect_code(2)
        .stderr_has("environment staging has no stage 2 outputs")
        .stderr_has("sombrero deploy --env ENV");
}

#[test]
fn verify_with_lab_says_it_needs_a_real_guest() {
    Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .run(&["verify", "--lab"])
        .expect_code(2)
        .stderr_has("verify needs a real guest");
}

#[test]
fn an_unreachable_vm_fails_the_ssh_check_and_skips_the_rest() {
    let sandbox = Sandbox::new();
    let key = key_pair(sandbox.path());
    let sandbox = sandbox.env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &key.display().to_string());
    outputs_to_a_closed_port(&sandbox);
    let outcome = sandbox
        .run(&["verify", "--env", "development", "--json"])
        .expect_code(1);
    let report: Value = serde_json::from_str(&outcome.stdout).expect("json on stdout");
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.len() >= 26, "{}", checks.len());
    assert_eq!(checks[0]["name"], "ssh");
    assert_eq!(checks[0]["status"], "fail");
    assert!(
        checks[0]["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("Connection refused")),
        "{}",
        checks[0]
    );
    assert!(checks[1..].iter().all(|check| check["status"] == "skip"));
    assert_eq!(report["failed"], 1);
    let file = sandbox
        .path()
        .join("deployments/outputs/development/verify-results.json");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("results file")).expect("json");
    assert_eq!(written, report, "the file holds what --json printed");
    let store = Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("db");
    let detail = store.run_detail(None).expect("run");
    assert_eq!(detail.run.command, "verify");
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.phases.len(), 1);
    assert_eq!(detail.phases[0].name, "verify");
    assert_eq!(detail.phases[0].status, RunStatus::Failed);
    assert!(
        detail.phases[0]
            .detail
            .as_deref()
            .is_some_and(|text| text.contains("1 check(s) failed: ssh")),
        "{:?}",
        detail.phases[0].detail
    );
}

#[test]
fn bad_verify_limits_name_the_key() {
    let sandbox = Sandbox::replacing(
        "\n[defaults]\n",
        "\n[verify]\ndisk_max_percent = 150\nload_max_per_cpu = -1.0\n\n[defaults]\n",
    );
    sandbox
        .run(&["config", "show"])
        .expect_code(2)
        .stderr_has("verify.disk_max_percent")
        .stderr_has("150 is not a percentage from 1 to 100")
        .stderr_has("verify.load_max_per_cpu");
}

#[test]
fn diagnose_with_a_malformed_token_names_the_variable_and_the_format() {
    let outcome = Sandbox::new()
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:9/api2/json")
        .env("TF_VAR_pve_api_token", "root@pam:lab=do-not-print-me")
        .env("TF_VAR_ci_ssh_key", crate::sandbox::SSH_KEY)
        .run(&["diagnose", "--env", "development"])
        .expect_code(2)
        .stderr_has("TF_VAR_pve_api_token")
        .stderr_has("USER@REALM!TOKENID=SECRET");
    assert!(
        !outcome.stderr.contains("do-not-print-me"),
        "{}",
        outcome.stderr
    );
}

/// `diagnose --json`'s finding for `scenario`.
pub fn finding<'a>(diagnosis: &'a Value, scenario: &str) -> &'a Value {
    diagnosis["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|finding| finding["scenario"] == scenario)
        .unwrap_or_else(|| panic!("no {scenario} finding in {diagnosis}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_names_a_refused_token_a_weak_token_and_a_missing_template() {
    let lab = lab_at(0.05).await;
    let sandbox = pointed_at_lab(&lab);
    let wrong_secret = "00000000-1111-2222-3333-444444444444";
    let readonly = lab.readonly_token();
    let outcomes = tokio::task::spawn_blocking(move || {
        let wrong = sandbox
            .command(&["diagnose", "--env", "development"])
            .env(
                "TF_VAR_pve_api_token",
                format!("root@pam!lab={wrong_secret}"),
            )
            .output()
            .expect("runs");
        let weak = sandbox
            .command(&["diagnose", "--env", "development", "--json"])
            .env("TF_VAR_pve_api_token", &readonly)
            .output()
            .expect("runs");
        let missing = sandbox
            .command(&["diagnose", "--env", "development", "--json"])
            .env("TEMPLATE_ID", "1005")
            .output()
            .expect("runs");
        (wrong, weak, missing)
    })
    .await
    .expect("runs");
    let (wrong, weak, missing) = outcomes;

    let text = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ API authentication: the API refused the credentials (401)"),
        "{text}"
    );
    assert!(
        text.contains("user@realm!tokenid=secret"),
        "the runbook's fix: {text}"
    );
    assert!(text.contains("? template: not looked at"), "{text}");
    let everything = format!("{text}{}", String::from_utf8_lossy(&wrong.stderr));
    assert!(
        !everything.contains(wrong_secret),
        "the secret is never printed"
    );

    assert_eq!(weak.status.code(), Some(1));
    let diagnosis: Value = serde_json::from_slice(&weak.stdout).expect("json");
    let api = finding(&diagnosis, "api-auth");
    assert_eq!(api["status"], "problem", "{api}");
    assert!(
        api["summary"].as_str().is_some_and(|s| s.contains("lacks")),
        "{api}"
    );
    let evidence = api["evidence"].to_string();
    assert!(
        evidence.contains("deploy needs VM.Clone on /vms/1001"),
        "{evidence}"
    );
    assert!(
        !evidence.contains("needs VM.Audit"),
        "the auditor holds VM.Audit: {evidence}"
    );

    assert_eq!(missing.status.code(), Some(1));
    let diagnosis: Value = serde_json::from_slice(&missing.stdout).expect("json");
    assert_eq!(
        finding(&diagnosis, "api-auth")["status"],
        "ok",
        "{diagnosis}"
    );
    let template = finding(&diagnosis, "template");
    assert_eq!(template["status"], "problem");
    assert!(
        template["summary"]
            .as_str()
            .is_some_and(|s| s.contains("template 1005 is not on node")),
        "{template}"
    );
    assert!(
        template["evidence"].to_string().contains("1001"),
        "lists what is there: {template}"
    );
    assert!(
        template["hint"]
            .as_str()
            .is_some_and(|s| s.contains("sombrero build")),
        "{template}"
    );
    // Nothing deployed: the SSH finding says the VM does not exist and how to make it.
    let ssh = finding(&diagnosis, "ssh-timeout");
    assert_eq!(ssh["status"], "problem");
    assert!(
        ssh["summary"]
            .as_str()
            .is_some_and(|s| s.contains("VM 151 does not exist")),
        "{ssh}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundle_holds_the_findings_and_configuration_without_secrets() {
    let lab = lab_at(0.05).await;
    let sandbox = pointed_at_lab(&lab);
    let token = lab.token();
    let secret = token.split('=').nth(1).expect("secret").to_owned();
    let bundle = sandbox.path().join("bundle.tar.gz");
    let path = bundle.clone();
    // The sandbox comes back: dropping it removes the directory the bundle is in.
    let (outcome, _sandbox) = tokio::task::spawn_blocking(move || {
        let outcome = sandbox.run(&[
            "diagnose",
            "--env",
            "development",
            "--bundle",
            &path.display().to_string(),
        ]);
        (outcome, sandbox)
    })
    .await
    .expect("runs");
    let outcome = outcome.expect_code(1).stderr_has("bundle: ");
    assert!(
        outcome.stdout.contains("problem(s) on VM 151"),
        "{}",
        outcome.stdout
    );
    assert!(bundle.is_file(), "{}", outcome.stderr);
    let (listing, contents) = read_bundle(&bundle);
    for name in ["findings.json", "configuration.json"] {
        assert!(
            listing.contains(&format!("sombrero-diagnose/{name}")),
            "{listing}"
        );
    }
    assert!(
        contents.contains("\"scenario\": \"template\""),
        "{contents}"
    );
    assert!(
        !contents.contains(&secret),
        "the token's secret is redacted"
    );
}

/// A bundle's file list and all its files' contents, as `tar` reads them.
pub fn read_bundle(bundle: &std::path::Path) -> (String, String) {
    let run = |flags: &str| {
        let output = std::process::Command::new("tar")
            .arg(flags)
            .arg(bundle)
            .output()
            .expect("tar");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    (run("-tzf"), run("-xzOf"))
}
