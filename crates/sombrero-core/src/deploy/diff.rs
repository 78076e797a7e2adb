//! Field-by-field comparison of a VM's config with the desired one: what differs, the
//! exact value to send, and whether the change needs a restart.
//!
//! Why compare meanings and not text: PVE prints values its own way (`memory` as
//! `current=2048` or `2048`, tags in any order and with any separator, `sshkeys`
//! percent-encoded, MACs in `net0`), and a naive text comparison reports drift on every
//! run. Each field here is parsed and compared as what it means, and values sombrero does
//! not own (net0's MAC and model, extra agent options) are carried over untouched.

use std::net::IpAddr;

use pve::{AgentConfig, ConfigUpdate, DiskSize, IpConfig, Ipv6Setting, NetDevice, VmConfig};
use serde::Serialize;

use super::desired::Desired;

/// How a change is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A key of the one config update.
    Config,
    /// A grow-only disk resize.
    Resize,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The setting's name, e.g. `memory`, `ip`.
    pub field: String,
    /// The PVE config key, e.g. `memory`, `ipconfig0`.
    pub key: String,
    /// The current value as shown to a person (`None`: not set).
    pub from: Option<String>,
    /// The new value as shown to a person.
    pub to: String,
    /// Whether a running VM must restart for it to take effect.
    pub restart: bool,
    pub kind: ChangeKind,
    /// What is sent (e.g. `sshkeys` percent-encoded); not part of the view.
    #[serde(skip)]
    pub(crate) wire: String,
}

/// Keys that change a running VM only after a restart: hardware PVE does not hot-plug by
/// default, and cloud-init, which the guest reads at boot.
fn needs_restart(key: &str) -> bool {
    matches!(
        key,
        "cores"
            | "cpu"
            | "memory"
            | "balloon"
            | "agent"
            | "boot"
            | "ciuser"
            | "sshkeys"
            | "ipconfig0"
            | "nameserver"
            | "searchdomain"
    )
}

/// The desired `ipconfig0`.
pub fn desired_ipconfig(desired: &Desired) -> IpConfig {
    match (desired.ip, desired.gateway) {
        (ipnet::IpNet::V4(net), gateway) => IpConfig::static_v4(
            net,
            match gateway {
                IpAddr::V4(gateway) => Some(gateway),
                IpAddr::V6(_) => None,
            },
        ),
        (ipnet::IpNet::V6(net), gateway) => IpConfig {
            ip6: Some(Ipv6Setting::Static(net)),
            gw6: match gateway {
                IpAddr::V6(gateway) => Some(gateway),
                IpAddr::V4(_) => None,
            },
            ..IpConfig::default()
        },
    }
}

/// The desired boot order: the disk first, then cloud-init drives, then the NIC.
pub fn desired_boot(desired: &Desired, config: &VmConfig) -> String {
    let mut order = vec![desired.disk_slot.clone()];
    if let Ok(disks) = config.disks() {
        for (key, disk) in disks {
            if disk.is_cloudinit() && key != desired.disk_slot {
                order.push(key);
            }
        }
    }
    order.push("net0".to_owned());
    format!("order={}", order.join(";"))
}

struct Collector<'a> {
    running: bool,
    current: &'a VmConfig,
    changes: Vec<FieldChange>,
}

impl Collector<'_> {
    fn push(&mut self, field: &str, key: &str, to: String, wire: String) {
        self.changes.push(FieldChange {
            field: field.to_owned(),
            key: key.to_owned(),
            from: self.current.get_text(key),
            to,
            restart: self.running && needs_restart(key),
            kind: ChangeKind::Config,
            wire,
        });
    }

    fn text(&mut self, field: &str, key: &str, wanted: &str) {
        if self.current.get_text(key).as_deref().map(str::trim) != Some(wanted.trim()) {
            self.push(field, key, wanted.to_owned(), wanted.to_owned());
        }
    }

    fn number(&mut self, field: &str, key: &str, wanted: u64, current: Option<u64>) {
        if current != Some(wanted) {
            self.push(field, key, wanted.to_string(), wanted.to_string());
        }
    }
}

/// What differs between `current` and `desired`. `template` goes into the marker (the
/// template an existing VM was cloned from); `running` decides which changes need a
/// restart.
pub fn diff(
    desired: &Desired,
    current: &VmConfig,
    template: Option<u32>,
    running: bool,
) -> Vec<FieldChange> {
    let mut collector = Collector {
        running,
        current,
        changes: Vec::new(),
    };
    collector.text("name", "name", &desired.name);
    collector.text(
        "description",
        "description",
        &desired.description_text(template),
    );
    collector.number("cores", "cores", u64::from(desired.cores), current.cores());
    collector.text("cpu", "cpu", &desired.cpu);
    let memory = current.memory().ok().flatten().map(|memory| memory.current);
    collector.number("memory", "memory", desired.memory_mib, memory);
    if let Some(balloon) = desired.balloon_mib {
        collector.number("balloon", "balloon", balloon, current.balloon());
    }
    net0(&mut collector, desired);
    if !current.agent_enabled() {
        let agent = AgentConfig::new(true).to_string();
        collector.push("agent", "agent", agent.clone(), agent);
    }
    collector.text("ciuser", "ciuser", &desired.ciuser);
    if current.sshkeys() != desired.ssh_keys {
        let shown = desired.ssh_keys.join("\n");
        let wire = pve::encode_sshkeys(&desired.ssh_keys);
        collector.push("ssh keys", "sshkeys", shown, wire);
        if let Some(change) = collector.changes.last_mut() {
            change.from = Some(current.sshkeys().join("\n")).filter(|keys| !keys.is_empty());
        }
    }
    let ipconfig = desired_ipconfig(desired);
    if current.ipconfig0().ok().flatten() != Some(ipconfig) {
        let text = ipconfig.to_string();
        collector.push("ip", "ipconfig0", text.clone(), text);
    }
    let nameservers: Vec<String> = desired
        .nameservers
        .iter()
        .map(ToString::to_string)
        .collect();
    let current_nameservers: Vec<String> = current
        .get_text("nameserver")
        .map(|text| text.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if current_nameservers != nameservers && !nameservers.is_empty() {
        let text = nameservers.join(" ");
        collector.push("nameservers", "nameserver", text.clone(), text);
    }
    if let Some(domain) = &desired.searchdomain {
        collector.text("searchdomain", "searchdomain", domain);
    }
    let mut current_tags = current.tags();
    current_tags.sort();
    current_tags.dedup();
    if current_tags != desired.tags {
        let text = desired.tags.join(";");
        collector.push("tags", "tags", text.clone(), text);
    }
    if current.get_text("onboot").as_deref() != Some("1") {
        collector.push("onboot", "onboot", "1".into(), "1".into());
    }
    let boot = desired_boot(desired, current);
    if current.get_text("boot").as_deref().map(str::trim) != Some(boot.as_str()) {
        collector.push("boot order", "boot", boot.clone(), boot);
    }
    let mut changes = collector.changes;
    if let Some(change) = resize(desired, current) {
        changes.push(change);
    }
    changes
}

fn net0(collector: &mut Collector<'_>, desired: &Desired) {
    let current = collector.current.net0().ok().flatten();
    let wanted = match &current {
        Some(device) if device.bridge() == Some(desired.bridge.as_str()) => return,
        Some(device) => {
            let mut device = device.clone();
            device.set("bridge", desired.bridge.as_str());
            device
        }
        None => NetDevice::new("virtio", &desired.bridge),
    };
    let text = wanted.to_string();
    collector.push("bridge", "net0", text.clone(), text);
}

/// The note for a disk larger than configured: disks cannot shrink, so the size it has
/// is kept (`whose` says where that size comes from: the template, the VM).
pub(super) fn shrink_note(desired: &Desired, current: &VmConfig, whose: &str) -> Option<String> {
    let disk = current.disk(&desired.disk_slot).ok().flatten()?;
    let size = disk.size().ok().flatten()?;
    (size > desired.disk_size).then(|| {
        format!(
            "disk_size_gib asks for {}, but {whose}'s {} is {size}: disks cannot shrink, so the \
             VM keeps {size}",
            desired.disk_size, desired.disk_slot
        )
    })
}

/// The grow-only resize, when the disk is smaller than configured.
fn resize(desired: &Desired, current: &VmConfig) -> Option<FieldChange> {
    let disk = current.disk(&desired.disk_slot).ok().flatten()?;
    let size = disk
        .size()
        .ok()
        .flatten()
        .unwrap_or(DiskSize::from_bytes(0));
    (size < desired.disk_size).then(|| FieldChange {
        field: "disk size".into(),
        key: desired.disk_slot.clone(),
        from: Some(size.to_string()),
        to: desired.disk_size.to_string(),
        // PVE grows disks of running VMs online.
        restart: false,
        kind: ChangeKind::Resize,
        wire: desired.disk_size.to_string(),
    })
}

/// The one config update for the `Config` changes (with `digest`, when given, so a
/// concurrent change makes it fail instead of being overwritten).
pub fn config_update(changes: &[FieldChange], digest: Option<&str>) -> ConfigUpdate {
    let mut update = ConfigUpdate::new();
    for change in changes.iter().filter(|c| c.kind == ChangeKind::Config) {
        update = update.set(&change.key, change.wire.clone());
    }
    if let Some(digest) = digest {
        update = update.digest(digest);
    }
    update
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
