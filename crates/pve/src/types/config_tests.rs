use super::{ConfigUpdate, VmConfig};
use crate::secret::Secret;
use crate::types::devices::NetDevice;
use crate::types::ipconfig::IpConfig;
use crate::types::size::DiskSize;
use serde_json::json;

fn sample() -> VmConfig {
    serde_json::from_value(json!({
        "name": "jump-01",
        "memory": "2048",
        "balloon": 1024,
        "cores": "2",
        "cpu": "host",
        "net0": "virtio=BC:24:11:2A:3B:4C,bridge=vmbr0",
        "scsi0": "local-lvm:vm-150-disk-0,discard=on,size=32G",
        "ide2": "local-lvm:vm-150-cloudinit,media=cdrom",
        "ipconfig0": "ip=192.168.10.20/24,gw=192.168.10.1",
        "agent": "1",
        "tags": "sombrero;jump",
        "lock": "clone",
        "template": 0,
        "sshkeys": "ssh-ed25519%20AAAA%2B%2F%3D%20a%40b",
        "digest": "0123456789abcdef0123456789abcdef01234567",
        "vga": "serial0"
    }))
    .unwrap()
}

#[test]
fn typed_getters_read_lenient_values() {
    let config = sample();
    assert_eq!(config.name().as_deref(), Some("jump-01"));
    assert_eq!(config.memory().unwrap().unwrap().current, 2048);
    assert_eq!(config.balloon(), Some(1024));
    assert_eq!(config.cores(), Some(2));
    assert_eq!(config.cpu().as_deref(), Some("host"));
    assert!(config.net0().unwrap().unwrap().has_mac("bc:24:11:2a:3b:4c"));
    assert_eq!(
        config.scsi0().unwrap().unwrap().size().unwrap(),
        Some(DiskSize::from_gib(32))
    );
    assert!(config.ipconfig0().unwrap().is_some());
    assert!(config.agent_enabled());
    assert_eq!(config.tags(), vec!["sombrero", "jump"]);
    assert_eq!(config.lock().as_deref(), Some("clone"));
    assert!(!config.is_template());
    assert_eq!(config.sshkeys(), vec!["ssh-ed25519 AAAA+/= a@b"]);
    assert_eq!(config.get_text("vga").as_deref(), Some("serial0"));
    let disks = config.disks().unwrap();
    assert_eq!(disks.keys().collect::<Vec<_>>(), vec!["ide2", "scsi0"]);
    assert!(disks["ide2"].is_cloudinit());
}

#[test]
fn invalid_values_are_errors_not_panics() {
    let config: VmConfig =
        serde_json::from_value(json!({"net0": "bridge=vmbr0", "memory": "x"})).unwrap();
    assert!(config.net0().is_err());
    assert!(config.memory().is_err());
    assert!(!config.agent_enabled());
    assert_eq!(config.lock(), None);
}

#[test]
fn update_encodes_values_the_pve_way() {
    let update = ConfigUpdate::new()
        .memory(2048)
        .balloon(1024)
        .cores(2)
        .net(0, &NetDevice::new("virtio", "vmbr0"))
        .ipconfig(0, &IpConfig::dhcp())
        .set_bool("onboot", true)
        .sshkeys(["ssh-ed25519 AAAA a@b"])
        .cipassword(&Secret::new("pa55"))
        .delete("ide0")
        .delete("sata0")
        .digest("abc");
    assert!(!format!("{update:?}").contains("pa55"));
    let params = update.into_params();
    assert_eq!(params.get("memory"), Some("2048"));
    assert_eq!(params.get("onboot"), Some("1"));
    assert_eq!(params.get("sshkeys"), Some("ssh-ed25519%20AAAA%20a%40b"));
    assert_eq!(params.get("delete"), Some("ide0,sata0"));
    let body = params.encode();
    assert!(
        body.contains("sshkeys=ssh-ed25519%2520AAAA%2520a%2540b"),
        "{body}"
    );
    assert!(body.contains("cipassword=pa55"));
    assert!(ConfigUpdate::new().digest("abc").is_empty());
}
