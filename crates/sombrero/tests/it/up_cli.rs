//! `up`, `rollback` and `destroy --all/--clean` against labs with state-only guests: the
//! pipeline's order, its one recorded run, skipped stages, a failed stage and its re-run,
//! convergence, the rollback to another template, the teardown of every environment.
//! (On real QEMU guests: the journey in `deploy_real_guest`.)

use serde_json::Value;
use sombrero_core::history::{RunDetail, RunStatus, Store};

use crate::sandbox::{Sandbox, lab_at, pointed_at_lab};

fn latest(sandbox: &Sandbox) -> RunDetail {
    Store::open_existing(sandbox.path().join("deployments/sombrero.db"))
        .expect("history")
        .run_detail(None)
        .expect("latest run")
}

fn phase_names(detail: &RunDetail) -> Vec<(&str, RunStatus)> {
    detail
        .phases
        .iter()
        .map(|phase| (phase.name.as_str(), phase.status))
        .collect()
}

fn outputs(sandbox: &Sandbox, environment: &str) -> Value {
    let path = sandbox.path().join(format!(
        "deployments/outputs/{environment}/terraform-outputs.json"
    ));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("outputs")).expect("json")
}

fn task_faults(spec: &str) -> pve_lab::node::TaskFaults {
    spec.parse::<pve_lab::FaultSpec>()
        .expect("fault spec")
        .task_faults()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_stages_a_state_only_lab_allows_as_one_run_and_converges() {
    let lab = lab_at(0.01).await;
    let sandbox = pointed_at_lab(&lab);
    let sandbox = tokio::task::spawn_blocking(move || {
        let first = sandbox.run(&["up", "--yes"]).expect_code(0);
        // The summary: every stage in order, the two skipped ones saying why.
        let order: Vec<usize> = ["preflight", "build", "deploy", "configure", "verify"]
            .iter()
            .map(|stage| first.stdout.find(&format!(" {stage} ")).expect(stage))
            .collect();
        assert!(order.is_sorted(), "{}", first.stdout);
        assert!(
            first.stdout.contains("skipped: template 1001"),
            "{}",
            first.stdout
        );
        assert!(
            first
                .stdout
                .contains("skipped: the lab's guests are state-only"),
            "{}",
            first.stdout
        );
        assert!(
            first
                .stdout
                .contains("VM:       150 on lloyd, address 192.168.10.250")
        );
        assert!(
            first.stdout.contains("sombrero lab serve --guests qemu"),
            "the fix for the skipped stages: {}",
            first.stdout
        );
        // One run, a phase per stage that ran, with deploy's steps inside.
        let detail = latest(&sandbox);
        assert_eq!(detail.run.command, "up");
        assert_eq!(detail.run.status, RunStatus::Success);
        let phases = phase_names(&detail);
        assert_eq!(phases[0], ("preflight", RunStatus::Success));
        assert_eq!(phases[1], ("deploy", RunStatus::Success));
        assert!(
            phases.contains(&("clone", RunStatus::Success)),
            "{phases:?}"
        );
        assert!(
            !phases
                .iter()
                .any(|(name, _)| *name == "configure" || name.starts_with("configure:")),
            "{phases:?}"
        );
        assert_eq!(outputs(&sandbox, "production")["vm_id"], "150");

        // Again: nothing is re-cloned, nothing written.
        let second = sandbox.run(&["up", "--yes"]).expect_code(0);
        assert!(
            second.stderr.contains("action: no changes"),
            "{}",
            second.stderr
        );
        let detail = latest(&sandbox);
        assert_eq!(detail.run.status, RunStatus::Success);
        assert!(
            !phase_names(&detail)
                .iter()
                .any(|(name, _)| *name == "clone"),
            "{:?}",
            phase_names(&detail)
        );
        // The checklist of an `up` run counts the deploy stage once.
        let record = sandbox.run(&["checklist"]).expect_code(0);
        let text =
            std::fs::read_to_string(sandbox.path().join(record.stdout.trim())).expect("checklist");
        assert!(text.contains("- **Command**: sombrero up"), "{text}");
        assert!(
            text.contains("- **Ansible Configure**: N/A (not run)"),
            "{text}"
        );
        sandbox
    })
    .await
    .expect("blocking");
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stage_stops_up_there_and_the_rerun_finishes() {
    let lab = lab_at(0.01).await;
    lab.node()
        .set_task_faults(task_faults("task-fail=1.0,seed=7"));
    let sandbox = pointed_at_lab(&lab);
    let sandbox = tokio::task::spawn_blocking(move || {
        let failed = sandbox.run(&["up", "--yes"]);
        assert_eq!(failed.code, Some(1), "{}", failed.stderr);
        assert!(
            failed.stderr.contains("up stopped at deploy"),
            "{}",
            failed.stderr
        );
        let detail = latest(&sandbox);
        assert_eq!(detail.run.status, RunStatus::Failed);
        let phases = phase_names(&detail);
        assert_eq!(phases[0], ("preflight", RunStatus::Success));
        assert!(
            phases.contains(&("deploy", RunStatus::Failed)),
            "{phases:?}"
        );
        sandbox
    })
    .await
    .expect("blocking");
    lab.node().set_task_faults(task_faults("seed=7"));
    let sandbox = tokio::task::spawn_blocking(move || {
        sandbox.run(&["up", "--yes"]).expect_code(0);
        let detail = latest(&sandbox);
        assert_eq!(detail.run.status, RunStatus::Success);
        assert_eq!(outputs(&sandbox, "production")["vm_id"], "150");
        sandbox
    })
    .await
    .expect("blocking");
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_recreates_the_vm_from_another_template_and_keeps_both() {
    let lab = lab_at(0.01).await;
    let sandbox = pointed_at_lab(&lab);
    let sandbox = tokio::task::spawn_blocking(move || {
        sandbox.run(&["up", "--yes"]).expect_code(0);
        // An older build: a second template, as `build --replace` leaves one.
        sandbox
            .run(&[
                "api",
                "post",
                "/nodes/lloyd/qemu/1001/clone",
                "newid=1005",
                "full=1",
            ])
            .expect_code(0);
        // `api post` returns the clone's task id; the template conversion waits for the
        // clone's lock to go.
        let converted = (0..100).any(|_| {
            let done = sandbox.run(&["api", "post", "/nodes/lloyd/qemu/1005/template"]);
            std::thread::sleep(std::time::Duration::from_millis(50));
            done.code == Some(0)
        });
        assert!(converted, "template 1005 was never converted");

        // Refused before anything changes: no terminal and no --yes; a missing template.
        sandbox
            .run(&["rollback", "--template", "1005"])
            .expect_code(2);
        sandbox
            .run(&["rollback", "--template", "4242", "--yes"])
            .expect_code(1)
            .stderr_has("4242");
        assert_eq!(outputs(&sandbox, "production")["template_id"], "1001");

        let rolled = sandbox
            .run(&["rollback", "--template", "1005", "--yes"])
            .expect_code(0);
        assert!(
            rolled.stderr.contains("destroy VM 150"),
            "{}",
            rolled.stderr
        );
        assert_eq!(outputs(&sandbox, "production")["template_id"], "1005");
        let detail = latest(&sandbox);
        assert_eq!(detail.run.command, "rollback");
        assert_eq!(detail.run.status, RunStatus::Success);
        let phases = phase_names(&detail);
        let destroy = phases
            .iter()
            .position(|p| *p == ("destroy", RunStatus::Success));
        let deploy = phases
            .iter()
            .position(|p| *p == ("deploy", RunStatus::Success));
        assert!(destroy.is_some() && destroy < deploy, "{phases:?}");
        // Both templates are still there.
        for id in ["1001", "1005"] {
            let config = sandbox
                .run(&[
                    "api",
                    "get",
                    &format!("/nodes/lloyd/qemu/{id}/config"),
                    "--json",
                ])
                .expect_code(0);
            let config: Value = serde_json::from_str(&config.stdout).expect("json");
            assert_eq!(config["template"], 1, "template {id}: {config}");
        }
        sandbox
    })
    .await
    .expect("blocking");
    drop(sandbox);
}

#[test]
fn up_lab_with_state_only_guests_says_what_it_skipped_and_why() {
    let sandbox = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .env("SOMBRERO_LAB_GUESTS", "state");
    let out = sandbox.run(&["up", "--lab", "--yes"]).expect_code(0);
    assert!(
        out.stdout.contains(
            "the lab's guests are state-only here, so configure and verify did not run: \
             SOMBRERO_LAB_GUESTS=state asks for state-only guests"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("fix:      unset SOMBRERO_LAB_GUESTS"),
        "{}",
        out.stdout
    );
    // No SSH command for a guest that has no SSH server.
    assert!(!out.stdout.contains("SSH:"), "{}", out.stdout);

    Sandbox::new()
        .env("SOMBRERO_LAB_GUESTS", "vmware")
        .run(&["up", "--lab", "--yes"])
        .expect_code(2)
        .stderr_has("SOMBRERO_LAB_GUESTS=vmware");
    Sandbox::new()
        .run(&["up", "--keep", "--yes"])
        .expect_code(2)
        .stderr_has("--keep");
}

#[test]
fn destroy_all_asks_once_for_every_environment_and_records_each() {
    let sandbox = Sandbox::new().env("SOMBRERO_LAB_TIME_SCALE", "0.01");
    for environment in ["production", "staging"] {
        sandbox
            .run(&["deploy", "--lab", "--env", environment, "--yes"])
            .expect_code(0);
    }
    let logs = sandbox.path().join("deployments/logs");
    std::fs::create_dir_all(&logs).expect("logs");
    for name in ["configure-staging-1.log", "configure-production-1.log"] {
        std::fs::write(logs.join(name), "log").expect("log");
    }
    // No terminal, no --yes: the list is shown, nothing is destroyed.
    let refused = sandbox.run(&["destroy", "--lab", "--all"]).expect_code(2);
    assert!(
        refused.stderr.contains("production   VM 150"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("staging      VM 152"),
        "{}",
        refused.stderr
    );
    assert!(sandbox.path().join("deployments/outputs/staging").exists());

    // --clean on one environment: its logs go, the other's stay.
    sandbox
        .run(&["destroy", "--lab", "--env", "staging", "--clean", "--yes"])
        .expect_code(0);
    assert!(!logs.join("configure-staging-1.log").exists());
    assert!(logs.join("configure-production-1.log").exists());

    sandbox
        .run(&["deploy", "--lab", "--env", "staging", "--yes"])
        .expect_code(0);
    let all = sandbox
        .run(&["destroy", "--lab", "--all", "--yes"])
        .expect_code(0);
    assert!(
        all.stdout
            .contains("Destroyed VM 150 of environment production"),
        "{}",
        all.stdout
    );
    assert!(
        all.stdout
            .contains("Destroyed VM 152 of environment staging"),
        "{}",
        all.stdout
    );
    assert!(
        !sandbox
            .path()
            .join("deployments/outputs/production")
            .exists()
    );
    // Without --clean the logs stay.
    assert!(logs.join("configure-production-1.log").exists());
    let store = Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("db");
    let runs = store.runs(None, Some(2)).expect("runs");
    let mut destroyed: Vec<(&str, &str)> = runs
        .iter()
        .map(|run| (run.command.as_str(), run.environment.as_str()))
        .collect();
    destroyed.sort_unstable();
    assert_eq!(
        destroyed,
        [("destroy", "production"), ("destroy", "staging")]
    );
    let again = sandbox
        .run(&["destroy", "--lab", "--all", "--yes"])
        .expect_code(0);
    assert!(
        again.stdout.contains("nothing to destroy"),
        "{}",
        again.stdout
    );
}
