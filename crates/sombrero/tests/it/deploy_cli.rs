//! The "Done when", through the real binary: against a separately started
//! `sombrero lab serve --with-template` (HTTPS, realistic task durations), `deploy --env
//! staging --yes` creates VM 152 with `vm_ip` 192.168.10.252 in the outputs, a second deploy
//! reports no changes (and makes no write), and `destroy --env staging --yes` removes it.
//! Also `--lab` on its own, and the confirmation rules without a terminal.

use std::time::Duration;

use serde_json::Value;

use crate::lab_serve::{serve, terminate};
use crate::sandbox::{SSH_KEY, Sandbox};

#[test]
fn deploy_redeploy_and_destroy_against_lab_serve() {
    let (child, ready) = serve(&["--with-template"]);
    let url = ready["url"].as_str().expect("url");
    let sandbox = Sandbox::new()
        .timeout(Duration::from_secs(120))
        .env("TF_VAR_pve_api_url", url)
        .env(
            "TF_VAR_pve_api_token",
            ready["token"].as_str().expect("token"),
        )
        .env(
            "SOMBRERO_PVE_FINGERPRINT",
            ready["fingerprint"].as_str().expect("fingerprint"),
        )
        .env("TF_VAR_ci_ssh_key", SSH_KEY);

    let first = sandbox
        .run(&["deploy", "--env", "staging", "--yes"])
        .expect_code(0);
    assert!(first.stdout.contains("Created. VM 152"), "{}", first.stdout);
    assert!(first.stderr.contains("action: create"), "{}", first.stderr);
    let outputs: Value = serde_json::from_str(
        &std::fs::read_to_string(
            sandbox
                .path()
                .join("deployments/outputs/terraform-outputs.json"),
        )
        .expect("outputs"),
    )
    .expect("json");
    assert_eq!(outputs["vm_ip"], "192.168.10.252");
    assert_eq!(outputs["vm_id"], "152");
    assert_eq!(outputs["environment"], "staging");
    assert!(
        !first
            .stderr
            .contains(ready["token"].as_str().expect("token")),
        "the token never appears in output"
    );

    let second = sandbox
        .run(&["deploy", "--env", "staging", "--yes"])
        .expect_code(0)
        .stderr_has("action: no changes")
        .stderr_has(" 0 writes");
    assert!(
        second.stdout.starts_with("No changes."),
        "{}",
        second.stdout
    );

    let status = sandbox
        .run(&["status", "--env", "staging", "--json"])
        .expect_code(0);
    let status: Value = serde_json::from_str(&status.stdout).expect("status json");
    assert_eq!(status["power"], "running");
    assert_eq!(status["drift"], Value::Array(Vec::new()));

    sandbox
        .run(&["destroy", "--env", "staging"])
        .expect_code(2)
        .stderr_has("--yes");
    // Tearing down needs no SSH public key (decision 078).
    let destroyed = sandbox
        .command(&["destroy", "--env", "staging", "--yes"])
        .env_remove("TF_VAR_ci_ssh_key")
        .output()
        .expect("run destroy");
    let stderr = String::from_utf8_lossy(&destroyed.stderr);
    assert_eq!(destroyed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("delete VM 152"), "{stderr}");
    assert!(!sandbox.path().join("deployments/outputs/staging").exists());
    sandbox
        .run(&["outputs", "--env", "staging"])
        .expect_code(2)
        .stderr_has("sombrero deploy --env staging");
    let history = sandbox.run(&["history", "--json"]).expect_code(0);
    let runs: Value = serde_json::from_str(&history.stdout).expect("history json");
    let commands: Vec<&str> = runs["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .filter_map(|run| run["command"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(commands, ["destroy", "deploy", "deploy"], "{runs}");
    let first_run = runs["runs"][2]["id"].as_str().expect("run id");
    let store = sombrero_core::history::Store::open(sandbox.path().join("deployments/sombrero.db"))
        .expect("history");
    let detail = store.run_detail(Some(first_run)).expect("run detail");
    let phases: Vec<&str> = detail
        .phases
        .iter()
        .map(|phase| phase.name.as_str())
        .collect();
    assert_eq!(
        phases,
        ["plan", "clone", "configure-vm", "start", "outputs"]
    );
    assert!(
        detail
            .phases
            .iter()
            .all(|phase| phase.status.as_str() == "success"),
        "{phases:?}"
    );
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

#[test]
fn lab_flag_deploys_on_a_fresh_machine_and_a_write_needs_confirmation() {
    let sandbox = Sandbox::new()
        .timeout(Duration::from_secs(60))
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02");
    sandbox
        .run(&["deploy", "--lab"])
        .expect_code(2)
        .stderr_has("add --yes");
    let outcome = sandbox
        .run(&["deploy", "--lab", "--yes", "--json"])
        .expect_code(0)
        .stderr_has("placeholder key")
        .stderr_has("skipped SSH check");
    let report: Value = serde_json::from_str(&outcome.stdout).expect("json report");
    assert_eq!(report["plan"]["action"], "create");
    assert_eq!(report["outputs"]["vm_ip"], "192.168.10.250");
    assert_eq!(report["ssh"]["kind"], "skipped");
    let plan = sandbox
        .run(&["plan", "--lab", "--json", "--env", "development"])
        .expect_code(0);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan json");
    assert_eq!(plan["action"], "create");
    assert_eq!(plan["vmid"], 151);
}

#[test]
fn ctrl_c_during_a_deploy_exits_130_and_records_the_run_as_interrupted() {
    let sandbox = Sandbox::new().timeout(Duration::from_secs(60));
    // Realistic durations: the clone alone runs about 6 s.
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("sombrero"))
        .args(["deploy", "--lab", "--yes"])
        .current_dir(sandbox.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sandbox.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sombrero starts");
    std::thread::sleep(Duration::from_millis(2500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("exit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let history = sandbox.run(&["history", "--json"]).expect_code(0);
    let runs: Value = serde_json::from_str(&history.stdout).expect("history json");
    assert_eq!(runs["runs"][0]["status"], "interrupted", "{runs}");
}

#[test]
fn on_a_terminal_deploy_asks_and_draws_one_line_per_step() {
    // `script` (util-linux) runs the command on a pseudo-terminal fed from our stdin.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        pve_lab::testing::skip(
            "on_a_terminal_deploy_asks_and_draws_one_line_per_step",
            "`script` (util-linux) is not installed; no pseudo-terminal",
        );
        return;
    }
    let sandbox = Sandbox::new();
    let sombrero = assert_cmd::cargo::cargo_bin!("sombrero");
    let command_line = format!("{} deploy --lab --env staging", sombrero.display());
    let output = std::process::Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .current_dir(sandbox.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sandbox.path())
        .env("SOMBRERO_LAB_TIME_SCALE", "0.05")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(b"y\n")?;
            drop(stdin);
            child.wait_with_output()
        })
        .expect("script runs");
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{transcript}");
    assert!(transcript.contains("? [y/N]"), "it asked: {transcript}");
    for step in [
        "full clone of template 1001",
        "start VM 152",
        "wait for the guest agent",
    ] {
        let finished = transcript
            .split(['\r', '\n'])
            .any(|line| line.contains(&format!("✓ {step}")) && line.contains("s)"));
        assert!(finished, "a finished line for {step:?}: {transcript}");
    }
    assert!(transcript.contains("Created. VM 152"), "{transcript}");
}
