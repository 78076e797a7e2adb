use std::path::PathBuf;

use pve::{DiskSize, VmConfig};
use serde_json::json;

use super::{ChangeKind, config_update, diff};
use crate::deploy::desired::Desired;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ test@sombrero";

pub(crate) fn staging() -> Desired {
    Desired {
        environment: "staging".into(),
        node: "lloyd".into(),
        placement: crate::settings::NodeChoice::Named("lloyd".into()),
        vmid: 152,
        name: "jump-man".into(),
        description: Some("Testing & validation".into()),
        cores: 2,
        cpu: "host".into(),
        memory_mib: 2048,
        balloon_mib: Some(1024),
        disk_slot: "scsi0".into(),
        disk_storage: "local-lvm".into(),
        disk_size: DiskSize::from_gib(32),
        bridge: "vmbr0".into(),
        ip: "192.168.10.252/24".parse().unwrap(),
        gateway: "192.168.10.1".parse().unwrap(),
        nameservers: vec!["192.168.10.1".parse().unwrap()],
        searchdomain: None,
        ciuser: "ansible".into(),
        ssh_keys: vec![KEY.into()],
        tags: vec!["jump-host".into(), "sombrero".into(), "staging".into()],
        linked_clone: false,
        outputs_dir: PathBuf::from("deployments/outputs"),
        ssh_key_path: Some("~/.ssh/jump-man-key".into()),
    }
}

/// A config as PVE would print it after a deploy of `staging()`.
fn deployed() -> VmConfig {
    let value = json!({
        "name": "jump-man",
        "description": "Testing & validation\n\nmanaged-by: sombrero env=staging template=1001\n",
        "cores": 2, "cpu": "host", "memory": "2048", "balloon": 1024,
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0",
        "agent": "1", "ciuser": "ansible",
        "sshkeys": pve::encode_sshkeys([KEY]),
        "ipconfig0": "ip=192.168.10.252/24,gw=192.168.10.1",
        "nameserver": "192.168.10.1",
        "tags": "staging;jump-host;sombrero",
        "onboot": 1,
        "boot": "order=scsi0;ide2;net0",
        "scsi0": "local-lvm:vm-152-disk-0,discard=on,size=32G",
        "ide2": "local-lvm:vm-152-cloudinit,media=cdrom",
        "digest": "abc",
    });
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_deployed_vm_has_no_changes() {
    let changes = diff(&staging(), &deployed(), Some(1001), true);
    assert!(changes.is_empty(), "{changes:#?}");
}

#[test]
fn a_fresh_clone_needs_every_owned_field_but_keeps_the_mac() {
    let clone: VmConfig = serde_json::from_value(json!({
        "name": "jump-man", "cores": 2, "cpu": "host", "memory": "2048",
        "net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=0",
        "agent": "1", "boot": "order=scsi0;ide2;net0",
        "scsi0": "local-lvm:vm-152-disk-0,size=3584M",
        "ide2": "local-lvm:vm-152-cloudinit,media=cdrom",
        "tags": "packer-built;ubuntu-24-04",
    }))
    .unwrap();
    let mut desired = staging();
    desired.bridge = "vmbr1".into();
    let changes = diff(&desired, &clone, Some(1001), false);
    let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
    for key in [
        "description",
        "balloon",
        "net0",
        "ciuser",
        "sshkeys",
        "ipconfig0",
        "nameserver",
        "tags",
        "onboot",
        "scsi0",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(
        !keys.contains(&"cores") && !keys.contains(&"boot"),
        "{keys:?}"
    );
    assert!(
        changes.iter().all(|c| !c.restart),
        "a stopped VM never needs a restart"
    );
    let net = changes.iter().find(|c| c.key == "net0").unwrap();
    assert!(
        net.to.contains("BC:24:11:AA:BB:CC") && net.to.contains("bridge=vmbr1"),
        "{}",
        net.to
    );
    let resize = changes
        .iter()
        .find(|c| c.kind == ChangeKind::Resize)
        .unwrap();
    assert_eq!(resize.to, "32G");
    let params = config_update(&changes, Some("d1")).into_params();
    assert_eq!(params.get("digest"), Some("d1"));
    assert!(params.get("scsi0").is_none(), "resizes are not config keys");
    assert!(params.get("sshkeys").is_some_and(|v| v.contains("%20")));
}

#[test]
fn drift_on_a_running_vm_says_which_changes_need_a_restart() {
    let mut desired = staging();
    desired.memory_mib = 4096;
    desired.tags.push("extra".into());
    desired.tags.sort();
    let changes = diff(&desired, &deployed(), Some(1001), true);
    let memory = changes.iter().find(|c| c.key == "memory").unwrap();
    assert!(memory.restart);
    assert_eq!(memory.from.as_deref(), Some("2048"));
    let tags = changes.iter().find(|c| c.key == "tags").unwrap();
    assert!(!tags.restart, "tags apply at once");
    assert_eq!(changes.len(), 2, "{changes:#?}");
}

#[test]
fn a_larger_disk_is_never_shrunk() {
    let mut desired = staging();
    desired.disk_size = DiskSize::from_gib(8);
    assert!(diff(&desired, &deployed(), Some(1001), true).is_empty());
}
