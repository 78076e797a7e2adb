//! A guest agent that never answers (the lab's `agent-never` fault, drawn at every boot):
//! the deploy reboots the VM once through the API, announced, and waits again; if the
//! agent is still silent it fails with the runbook's question about qemu-guest-agent,
//! instead of repeating the same silent wait on every re-run.

use std::sync::Mutex;
use std::time::Duration;

use pve::endpoints::PowerAction;
use pve_lab::node::TaskFaults;
use sombrero_core::deploy::{self, Action, DeployError, DeployEvent, Timeouts};

use super::deploy::{client, deploy_env, desired, lab, newest};

fn agent_never(lab: &pve_lab::LabHandle, never: bool) {
    lab.node().set_task_faults(TaskFaults {
        agent_never: if never { 1.0 } else { 0.0 },
        ..TaskFaults::default()
    });
}

fn short_agent_wait() -> Timeouts {
    Timeouts {
        agent: Duration::from_secs(1),
        ..Timeouts::default()
    }
}

/// Runs a power action on VM 152 and waits for its task.
async fn power(client: &pve::Client, action: PowerAction) {
    let upid = client.vm_power("lloyd", 152, action).await.unwrap();
    client
        .wait_task(&upid, Duration::from_secs(60), &pve::no_progress)
        .await
        .unwrap();
}

/// Deploys staging, then reboots it so that its agent never answers this boot.
async fn deployed_with_a_silent_agent(
    lab: &pve_lab::LabHandle,
    client: &pve::Client,
) -> deploy::Desired {
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    deploy_env(client, &desired).await.unwrap();
    agent_never(lab, true);
    power(client, PowerAction::Reboot).await;
    desired
}

#[tokio::test]
async fn one_reboot_brings_back_an_agent_that_was_stuck() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let desired = deployed_with_a_silent_agent(&lab, &client).await;
    // The next boot's agent answers.
    agent_never(&lab, false);
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::NoChanges);
    let events: Mutex<Vec<String>> = Mutex::default();
    let record = |event: &DeployEvent| events.lock().unwrap().push(format!("{event:?}"));
    let report = deploy::apply(&client, &desired, plan, short_agent_wait(), &record)
        .await
        .unwrap();
    assert_eq!(report.outputs.vm_ip, "192.168.10.252");
    let status = deploy::status(&client, &desired).await.unwrap();
    assert_eq!(status.agent.as_deref(), Some("answering"));
    let events = events.into_inner().unwrap();
    assert!(
        events
            .iter()
            .any(|event| event.contains("Retrying") && event.contains("rebooting VM 152")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn an_agent_silent_through_a_reboot_fails_with_the_runbooks_question() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let desired = deployed_with_a_silent_agent(&lab, &client).await;
    // `status` says so too, not just "drift: none".
    let status = deploy::status(&client, &desired).await.unwrap();
    assert!(
        status
            .agent
            .as_deref()
            .is_some_and(|agent| agent.starts_with("not answering")),
        "{status:?}"
    );
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    let record = |_: &DeployEvent| {};
    let error = deploy::apply(&client, &desired, plan, short_agent_wait(), &record)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeployError::AgentSilent { vmid: 152, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("through one reboot"), "{error}");
    assert!(
        error.hint().is_some_and(
            |hint| hint.contains("qemu-guest-agent") && hint.contains("qm agent 152 ping")
        ),
        "{:?}",
        error.hint()
    );
}

/// A VM deleted while the deploy waits for its agent ends the wait at once.
#[tokio::test]
async fn a_vm_deleted_during_the_agent_wait_ends_it() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let desired = deployed_with_a_silent_agent(&lab, &client).await;
    // Deleted behind the deploy's back (stop, then delete), while the deploy waits.
    let deleter = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            power(&client, PowerAction::Stop).await;
            client
                .delete_vm_and_wait("lloyd", 152, Duration::from_secs(60), &pve::no_progress)
                .await
                .unwrap();
        })
    };
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    let record = |_: &DeployEvent| {};
    let long_wait = Timeouts {
        agent: Duration::from_secs(120),
        ..Timeouts::default()
    };
    let error = deploy::apply(&client, &desired, plan, long_wait, &record)
        .await
        .unwrap_err();
    deleter.await.unwrap();
    assert!(
        !matches!(error, DeployError::AgentSilent { .. }),
        "not a silent agent but a missing VM: {error:?}"
    );
    assert!(error.to_string().contains("guest agent"), "{error}");
}
