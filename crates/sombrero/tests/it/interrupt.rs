//! The reproduction through the binary: `deploy --yes`, Ctrl-C (SIGINT) while the
//! clone runs, `deploy --yes` again. The interrupted run exits 130 and is recorded as
//! interrupted; the re-run finishes the environment instead of calling the half-made VM
//! foreign; `destroy` after an interrupted clone works the same way.

use std::time::{Duration, Instant};

use pve_lab::LabHandle;

use crate::sandbox::{Outcome, Sandbox, lab_at, pointed_at_lab};

/// Starts `sombrero deploy --env staging --yes` and interrupts it (SIGINT) once VM 152
/// exists, that is while its clone runs.
async fn interrupted(sandbox: &Sandbox, lab: &LabHandle) -> Outcome {
    let client = pve::Client::builder(lab.url())
        .token(lab.token().parse().expect("token"))
        .build()
        .expect("client");
    let child = sandbox.spawn(&["deploy", "--env", "staging", "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .vm_config_opt("lloyd", 152)
        .await
        .expect("read")
        .is_none()
    {
        assert!(Instant::now() < deadline, "the clone never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    let config = client.vm_config("lloyd", 152).await.expect("VM 152");
    assert_eq!(
        config.lock().as_deref(),
        Some("clone"),
        "interrupted mid-clone"
    );
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_interrupted_mid_clone_is_finished_by_the_rerun() {
    let lab = lab_at(0.5).await;
    let sandbox = pointed_at_lab(&lab);
    interrupted(&sandbox, &lab)
        .await
        .expect_code(130)
        .stderr_has("run the command again to continue from where it stopped");
    let rerun = sandbox
        .run(&["deploy", "--env", "staging", "--yes"])
        .expect_code(0);
    assert!(!rerun.stderr.contains("not managed"), "{}", rerun.stderr);
    sandbox
        .run(&["deploy", "--env", "staging", "--yes"])
        .expect_code(0)
        .stderr_has("action: no changes");
    let history = sandbox.run(&["history", "--json"]).expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    let statuses: Vec<&str> = history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|run| run["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["success", "success", "interrupted"], "{history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_after_a_deploy_interrupted_mid_clone_deletes_the_vm() {
    let lab = lab_at(0.5).await;
    let sandbox = pointed_at_lab(&lab);
    interrupted(&sandbox, &lab).await.expect_code(130);
    sandbox
        .run(&["destroy", "--env", "staging", "--yes"])
        .expect_code(0);
    let status = sandbox
        .run(&["status", "--env", "staging", "--json"])
        .expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(status["exists"], false, "{status}");
}
