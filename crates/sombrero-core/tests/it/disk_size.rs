//! A configured disk smaller than the template's (or the VM's) cannot be honoured: disks
//! only grow. `plan` (and so `deploy`, which prints the plan) says so and which size the
//! VM keeps, instead of accepting the setting silently.

use sombrero_core::deploy::{self, Action, DeployEvent, Timeouts};

use crate::deploy::{client, desired, lab, newest};

/// The size of VM `vmid`'s scsi0.
async fn disk_size(client: &pve::Client, vmid: u64) -> pve::DiskSize {
    let config = client.vm_config("lloyd", vmid).await.unwrap();
    config.scsi0().unwrap().unwrap().size().unwrap().unwrap()
}

#[tokio::test]
async fn a_disk_smaller_than_the_templates_is_kept_at_the_templates_size_and_said() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let template_disk = disk_size(&client, 1001).await;
    let mut small = desired("staging", dir.path());
    small.disk_size = pve::DiskSize::from_gib(1);
    assert!(
        template_disk > small.disk_size,
        "the lab's template is larger than 1G"
    );

    let plan = deploy::plan(&client, &small, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::Create);
    let expected = format!(
        "disk_size_gib asks for 1G, but the template's scsi0 is {template_disk}: disks cannot \
         shrink, so the VM keeps {template_disk}"
    );
    assert!(plan.notes.contains(&expected), "{:?}", plan.notes);
    assert!(
        !plan
            .changes
            .iter()
            .any(|change| change.field == "disk size"),
        "no resize is planned: {:?}",
        plan.changes
    );
    let events = |_: &DeployEvent| {};
    deploy::apply(&client, &small, plan, Timeouts::default(), &events)
        .await
        .unwrap();
    let kept = disk_size(&client, 152).await;
    assert_eq!(kept, template_disk);

    // Re-planning the deployed VM says the same, of the VM's own disk.
    let again = deploy::plan(&client, &small, &newest()).await.unwrap();
    assert!(
        again
            .notes
            .iter()
            .any(|note| note.contains("the VM's scsi0") && note.contains("disks cannot shrink")),
        "{:?}",
        again.notes
    );
    // A disk at least as large as configured says nothing about shrinking.
    let fine = deploy::plan(&client, &desired("staging", dir.path()), &newest())
        .await
        .unwrap();
    assert!(
        !fine.notes.iter().any(|note| note.contains("shrink")),
        "{:?}",
        fine.notes
    );
}
