//! A deploy interrupted while its clone runs (Ctrl-C, a killed job): the clone task goes
//! on in Proxmox and leaves a VM without sombrero's marker until it ends. The clone
//! journal lets the next run recognise its own half-made VM: `status` says what it is,
//! `deploy` waits for the clone and finishes, `destroy` waits and deletes it.

use std::time::Duration;

use pve_lab::{Lab, LabHandle, LabOptions};
use sombrero_core::deploy::{self, Action, DeployError, DeployEvent, Timeouts};

use crate::deploy::{client, desired, newest};

/// A lab whose clones take a few seconds (half the realistic durations).
async fn slow_lab() -> LabHandle {
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    options.node.time_scale = 0.5;
    Lab::start(options).await.unwrap()
}

/// Starts a deploy of staging and drops it (an interrupt) once its clone is running.
async fn interrupted_deploy(client: &pve::Client, desired: &deploy::Desired) {
    let plan = deploy::plan(client, desired, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::Create);
    let events = |_: &DeployEvent| {};
    let mut apply = Box::pin(deploy::apply(
        client,
        desired,
        plan,
        Timeouts::default(),
        &events,
    ));
    // Dropped when the clone has started: VM 152 exists, still locked by the clone.
    loop {
        tokio::select! {
            result = apply.as_mut() => panic!("the deploy ended before its clone was seen: {result:?}"),
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if client.vm_config_opt("lloyd", 152).await.unwrap().is_some() {
            break;
        }
    }
    drop(apply); // the interrupt: the future and its waits are gone, the task is not
    let config = client.vm_config("lloyd", 152).await.unwrap();
    assert_eq!(config.lock().as_deref(), Some("clone"), "the clone goes on");
}

#[tokio::test]
async fn a_rerun_waits_for_its_own_interrupted_clone_and_finishes() {
    let lab = slow_lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    interrupted_deploy(&client, &desired).await;

    // A reader does not wait: it says what the VM is.
    let status = deploy::status(&client, &desired).await.unwrap();
    assert!(
        status
            .problem
            .as_deref()
            .is_some_and(|problem| problem.contains("being cloned by an earlier sombrero run")),
        "{status:?}"
    );

    // The re-run: not "not managed by sombrero", but the clone waited for and finished.
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_ne!(plan.action, Action::Create);
    let events = |_: &DeployEvent| {};
    let report = deploy::apply(&client, &desired, plan, Timeouts::default(), &events)
        .await
        .unwrap();
    assert_eq!(report.outputs.vm_id, "152");
    assert_eq!(report.outputs.template_id.as_deref(), Some("1001"));
    let again = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(again.action, Action::NoChanges, "{again:?}");
    assert!(
        !dir.path()
            .join("outputs/staging")
            .join(deploy::journal::JOURNAL_FILE)
            .exists(),
        "the journal entry is gone once the VM carries the marker"
    );
}

#[tokio::test]
async fn destroy_after_an_interrupted_clone_deletes_the_half_made_vm() {
    let lab = slow_lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    interrupted_deploy(&client, &desired).await;
    let events = |_: &DeployEvent| {};
    let report = deploy::destroy(&client, &desired, Timeouts::default(), &events)
        .await
        .unwrap();
    assert!(report.deleted);
    assert!(client.vm_config_opt("lloyd", 152).await.unwrap().is_none());
}

/// Without the journal (another project's clone, or none of ours), an unmarked VM stays
/// foreign: the journal is what makes it ours.
#[tokio::test]
async fn an_unmarked_vm_without_a_journal_entry_is_still_refused() {
    let lab = slow_lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    interrupted_deploy(&client, &desired).await;
    std::fs::remove_file(
        dir.path()
            .join("outputs/staging")
            .join(deploy::journal::JOURNAL_FILE),
    )
    .unwrap();
    let error = deploy::plan(&client, &desired, &newest())
        .await
        .unwrap_err();
    assert!(matches!(error, DeployError::ForeignVm { .. }), "{error:?}");
}
