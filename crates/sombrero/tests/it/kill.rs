//! Killed at every step: `deploy` and `destroy` are stopped (SIGINT, then SIGKILL) as each
//! step begins (clone, config, resize, start, agent wait, host key, outputs; shutdown,
//! delete, outputs), and a single re-run converges. The killed run is in the history as
//! `interrupted` (SIGKILL: marked when the history is next opened).

use std::io::{BufRead as _, BufReader};
use std::process::Child;

use crate::sandbox::{Sandbox, lab_at, pointed_at_lab};

const DEPLOY_STEPS: [&str; 7] = [
    "→ full clone",
    "→ one config update",
    "→ grow",
    "→ start VM",
    "→ wait for the guest agent",
    "→ read /etc/ssh",
    "→ write the stage outputs",
];
const DESTROY_STEPS: [&str; 3] = ["→ shut down", "→ delete VM", "→ remove the environment"];

/// Sends `signal` to the child as soon as its progress shows `step` starting (or lets it
/// end, when it never does); returns what it wrote and whether it ended before the signal
/// could stop it (a short step may finish first).
fn kill_at(mut child: Child, step: &str, signal: &str) -> (String, bool) {
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with(step) {
            let _ = std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            break;
        }
    }
    let finished = child.wait().is_ok_and(|status| status.success());
    (seen, finished)
}

fn statuses(sandbox: &Sandbox) -> Vec<String> {
    let history = sandbox.run(&["history", "--json"]).expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    history["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|run| format!("{} {}", run["command"], run["status"]).replace('"', ""))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_every_step_a_single_rerun_converges() {
    let lab = lab_at(0.2).await;
    let mut interrupted = 0;
    for signal in ["-INT", "-KILL"] {
        for step in DEPLOY_STEPS {
            let sandbox = pointed_at_lab(&lab);
            let child = sandbox.spawn(&["deploy", "--env", "staging", "--yes"]);
            let (seen, finished) = kill_at(child, step, signal);
            assert!(
                seen.contains(step),
                "{signal} {step}: the step never began:\n{seen}"
            );
            let rerun = sandbox.run(&["deploy", "--env", "staging", "--yes"]);
            assert_eq!(
                rerun.code,
                Some(0),
                "{signal} at {step:?}: re-run:\n{}",
                rerun.stderr
            );
            // A short step may end the run before the signal lands (then it succeeded);
            // otherwise the history says interrupted, never running or failed.
            let history = statuses(&sandbox);
            assert_eq!(history[0], "deploy success", "{signal} at {step:?}");
            assert!(
                history[1] == "deploy interrupted" || (history[1] == "deploy success"),
                "{signal} at {step:?}: {history:?}"
            );
            if history[1] == "deploy interrupted" {
                interrupted += 1;
            } else {
                assert!(
                    !matches!(step, "→ full clone" | "→ wait for the guest agent"),
                    "{signal} at {step:?}: a long step cannot end first: {history:?} ({finished})"
                );
            }

            let child = sandbox.spawn(&["destroy", "--env", "staging", "--yes"]);
            let destroy_step = DESTROY_STEPS[DEPLOY_STEPS
                .iter()
                .position(|each| *each == step)
                .unwrap_or(0)
                % DESTROY_STEPS.len()];
            kill_at(child, destroy_step, signal);
            let rerun = sandbox.run(&["destroy", "--env", "staging", "--yes"]);
            assert_eq!(
                rerun.code,
                Some(0),
                "{signal} at {destroy_step:?}: re-run:\n{}",
                rerun.stderr
            );
            let status = sandbox.run(&["status", "--env", "staging", "--json"]);
            let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
            assert_eq!(
                status["exists"], false,
                "{signal} at {destroy_step:?}: {status}"
            );
        }
    }
    // Most kills land inside their step (the long ones always do).
    assert!(
        interrupted >= 6,
        "only {interrupted} of 14 runs were interrupted"
    );
}
