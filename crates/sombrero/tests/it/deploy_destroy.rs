//! `destroy` when the graceful shutdown fails: it falls back to a hard stop, then deletes
//! with purge (issue 5: "shutdown with a timeout, stop as fallback").
//!
//! The lab fails exactly the shutdown task: task faults are switched on before `destroy`
//! and off again by a request hook as soon as the shutdown request has been answered (the
//! lab draws a task's fault when it creates the task), so the stop and the delete that
//! follow run normally. Also: on a terminal, `destroy` asks, and "n" changes nothing.

use std::sync::{Arc, Mutex};

use pve::Method;
use pve::metrics::{RequestEvent, RequestHook};
use pve_lab::node::TaskFaults;
use sombrero_core::deploy::{self, DeployEvent, Timeouts};

use super::deploy::{client, deploy_env, desired, lab};

#[tokio::test]
async fn a_failed_shutdown_falls_back_to_stop_then_delete() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    deploy_env(&client(&lab, &lab.token()), &desired)
        .await
        .unwrap();

    let writes: Arc<Mutex<Vec<String>>> = Arc::default();
    let hook: RequestHook = {
        let writes = Arc::clone(&writes);
        let node = lab.node().clone();
        Arc::new(move |event: &RequestEvent| {
            if event.method != Method::Get {
                writes
                    .lock()
                    .unwrap()
                    .push(format!("{:?} {}", event.method, event.path));
            }
            if event.method == Method::Post && event.path.ends_with("/status/shutdown") {
                node.set_task_faults(TaskFaults::default());
            }
        })
    };
    let watched = pve::Client::builder(lab.url())
        .token(lab.token().parse().unwrap())
        .on_request(hook)
        .build()
        .unwrap();
    lab.node().set_task_faults(TaskFaults {
        task_fail: 1.0,
        ..TaskFaults::default()
    });
    let events: Mutex<Vec<String>> = Mutex::default();
    let record = |event: &DeployEvent| events.lock().unwrap().push(format!("{event:?}"));
    let report = deploy::destroy(&watched, &desired, Timeouts::default(), &record)
        .await
        .unwrap();
    assert!(report.deleted);
    assert!(watched.vm_config_opt("lloyd", 152).await.unwrap().is_none());
    let writes = writes.lock().unwrap().clone();
    let position = |suffix: &str| {
        writes
            .iter()
            .position(|write| write.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in {writes:?}"))
    };
    let (shutdown, stop) = (position("/status/shutdown"), position("/status/stop"));
    let delete = writes
        .iter()
        .position(|write| write.starts_with("Delete /nodes/lloyd/qemu/152"))
        .unwrap_or_else(|| panic!("no delete in {writes:?}"));
    assert!(shutdown < stop && stop < delete, "{writes:?}");
    assert!(
        !dir.path().join("outputs").join("staging").exists(),
        "the environment's outputs are removed"
    );
}

/// Runs `sombrero ARGS` on a pseudo-terminal (`script`, util-linux) answering `answer`;
/// `None` when `script` is not installed.
fn on_a_terminal(
    sandbox: &crate::sandbox::Sandbox,
    args: &str,
    answer: &str,
) -> Option<(Option<i32>, String)> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    Command::new("script").arg("--version").output().ok()?;
    let sombrero = assert_cmd::cargo::cargo_bin!("sombrero");
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", sombrero.display()),
            "/dev/null",
        ])
        .current_dir(sandbox.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sandbox.path())
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer.as_bytes()).expect("answer");
    drop(stdin);
    let output = child.wait_with_output().expect("script ends");
    Some((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

#[test]
fn on_a_terminal_destroy_asks_and_no_changes_nothing() {
    let sandbox = crate::sandbox::Sandbox::new().env("SOMBRERO_LAB_TIME_SCALE", "0.02");
    sandbox
        .run(&["deploy", "--lab", "--env", "staging", "--yes"])
        .expect_code(0);
    let Some((code, transcript)) = on_a_terminal(&sandbox, "destroy --lab --env staging", "n\n")
    else {
        pve_lab::testing::skip(
            "on_a_terminal_destroy_asks_and_no_changes_nothing",
            "`script` (util-linux) is not installed; no pseudo-terminal",
        );
        return;
    };
    assert!(
        transcript
            .contains("Destroy VM 152 (jump-man, running) of environment staging on lloyd? [y/N]"),
        "{transcript}"
    );
    assert!(
        transcript.contains("cancelled; nothing was changed"),
        "{transcript}"
    );
    assert_eq!(code, Some(1), "{transcript}");
    let status = sandbox
        .run(&["status", "--lab", "--env", "staging", "--json"])
        .expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["exists"], true, "{status}");

    let (code, transcript) = on_a_terminal(&sandbox, "destroy --lab --env staging", "y\n")
        .expect("script was there a moment ago");
    assert_eq!(code, Some(0), "{transcript}");
    assert!(transcript.contains("Destroyed VM 152"), "{transcript}");
    let status = sandbox
        .run(&["status", "--lab", "--env", "staging", "--json"])
        .expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["exists"], false, "{status}");
}
