//! Template conversion, asynchronous config updates, raw resize errors and agent reads.

use pve::endpoints::{CloneOptions, ResizeTo};
use pve::{ConfigUpdate, DiskSize, no_progress};

use crate::common::{DEADLINE, TEMPLATE, client, lab, node};

#[tokio::test]
async fn convert_to_template_update_async_and_reject_shrinks() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    let options = CloneOptions {
        newid: 500,
        name: Some("golden".into()),
        full: Some(true),
        ..CloneOptions::default()
    };
    let config = client
        .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &no_progress)
        .await
        .unwrap();
    assert!(!config.is_template());

    let upid = client
        .vm_config_set_async(
            &node,
            500,
            ConfigUpdate::new().cores(4).set("description", "async"),
        )
        .await
        .unwrap();
    assert_eq!(upid.task_type(), "qmconfig");
    client
        .wait_task(&upid, DEADLINE, &no_progress)
        .await
        .unwrap();
    let config = client.vm_config(&node, 500).await.unwrap();
    assert_eq!(config.cores(), Some(4));

    // A raw shrink is rejected by PVE (inside the task or at once); grow_disk never sends one.
    let (disk, volume) = config
        .disks()
        .unwrap()
        .into_iter()
        .find(|(_, d)| !d.is_cloudinit() && d.media().is_none())
        .unwrap();
    let current = volume.size().unwrap().unwrap();
    let smaller = DiskSize::from_bytes(current.bytes() / 2);
    let shrink = client
        .vm_resize(&node, 500, &disk, ResizeTo::Absolute(smaller), None)
        .await;
    let rejected = match shrink {
        Err(error) => error.api().is_some(),
        Ok(Some(upid)) => client
            .wait_task(&upid, DEADLINE, &no_progress)
            .await
            .is_err(),
        Ok(None) => false,
    };
    assert!(
        rejected,
        "shrinking {disk} from {current} to {smaller} must fail"
    );

    let upid = client.vm_template(&node, 500).await.unwrap();
    client
        .wait_task(&upid, DEADLINE, &no_progress)
        .await
        .unwrap();
    assert!(client.vm_config(&node, 500).await.unwrap().is_template());
    // A template cannot be started: the failure comes back typed, with the log.
    let error = client
        .start_vm_and_wait(&node, 500, DEADLINE, &no_progress)
        .await
        .unwrap_err();
    assert!(
        error.api().is_some() || matches!(error, pve::Error::TaskFailed(_)),
        "{error}"
    );
}

#[tokio::test]
async fn agent_file_read_and_exec_status_after_start() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    let options = CloneOptions {
        newid: 510,
        name: Some("agent".into()),
        ..CloneOptions::default()
    };
    client
        .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &no_progress)
        .await
        .unwrap();
    // Before start, the agent is not running: typed as such.
    let error = client.agent_ping(&node, 510).await.unwrap_err();
    assert!(
        error.is_agent_not_running() || error.status() == Some(500),
        "{error}"
    );
    client
        .start_vm_and_wait(&node, 510, DEADLINE, &no_progress)
        .await
        .unwrap();
    client
        .wait_agent_address(&node, 510, DEADLINE, &no_progress)
        .await
        .unwrap();
    let file = client
        .agent_file_read(&node, 510, "/etc/hostname")
        .await
        .unwrap();
    assert_eq!(file.content, "agent\n");
    assert!(!file.truncated);
    let pid = client
        .agent_exec(&node, 510, &["true"], None)
        .await
        .unwrap();
    let status = client.agent_exec_status(&node, 510, pid).await.unwrap();
    assert!(status.exitcode.is_none() || status.exited);
    client
        .stop_vm_and_wait(&node, 510, DEADLINE, &no_progress)
        .await
        .unwrap();
    assert_eq!(
        client.vm_status(&node, 510).await.unwrap().status,
        pve::VmState::Stopped
    );
}

#[tokio::test]
async fn create_a_vm_from_scratch_and_wait_for_it() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    let vmid = client.next_id().await.unwrap();
    let config = ConfigUpdate::new()
        .set("name", "scratch")
        .memory(1024)
        .cores(1)
        .net(0, &pve::NetDevice::new("virtio", "vmbr0"))
        .set("scsi0", "local-lvm:4")
        .set("scsihw", "virtio-scsi-single");
    let created = client
        .create_vm_and_wait(&node, vmid, config, DEADLINE, &no_progress)
        .await
        .unwrap();
    assert_eq!(created.name().as_deref(), Some("scratch"));
    assert_eq!(created.memory().unwrap().unwrap().current, 1024);
    assert!(
        created.net0().unwrap().unwrap().macaddr().is_some(),
        "PVE generates a MAC"
    );
    assert_eq!(
        created.scsi0().unwrap().unwrap().size().unwrap(),
        Some(DiskSize::from_gib(4))
    );
    assert!(!client.is_vmid_free(vmid).await.unwrap());
}
