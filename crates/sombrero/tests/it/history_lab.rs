//! The history issue's "Done when" through the real binary and the in-process lab: a few
//! `deploy --lab` / `destroy --lab` runs, one of them failing (a template that does not
//! exist), then `sombrero metrics --json` must agree with what was recorded (the deploy
//! runs by default, every run with `--command all`), and the checklist must carry the
//! phase times the runs really took.
//!
//! Why expectations are computed here from the stored rows (read with the store's plain
//! row readers, not its aggregates) by sorting: a metrics bug must not be able to agree
//! with itself. `SOMBRERO_HISTORY` points the database somewhere other than the default, so
//! this also checks that recording and reading commands resolve the same path.

use std::time::Duration;

use serde_json::Value;
use sombrero_core::history::{RunDetail, RunStatus, Store};

use crate::sandbox::{Outcome, Sandbox};

const HISTORY: &str = "state/history.db";
const DEFAULT_HISTORY: &str = "deployments/sombrero.db";

fn json(outcome: &Outcome) -> Value {
    serde_json::from_str(&outcome.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}):\n{}\n{}",
            outcome.stdout, outcome.stderr
        )
    })
}

fn sorted(mut values: Vec<i64>) -> Vec<i64> {
    values.sort_unstable();
    values
}

fn nearest_rank(sorted: &[i64], percent: usize) -> i64 {
    sorted[(sorted.len() * percent).div_ceil(100).max(1) - 1]
}

fn recorded(sandbox: &Sandbox, database: &str) -> Vec<RunDetail> {
    let store = Store::open_existing(sandbox.path().join(database)).unwrap();
    let runs = store.runs(None, None).unwrap();
    runs.iter()
        .map(|run| store.run_detail(Some(&run.id)).unwrap())
        .collect()
}

#[test]
fn lab_runs_give_metrics_and_a_checklist_that_match_the_record() {
    let sandbox = Sandbox::new()
        .timeout(Duration::from_secs(120))
        .env("SOMBRERO_LAB_TIME_SCALE", "0.05")
        .env("SOMBRERO_HISTORY", HISTORY);
    for args in [
        &["deploy", "--lab", "--yes"][..],
        &["deploy", "--lab", "--yes", "--env", "staging"],
        &["destroy", "--lab", "--yes"],
    ] {
        sandbox.run(args).expect_code(0);
    }
    // A deploy that fails in its plan phase: the template does not exist on the node.
    let failing = sandbox
        .run(&["deploy", "--lab", "--yes", "--template", "999"])
        .expect_code(1);
    assert!(failing.stderr.contains("999"), "{}", failing.stderr);
    sandbox.run(&["deploy", "--lab", "--yes"]).expect_code(0);
    assert!(
        !sandbox.path().join(DEFAULT_HISTORY).exists(),
        "SOMBRERO_HISTORY is honoured by the recording commands"
    );

    let details = recorded(&sandbox, HISTORY);
    let commands: Vec<&str> = details.iter().map(|d| d.run.command.as_str()).collect();
    assert_eq!(
        commands,
        ["deploy", "deploy", "destroy", "deploy", "deploy"],
        "newest first"
    );
    let failed = &details[1];
    assert_eq!(failed.run.status, RunStatus::Failed);
    let error = failed.run.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("999"),
        "the failed run keeps its error: {error}"
    );
    assert_eq!(failed.phases.len(), 1, "{:?}", failed.phases);
    assert_eq!(failed.phases[0].name, "plan");
    assert_eq!(failed.phases[0].status, RunStatus::Failed);
    assert!(!details[2].phases.is_empty(), "destroy records its phases");
    // The sandbox clears USER/LOGNAME (like cron or a systemd unit): the operator is still
    // the account running sombrero, not "unknown".
    let account = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    for detail in &details {
        assert!(detail.run.duration_ms.is_some(), "{:?}", detail.run);
        assert!(detail.run.vm_id.is_some(), "{:?}", detail.run);
        if !account.is_empty() {
            assert_eq!(detail.run.operator, account, "{:?}", detail.run);
        }
    }
    let clone = details[0]
        .phases
        .iter()
        .find(|phase| phase.name == "clone")
        .expect("a clone phase");
    // The lab's clone takes about 6 s, scaled by 0.05: a real, non-zero time.
    assert!(clone.duration_ms.unwrap() >= 100, "{clone:?}");

    // By default the metrics count deployments: the four deploy runs, not the destroy.
    let deployments = json(&sandbox.run(&["metrics", "--json"]).expect_code(0));
    assert_eq!(deployments["total_runs"], 4);
    assert_eq!(deployments["failed"], 1);
    assert_eq!(deployments["scope"], "runs of up and deploy");
    let deploy_ok = details
        .iter()
        .filter(|d| d.run.command == "deploy" && d.run.status == RunStatus::Success);
    assert_eq!(
        deployments["duration"]["fastest_ms"],
        deploy_ok.filter_map(|d| d.run.duration_ms).min().unwrap()
    );

    // Every recorded run with `--command all`, checked against the stored rows.
    let metrics = json(
        &sandbox
            .run(&["metrics", "--command", "all", "--json"])
            .expect_code(0),
    );
    assert_eq!(metrics["commands"], Value::Null);
    let successes: Vec<&RunDetail> = details
        .iter()
        .filter(|d| d.run.status == RunStatus::Success)
        .collect();
    assert_eq!(successes.len(), 4);
    assert_eq!(metrics["total_runs"], details.len());
    assert_eq!(metrics["succeeded"], successes.len());
    assert_eq!(metrics["failed"], 1);
    let rate = metrics["success_rate"].as_f64().unwrap();
    assert!((rate - 0.8).abs() < 1e-9, "{rate}");
    let durations = sorted(
        successes
            .iter()
            .map(|d| d.run.duration_ms.unwrap())
            .collect(),
    );
    let duration = &metrics["duration"];
    assert_eq!(duration["average_ms"], durations.iter().sum::<i64>() / 4);
    assert_eq!(
        duration["median_ms"],
        i64::midpoint(durations[1], durations[2])
    );
    assert_eq!(duration["fastest_ms"], durations[0]);
    assert_eq!(duration["slowest_ms"], durations[3]);

    let phases = metrics["phases"].as_array().unwrap();
    let mut names: Vec<&str> = details
        .iter()
        .flat_map(|d| d.phases.iter().map(|phase| phase.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(
        names.contains(&"clone") && names.contains(&"plan"),
        "{names:?}"
    );
    for name in names {
        let shown = phases
            .iter()
            .find(|phase| phase["name"] == name)
            .unwrap_or_else(|| panic!("phase {name} in {phases:?}"));
        let all: Vec<_> = details
            .iter()
            .flat_map(|d| d.phases.iter())
            .filter(|phase| phase.name == name)
            .collect();
        let ok = sorted(
            all.iter()
                .filter(|phase| phase.status == RunStatus::Success)
                .map(|phase| phase.duration_ms.unwrap())
                .collect(),
        );
        assert_eq!(shown["succeeded"], ok.len(), "{name}");
        assert_eq!(shown["failed"], all.len() - ok.len(), "{name}");
        if !ok.is_empty() {
            let count = i64::try_from(ok.len()).unwrap();
            assert_eq!(
                shown["average_ms"],
                ok.iter().sum::<i64>() / count,
                "{name}"
            );
            assert_eq!(shown["p95_ms"], nearest_rank(&ok, 95), "{name}");
        }
    }

    // The checklist of the latest run: its phases with the times they really took.
    let written = sandbox.run(&["checklist"]).expect_code(0);
    let path = sandbox.path().join(written.stdout.trim());
    assert!(
        path.starts_with(sandbox.path().join("state/checklists")),
        "next to the history: {}",
        path.display()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(&format!("- **Deployment ID**: {}", details[0].run.id)),
        "{text}"
    );
    for phase in &details[0].phases {
        let ms = phase.duration_ms.unwrap();
        let expected = if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{}s", ms / 1000)
        };
        let section = text
            .split(&format!("] {}\n", phase.name))
            .nth(1)
            .unwrap_or_else(|| panic!("phase {} in\n{text}", phase.name));
        assert!(
            section.contains(&format!("- **Duration**: {expected}\n")),
            "{} {expected}\n{text}",
            phase.name
        );
    }
    assert!(!text.contains("- **Duration**: n/a"), "{text}");

    // The report of the same runs: four charts, a bar segment per phase of the last run.
    sandbox
        .run(&["report", "--html", "report.html"])
        .expect_code(0);
    let html = std::fs::read_to_string(sandbox.path().join("report.html")).unwrap();
    assert_eq!(html.matches("<svg ").count(), 4, "four charts");
    for phase in &details[0].phases {
        let label = format!("{} {}: ", details[0].run.id, phase.name);
        assert!(html.contains(&label), "a bar segment {label}");
    }
}

#[test]
fn api_writes_are_recorded_with_their_failures_and_reads_are_not() {
    let (child, ready) = crate::lab_serve::serve(&["--plain-http", "--with-template"]);
    let sandbox = Sandbox::new()
        .env("TF_VAR_pve_api_url", ready["url"].as_str().unwrap())
        .env("TF_VAR_pve_api_token", ready["token"].as_str().unwrap())
        .env("SOMBRERO_RETRY_DELAY_MS", "0");
    sandbox.run(&["api", "get", "/version"]).expect_code(0);
    assert!(
        !sandbox.path().join("deployments/sombrero.db").exists(),
        "a read records nothing"
    );
    sandbox
        .run(&["api", "post", "/nodes/lloyd/qemu", "vmid=170", "name=probe"])
        .expect_code(0);
    sandbox
        .run(&["api", "delete", "/nodes/lloyd/qemu/999", "--env", "staging"])
        .expect_code(1);
    let _ = crate::lab_serve::terminate(child);

    let store = Store::open_existing(sandbox.path().join("deployments/sombrero.db")).unwrap();
    let runs = store.runs(None, None).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let failed = store.run_detail(Some(&runs[0].id)).unwrap();
    assert_eq!(failed.run.command, "api");
    assert_eq!(failed.run.environment, "staging");
    assert_eq!(failed.run.status, RunStatus::Failed);
    let error = failed.run.error.as_deref().unwrap_or_default();
    assert!(error.contains("DELETE /nodes/lloyd/qemu/999"), "{error}");
    assert_eq!(failed.phases.len(), 1);
    assert_eq!(failed.phases[0].name, "delete");
    assert_eq!(failed.phases[0].status, RunStatus::Failed);
    let created = store.run_detail(Some(&runs[1].id)).unwrap();
    assert_eq!(created.run.status, RunStatus::Success);
    assert_eq!(created.phases[0].name, "post");
    assert_eq!(
        created.phases[0].detail.as_deref(),
        Some("/nodes/lloyd/qemu")
    );
}

#[test]
fn api_with_the_lab_flag_talks_to_the_deploy_lab_and_never_to_the_configured_url() {
    let sandbox = Sandbox::new()
        .timeout(Duration::from_secs(60))
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:9/api2/json")
        .env("TF_VAR_pve_api_token", "terraform@pve!token=unused")
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        .env("SOMBRERO_RETRY_DELAY_MS", "0");
    sandbox.run(&["deploy", "--lab", "--yes"]).expect_code(0);
    let resources = sandbox
        .run(&[
            "api",
            "get",
            "/cluster/resources",
            "type=vm",
            "--lab",
            "--json",
        ])
        .expect_code(0);
    let resources = json(&resources);
    let vmids: Vec<i64> = resources
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|vm| vm["vmid"].as_i64())
        .collect();
    assert!(
        vmids.contains(&150) && vmids.contains(&1001),
        "the VM deploy --lab created and the template: {resources}"
    );
    sandbox
        .run(&["api", "delete", "/nodes/lloyd/qemu/999", "--lab"])
        .expect_code(1)
        .stderr_has("999");
    // Without the flag the call goes to the configured (closed) port and fails.
    sandbox
        .run(&["api", "get", "/version"])
        .expect_code(1)
        .stderr_has("127.0.0.1:9");

    let details = recorded(&sandbox, DEFAULT_HISTORY);
    let commands: Vec<&str> = details.iter().map(|d| d.run.command.as_str()).collect();
    assert_eq!(commands, ["api", "deploy"], "the lab write is recorded");
    assert_eq!(details[0].run.status, RunStatus::Failed);
    assert_eq!(details[0].phases[0].name, "delete");
}

#[test]
fn a_refused_destroy_of_a_foreign_vm_is_recorded_as_failed() {
    let sandbox = Sandbox::new()
        .timeout(Duration::from_secs(60))
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        .env("SOMBRERO_RETRY_DELAY_MS", "0");
    // VM 150 (production's id) made by hand, not by sombrero: no ownership marker.
    sandbox
        .run(&[
            "api",
            "post",
            "/nodes/lloyd/qemu",
            "vmid=150",
            "name=hand-made",
            "--lab",
        ])
        .expect_code(0);
    let refused = sandbox.run(&["destroy", "--lab", "--yes"]).expect_code(1);
    assert!(refused.stderr.contains("150"), "{}", refused.stderr);

    let details = recorded(&sandbox, DEFAULT_HISTORY);
    let commands: Vec<&str> = details.iter().map(|d| d.run.command.as_str()).collect();
    assert_eq!(commands, ["destroy", "api"], "newest first");
    assert_eq!(details[0].run.status, RunStatus::Failed);
    let error = details[0].run.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("150"),
        "the refusal is the recorded error: {error}"
    );
    // Nothing was touched: the hand-made VM is still there, complete (`api --lab` let the
    // create task finish before its in-process lab stopped).
    let config = sandbox
        .run(&[
            "api",
            "get",
            "/nodes/lloyd/qemu/150/config",
            "--lab",
            "--json",
        ])
        .expect_code(0);
    let config = json(&config);
    assert_eq!(config["name"], "hand-made", "{config}");
    assert!(config.get("lock").is_none(), "{config}");
}
