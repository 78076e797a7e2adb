//! The VM an environment should have, derived once from the resolved settings, and the
//! marker that says "sombrero manages this VM, for this environment".
//!
//! Why a marker in the description (plus tags): Terraform knows what it owns from its
//! state file; sombrero has no state file, so ownership must live on the VM itself, where
//! every client (and the web UI) can see it. A VM whose id matches an environment but
//! that carries no marker was made by someone else and is never modified or destroyed;
//! `sombrero adopt` adds the marker explicitly (the runbook's `terraform import`).

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use pve::DiskSize;
use serde::Serialize;

use crate::settings::{NodeChoice, Settings, SshPublicKey};

/// The tag every VM sombrero manages carries.
pub const MANAGED_TAG: &str = "sombrero";

/// The first word of the marker line in the description.
pub const MARKER_PREFIX: &str = "managed-by: sombrero";

/// Tags `sombrero build` gives its templates (the original's `packer-built` +
/// `ubuntu-24-04`); the newest template carrying all of them is used when no id is given.
pub const TEMPLATE_TAGS: [&str; 2] = ["packer-built", "ubuntu-24-04"];

/// The environment's VM as it should be.
#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub environment: String,
    /// The node the VM is on (or goes to): the configured one until
    /// [`super::placement::settle`] finds the VM or places it.
    pub node: String,
    /// What `node` in the settings asks for.
    pub placement: NodeChoice,
    pub vmid: u32,
    pub name: String,
    /// The user's description (the marker is added to it).
    pub description: Option<String>,
    pub cores: u32,
    pub cpu: String,
    pub memory_mib: u64,
    pub balloon_mib: Option<u64>,
    pub disk_slot: String,
    pub disk_storage: String,
    pub disk_size: DiskSize,
    pub bridge: String,
    pub ip: IpNet,
    pub gateway: IpAddr,
    pub nameservers: Vec<IpAddr>,
    pub searchdomain: Option<String>,
    pub ciuser: String,
    pub ssh_keys: Vec<String>,
    /// Configured tags plus `sombrero` and the environment's name, sorted.
    pub tags: Vec<String>,
    /// Linked instead of full clone (faster, but the VM depends on the template's disk).
    pub linked_clone: bool,
    /// Where stage outputs go (`deployments/outputs`).
    pub outputs_dir: PathBuf,
    /// The private key file Ansible should use, as found by the key search
    /// (`crate::ssh::key`); `None` when the key is in the ssh-agent or was not found.
    /// Set by the caller after [`Desired::from_settings`].
    pub ssh_key_path: Option<String>,
}

impl Desired {
    /// The desired VM of the selected environment. `ssh_key` is `None` only for commands
    /// that never write the VM's config (destroy): its `ssh_keys` are then empty.
    pub fn from_settings(
        settings: &Settings,
        ssh_key: Option<&SshPublicKey>,
        linked_clone: bool,
    ) -> Self {
        let vm = &settings.vm;
        let environment = settings.environment.value.clone();
        let mut tags: Vec<String> = vm.tags.value.clone();
        tags.push(MANAGED_TAG.to_owned());
        tags.push(environment.clone());
        tags.sort();
        tags.dedup();
        Self {
            environment,
            node: vm.node.value.preferred().unwrap_or_default().to_owned(),
            placement: vm.node.value.clone(),
            vmid: vm.vmid.value,
            name: vm.name.value.clone(),
            description: vm.description.as_ref().map(|text| text.value.clone()),
            cores: vm.cores.value,
            cpu: vm.cpu.value.clone(),
            memory_mib: vm.memory_mib.value,
            balloon_mib: vm.balloon_mib.as_ref().map(|balloon| balloon.value),
            disk_slot: vm.disk_slot.value.clone(),
            disk_storage: vm.disk_storage.value.clone(),
            disk_size: DiskSize::from_gib(vm.disk_size_gib.value),
            bridge: vm.bridge.value.clone(),
            ip: vm.ip.value,
            gateway: vm.gateway.value,
            nameservers: vm.nameservers.value.clone(),
            searchdomain: vm.searchdomain.as_ref().map(|domain| domain.value.clone()),
            ciuser: vm.ciuser.value.clone(),
            ssh_keys: ssh_key
                .map(|key| key.as_str().to_owned())
                .into_iter()
                .collect(),
            tags,
            linked_clone,
            outputs_dir: settings.paths.outputs_dir.value.clone(),
            ssh_key_path: None,
        }
    }

    /// The full description: the user's text and the marker line.
    pub fn description_text(&self, template: Option<u32>) -> String {
        let marker = Marker {
            environment: self.environment.clone(),
            template,
        }
        .line();
        match self.description.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => format!("{text}\n\n{marker}"),
            _ => marker,
        }
    }
}

/// What the marker line says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    pub environment: String,
    /// The template the VM was cloned from (unknown for adopted VMs).
    pub template: Option<u32>,
}

impl Marker {
    /// `managed-by: sombrero env=staging template=1001`.
    pub fn line(&self) -> String {
        match self.template {
            Some(template) => format!(
                "{MARKER_PREFIX} env={} template={template}",
                self.environment
            ),
            None => format!("{MARKER_PREFIX} env={}", self.environment),
        }
    }

    /// The marker in a description, if it has one.
    pub fn find(description: &str) -> Option<Self> {
        let line = description
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(MARKER_PREFIX))?;
        let mut environment = None;
        let mut template = None;
        for word in line[MARKER_PREFIX.len()..].split_whitespace() {
            if let Some(value) = word.strip_prefix("env=") {
                environment = Some(value.to_owned());
            } else if let Some(value) = word.strip_prefix("template=") {
                template = value.parse().ok();
            }
        }
        Some(Self {
            environment: environment?,
            template,
        })
    }

    /// `description` with its marker line replaced by (or, without one, followed by) this.
    pub fn apply_to(&self, description: &str) -> String {
        let kept: Vec<&str> = description
            .lines()
            .filter(|line| !line.trim().starts_with(MARKER_PREFIX))
            .collect();
        let text = kept.join("\n");
        let text = text.trim();
        if text.is_empty() {
            self.line()
        } else {
            format!("{text}\n\n{}", self.line())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Marker;

    #[test]
    fn marker_round_trips_and_replaces() {
        let marker = Marker {
            environment: "staging".into(),
            template: Some(1001),
        };
        let text = marker.apply_to("Testing & validation");
        assert_eq!(
            text,
            "Testing & validation\n\nmanaged-by: sombrero env=staging template=1001"
        );
        assert_eq!(Marker::find(&text), Some(marker.clone()));
        let other = Marker {
            environment: "production".into(),
            template: None,
        };
        let replaced = other.apply_to(&text);
        assert_eq!(
            replaced,
            "Testing & validation\n\nmanaged-by: sombrero env=production"
        );
        assert_eq!(Marker::find("Provisioned by Terraform"), None);
        assert_eq!(Marker::find("managed-by: sombrero"), None);
    }
}
