//! Each endpoint method's success and error paths against the lab.

use std::net::IpAddr;

use pve::endpoints::{CloneOptions, PowerAction, TaskFilter};
use pve::{
    ConfigUpdate, DiskSize, Error, GrowOutcome, IpConfig, ResourceType, Secret, VmState,
    no_progress,
};

use crate::common::{DEADLINE, Events, TEMPLATE, client, client_with_token, lab, node};

#[tokio::test]
async fn reads_version_nodes_resources_storage_and_nextid() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    let version = client.version().await.unwrap();
    assert!(!version.version.is_empty());
    let nodes = client.nodes().await.unwrap();
    assert!(nodes.iter().any(|entry| entry.node == node));
    assert!(client.node_status(&node).await.unwrap().is_object());
    let vms = client
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .unwrap();
    assert!(
        vms.iter()
            .any(|vm| vm.vmid == Some(TEMPLATE) && vm.template)
    );
    let next = client.next_id().await.unwrap();
    assert!(next >= 100 && next != TEMPLATE);
    assert!(client.is_vmid_free(next).await.unwrap());
    assert!(!client.is_vmid_free(TEMPLATE).await.unwrap());
    let storages = client.storage_list(&node, None).await.unwrap();
    assert!(!storages.is_empty());
    let first = &storages[0].storage;
    client.storage_content(&node, first, None).await.unwrap();
    assert!(
        client
            .vm_list(&node)
            .await
            .unwrap()
            .iter()
            .any(|vm| vm.vmid == TEMPLATE)
    );
    let metrics = client.metrics();
    assert_eq!(metrics.writes(), 0);
    assert!(metrics.get >= 10);
}

#[tokio::test]
async fn missing_vms_are_none_or_not_found() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    assert!(client.vm_config_opt(&node, 4242).await.unwrap().is_none());
    assert!(client.vm_status_opt(&node, 4242).await.unwrap().is_none());
    let error = client.vm_config(&node, 4242).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(
        !client
            .delete_vm_and_wait(&node, 4242, DEADLINE, &no_progress)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn bad_credentials_and_missing_privileges_are_typed() {
    let lab = lab(|_| {}).await;
    let node = node(&lab);
    let wrong = client_with_token(&lab, "root@pam!lab=00000000-0000-0000-0000-000000000000");
    let error = wrong.version().await.unwrap_err();
    assert!(error.is_unauthorized(), "{error}");
    assert!(!error.to_string().contains("00000000-0000"), "{error}");
    let readonly = client_with_token(&lab, &lab.readonly_token());
    readonly.version().await.unwrap();
    let clone = CloneOptions {
        newid: 300,
        name: Some("denied".into()),
        ..CloneOptions::default()
    };
    let error = readonly
        .vm_clone(&node, TEMPLATE, &clone)
        .await
        .unwrap_err();
    let permission = error.permission().expect("a 403 names the privilege");
    assert!(permission.privilege.is_some(), "{error}");
    // What each token holds, as PVE reports it: the clone privilege only for the full one.
    let held = readonly.permissions().await.unwrap();
    assert!(held["/"].contains_key("VM.Audit"), "{held:?}");
    assert!(!held["/"].contains_key("VM.Clone"), "{held:?}");
    let full = client_with_token(&lab, &lab.token());
    let held = full.permissions().await.unwrap();
    assert!(held["/"].contains_key("VM.Clone"), "{held:?}");
}

#[tokio::test]
async fn ticket_login_with_password_works_for_reads_and_writes() {
    let lab = lab(|_| {}).await;
    let node = node(&lab);
    let client = pve::Client::builder(lab.url())
        .password("root@pam", Secret::new(lab.password()))
        .retry(pve::RetryPolicy::default().without_delays())
        .build()
        .unwrap();
    client.version().await.unwrap();
    let options = CloneOptions {
        newid: 310,
        name: Some("ticket".into()),
        ..CloneOptions::default()
    };
    client
        .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &no_progress)
        .await
        .unwrap();
    let wrong = pve::Client::builder(lab.url())
        .password("root@pam", Secret::new("not-the-password"))
        .retry(pve::RetryPolicy::none())
        .build()
        .unwrap();
    assert!(wrong.version().await.unwrap_err().is_unauthorized());
}

#[tokio::test]
async fn clone_configure_grow_start_find_address_and_destroy() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    let events = Events::default();
    let progress = |event: &pve::WaitEvent| events.record(event);
    let options = CloneOptions {
        newid: 150,
        name: Some("jump-01".into()),
        description: Some("sombrero test".into()),
        full: Some(true),
        ..CloneOptions::default()
    };
    let config = client
        .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &progress)
        .await
        .unwrap();
    assert_eq!(config.name().as_deref(), Some("jump-01"));
    assert_eq!(config.lock(), None);

    // A second clone into the same id is a plain error: nothing was retried.
    let error = client
        .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &no_progress)
        .await
        .unwrap_err();
    assert!(error.is_already_exists(), "{error}");

    let keys = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@jump",
    ];
    let update = ConfigUpdate::new()
        .memory(2048)
        .balloon(1024)
        .cores(2)
        .ipconfig(
            0,
            &"ip=192.168.10.20/24,gw=192.168.10.1"
                .parse::<IpConfig>()
                .unwrap(),
        )
        .set("ciuser", "admin")
        .cipassword(&Secret::new("pa55word"))
        .sshkeys(keys);
    client.vm_config_set(&node, 150, update).await.unwrap();
    let config = client.vm_config(&node, 150).await.unwrap();
    assert_eq!(config.memory().unwrap().unwrap().current, 2048);
    assert_eq!(config.balloon(), Some(1024));
    assert_eq!(config.sshkeys(), keys.to_vec());
    assert!(config.digest().is_some());

    // Grow-only and idempotent.
    let disk = config
        .disks()
        .unwrap()
        .into_iter()
        .find(|(_, disk)| !disk.is_cloudinit() && disk.media().is_none())
        .unwrap()
        .0;
    let target = DiskSize::from_gib(64);
    assert_eq!(
        client
            .grow_disk(&node, 150, &disk, target, DEADLINE, &no_progress)
            .await
            .unwrap(),
        GrowOutcome::Grown(target)
    );
    assert_eq!(
        client
            .grow_disk(&node, 150, &disk, target, DEADLINE, &no_progress)
            .await
            .unwrap(),
        GrowOutcome::AlreadyLarge(target)
    );
    let smaller = DiskSize::from_gib(8);
    assert!(matches!(
        client
            .grow_disk(&node, 150, &disk, smaller, DEADLINE, &no_progress)
            .await
            .unwrap(),
        GrowOutcome::AlreadyLarge(_)
    ));

    client
        .start_vm_and_wait(&node, 150, DEADLINE, &progress)
        .await
        .unwrap();
    assert_eq!(
        client.vm_status(&node, 150).await.unwrap().status,
        VmState::Running
    );
    // Starting a running VM is a no-op, not an error.
    client
        .start_vm_and_wait(&node, 150, DEADLINE, &no_progress)
        .await
        .unwrap();

    let address = client
        .wait_agent_address(&node, 150, DEADLINE, &progress)
        .await
        .unwrap();
    let net0 = config.net0().unwrap().unwrap();
    let interfaces = client.agent_interfaces(&node, 150).await.unwrap();
    let docker: Vec<IpAddr> = interfaces
        .result
        .iter()
        .filter(|i| i.name.starts_with("docker"))
        .flat_map(|i| i.addresses.iter().filter_map(|a| a.address.parse().ok()))
        .collect();
    assert!(
        !docker.is_empty(),
        "the lab reports docker0, which must be skipped"
    );
    assert!(!docker.contains(&address), "picked docker0's {address}");
    let eth = interfaces
        .result
        .iter()
        .find(|i| {
            i.hardware_address
                .as_deref()
                .is_some_and(|mac| net0.has_mac(mac))
        })
        .unwrap();
    assert!(
        eth.addresses
            .iter()
            .any(|a| a.address == address.to_string())
    );
    client.agent_ping(&node, 150).await.unwrap();
    let pid = client
        .agent_exec(&node, 150, &["cat", "/etc/hostname"], None)
        .await
        .unwrap();
    client.agent_exec_status(&node, 150, pid).await.unwrap();
    client.vm_cloudinit(&node, 150).await.unwrap();

    let tasks = client
        .tasks(
            &node,
            &TaskFilter {
                vmid: Some(150),
                ..TaskFilter::default()
            },
        )
        .await
        .unwrap();
    assert!(tasks.iter().any(|task| task.task_type == "qmstart"));
    let upid = &tasks[0].upid;
    assert!(!client.task_log(upid, 0, 50).await.unwrap().is_empty());

    // A running VM cannot be destroyed; the error comes back typed.
    let error = client.vm_delete(&node, 150, true).await;
    if let Ok(upid) = error {
        let failed = client
            .wait_task(&upid, DEADLINE, &no_progress)
            .await
            .unwrap_err();
        assert!(matches!(failed, Error::TaskFailed(_)), "{failed}");
    }
    client
        .shutdown_vm_and_wait(
            &node,
            150,
            std::time::Duration::from_secs(5),
            DEADLINE,
            &no_progress,
        )
        .await
        .unwrap();
    assert!(
        client
            .delete_vm_and_wait(&node, 150, DEADLINE, &no_progress)
            .await
            .unwrap()
    );
    assert!(client.vm_config_opt(&node, 150).await.unwrap().is_none());
    assert!(
        events.count.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "waits report progress"
    );
    let _ = PowerAction::Reboot;
}
