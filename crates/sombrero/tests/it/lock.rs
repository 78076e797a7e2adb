//! One writer per environment (docs/reliability.md): a second `deploy`/`destroy` of the
//! same environment on the same cluster, from another project directory, is refused at
//! once naming the first; readers never wait; a lock left by a killed run is taken over
//! and the takeover is said.

use std::path::Path;
use std::time::{Duration, Instant};

use pve_lab::{Lab, LabHandle, LabOptions};
use sombrero_core::lock::{Holder, LockScope};

use crate::sandbox::{Outcome, Sandbox, lab_at, pointed_at_lab};

/// A project directory pointed at `lab`, keeping its locks in `state` (shared by the
/// directories of one "machine").
fn project(lab: &LabHandle, state: &Path) -> Sandbox {
    pointed_at_lab(lab).env("XDG_STATE_HOME", &state.display().to_string())
}

fn locks_dir(state: &Path) -> std::path::PathBuf {
    state.join("sombrero/locks")
}

/// Waits until some lock file under `state` holds a description (a writer started).
fn wait_for_a_holder(state: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let held = std::fs::read_dir(locks_dir(state))
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| std::fs::metadata(entry.path()).is_ok_and(|meta| meta.len() > 0));
        if held {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no writer took a lock within 30 s");
}

fn finish(child: std::process::Child) -> Outcome {
    let output = child.wait_with_output().expect("wait");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_writer_from_another_directory_is_refused_naming_the_first() {
    let lab = lab_at(0.5).await;
    let state = tempfile::tempdir().expect("state directory");
    let first = project(&lab, state.path());
    let second = project(&lab, state.path());
    let deploying = first.spawn(&["deploy", "--yes"]);
    let pid = deploying.id();
    wait_for_a_holder(state.path());

    let refused = second.run(&["destroy", "--yes"]).expect_code(1);
    assert!(
        refused.stderr.contains(&format!(
            "error: environment production is locked by sombrero deploy (pid {pid} on host "
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("hint: wait until that run ends"));
    second
        .run(&["deploy", "--yes"])
        .expect_code(1)
        .stderr_has("is locked by sombrero deploy");
    // Readers never take the lock: they answer while the deploy runs (what they say of a
    // VM that is being cloned is the reliability issue's business, not the lock's).
    for reader in [&["status"][..], &["plan"], &["config", "show"]] {
        let outcome = second.run(reader);
        assert!(
            !outcome.stderr.contains("locked by"),
            "{reader:?}: {}",
            outcome.stderr
        );
        assert!(outcome.code.is_some(), "{reader:?} finished");
    }

    let deployed = finish(deploying).expect_code(0);
    assert!(
        deployed.stdout.contains("Created. VM 150"),
        "{}",
        deployed.stdout
    );
    // The end state is the one the finishing command reported, and the lock is free.
    let status = second.run(&["status", "--json"]).expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(status["exists"], true, "{status}");
    second.run(&["destroy", "--yes"]).expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_left_by_a_killed_run_is_taken_over_and_said() {
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    let lab = Lab::start(options).await.expect("lab starts");
    let state = tempfile::tempdir().expect("state directory");
    // The scope sombrero computes: the resolved (normalized) API URL and the environment.
    let scope = LockScope {
        endpoint: sombrero_core::settings::values::parse_api_url(lab.url())
            .expect("url")
            .to_string(),
        environment: "staging".to_owned(),
    };
    // What a SIGKILLed `deploy` leaves: its description in the file, no OS lock.
    let killed = Holder {
        pid: 4_194_000,
        host: "elsewhere".to_owned(),
        user: "alice".to_owned(),
        command: "deploy".to_owned(),
        since: "2026-12-04T15:36:17Z".to_owned(),
    };
    let directory = locks_dir(state.path());
    std::fs::create_dir_all(&directory).expect("locks directory");
    std::fs::write(
        directory.join(format!("{}.lock", scope.key())),
        serde_json::to_vec(&killed).expect("json"),
    )
    .expect("write");
    let outcome = project(&lab, state.path())
        .run(&["deploy", "--env", "staging", "--yes"])
        .expect_code(0);
    assert!(
        outcome.stderr.contains(
            "warning: took over the lock of environment staging from sombrero deploy (pid 4194000 on host elsewhere by alice"
        ),
        "{}",
        outcome.stderr
    );
}

/// `--lab` runs of one project contend for their lab (its state directory), from the very
/// first run (before the directory exists), and a refused run does not start a lab.
#[test]
fn lab_runs_of_one_project_contend_from_the_first_run() {
    let sandbox = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.5")
        .timeout(Duration::from_secs(120));
    assert!(!sandbox.path().join("deployments/lab").exists());
    let deploying = sandbox.spawn(&["--lab", "deploy", "--yes"]);
    wait_for_a_holder(&sandbox.path().join(".local/state"));
    let refused = sandbox.run(&["--lab", "destroy", "--yes"]).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("environment production is locked by sombrero deploy"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("in-process Proxmox VE API"),
        "{}",
        refused.stderr
    );
    finish(deploying).expect_code(0);
    sandbox.run(&["--lab", "destroy", "--yes"]).expect_code(0);
}
