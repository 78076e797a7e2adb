//! The client under injected faults: 5xx answers, connection resets, lock timeouts inside
//! clone tasks.

use std::time::{Duration, Instant};

use pve::endpoints::CloneOptions;
use pve::{ResourceType, WaitEvent, no_progress};

use crate::common::{DEADLINE, Events, TEMPLATE, client, lab, node};

#[tokio::test]
async fn reads_and_clone_start_survive_twenty_percent_5xx_and_resets() {
    // PVE_FAULT_SEEDS=1,2,3 runs other seeds (used to soak-test the retry rules).
    let seeds: Vec<u64> = std::env::var("PVE_FAULT_SEEDS").map_or_else(
        |_| vec![7, 8, 9],
        |text| {
            text.split(',')
                .filter_map(|seed| seed.trim().parse().ok())
                .collect()
        },
    );
    for seed in seeds {
        survive_faults(seed).await;
    }
}

async fn survive_faults(seed: u64) {
    let lab = lab(|options| {
        options.faults = format!("http5xx=0.2,reset=0.05,seed={seed}")
            .parse()
            .unwrap();
    })
    .await;
    let client = client(&lab);
    let node = node(&lab);
    let started = Instant::now();
    for _ in 0..20 {
        client.cluster_resources(None).await.unwrap();
        client.version().await.unwrap();
    }
    let options = CloneOptions {
        newid: 200,
        name: Some("faulty".into()),
        ..CloneOptions::default()
    };
    client
        .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &no_progress)
        .await
        .unwrap();
    client
        .start_vm_and_wait(&node, 200, DEADLINE, &no_progress)
        .await
        .unwrap();
    assert_eq!(
        client.vm_status(&node, 200).await.unwrap().status,
        pve::VmState::Running
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let metrics = client.metrics();
    assert!(
        metrics.retries > 0,
        "faults were injected and retried: {metrics:?}"
    );
    assert!(
        client
            .cluster_resources(Some(ResourceType::Vm))
            .await
            .unwrap()
            .iter()
            .any(|vm| vm.vmid == Some(200))
    );
}

#[tokio::test]
async fn lock_timeouts_inside_clone_tasks_are_retried() {
    let lab = lab(|options| {
        options.faults = "lock-timeout=0.5,seed=3".parse().unwrap();
    })
    .await;
    let client = client(&lab);
    let node = node(&lab);
    let events = Events::default();
    let progress = |event: &WaitEvent| events.record(event);
    for newid in 400..406 {
        let options = CloneOptions {
            newid,
            name: Some(format!("lock-{newid}")),
            ..CloneOptions::default()
        };
        let config = client
            .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &progress)
            .await
            .unwrap();
        assert_eq!(config.name(), Some(format!("lock-{newid}")));
    }
    let retried = events.all().into_iter().filter(|event| matches!(event, WaitEvent::Retrying { reason, .. } if reason.contains("got timeout"))).count();
    assert!(
        retried > 0,
        "the seed must produce at least one lock timeout: {:?}",
        events.all()
    );
}

/// Lost answers: the lab handles the request (the clone starts) and then resets the
/// connection. The client must neither fail nor create a second VM: it re-sends, meets
/// "already exists", waits for the target's `lock: clone` to clear and recognises its VM.
#[tokio::test]
async fn lost_answers_to_clone_and_start_neither_fail_nor_duplicate() {
    let lab = lab(|options| {
        options.faults = "lost=0.3,seed=4".parse().unwrap();
    })
    .await;
    let client = client(&lab);
    let node = node(&lab);
    let events = Events::default();
    let progress = |event: &WaitEvent| events.record(event);
    let newids: Vec<u64> = (500..506).collect();
    for &newid in &newids {
        let options = CloneOptions {
            newid,
            name: Some(format!("lost-{newid}")),
            ..CloneOptions::default()
        };
        let config = client
            .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &progress)
            .await
            .unwrap();
        assert_eq!(config.name(), Some(format!("lost-{newid}")));
        client
            .start_vm_and_wait(&node, newid, DEADLINE, &progress)
            .await
            .unwrap();
    }
    let injected = lab.faults().injected();
    assert!(injected.lost > 0, "{injected:?}");
    let resent_clones = events
        .all()
        .into_iter()
        .filter(
            |event| matches!(event, WaitEvent::Retrying { what, .. } if what.starts_with("clone")),
        )
        .count();
    assert!(
        resent_clones > 0,
        "the seed must lose at least one clone answer: {:?}",
        events.all()
    );
    lab.faults().set(pve_lab::FaultSpec::default());
    let mut vms: Vec<(u64, String)> = client
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|vm| Some((vm.vmid?, vm.status.clone()?)))
        .filter(|(vmid, _)| *vmid != TEMPLATE)
        .collect();
    vms.sort();
    let expected: Vec<(u64, String)> = newids
        .iter()
        .map(|&vmid| (vmid, "running".to_owned()))
        .collect();
    assert_eq!(vms, expected, "one running VM per clone, nothing else");
}

/// A lost answer to a resize: the disk may be growing. `grow_disk` reads the size again
/// and sends the same absolute size only while it is not reached, so every disk ends at
/// the size asked for, never larger, and no call fails.
#[tokio::test]
async fn lost_answers_to_resize_still_grow_each_disk_exactly_once() {
    let lab = lab(|_| {}).await;
    let client = client(&lab);
    let node = node(&lab);
    let newids: Vec<u64> = (600..606).collect();
    for &newid in &newids {
        let options = CloneOptions {
            newid,
            name: Some(format!("grow-{newid}")),
            ..CloneOptions::default()
        };
        client
            .clone_vm_and_wait(&node, TEMPLATE, &options, DEADLINE, &no_progress)
            .await
            .unwrap();
    }
    lab.faults().set("lost=0.4,seed=2".parse().unwrap());
    let events = Events::default();
    let progress = |event: &WaitEvent| events.record(event);
    let target = pve::DiskSize::from_gib(40);
    for &newid in &newids {
        let outcome = client
            .grow_disk(&node, newid, "scsi0", target, DEADLINE, &progress)
            .await
            .unwrap();
        assert_eq!(outcome, pve::GrowOutcome::Grown(target));
    }
    assert!(lab.faults().injected().lost > 0);
    assert!(
        events.all().iter().any(
            |event| matches!(event, WaitEvent::Retrying { what, .. } if what.starts_with("resize"))
        ),
        "the seed must lose at least one resize answer: {:?}",
        events.all()
    );
    lab.faults().set(pve_lab::FaultSpec::default());
    for &newid in &newids {
        let config = client.vm_config(&node, newid).await.unwrap();
        let size = config.disk("scsi0").unwrap().unwrap().size().unwrap();
        assert_eq!(size, Some(target), "VM {newid}");
    }
}
