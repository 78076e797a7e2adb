//! The VM an environment deploys: defaults merged with the environment's table, field by
//! field, then checked.
//!
//! Why here and not in the deploy stage: every rule the runbook implies (a host address
//! with a prefix, a gateway inside that subnet, a VM id Proxmox accepts, balloon not above
//! memory) is checked before any command talks to Proxmox, with the key and line to fix.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use super::document::NodeValue;
use super::env_vars;
use super::error::SettingsError;
use super::resolve::Layers;
use super::source::{Origin, Resolved, Source};
use super::values::{
    self, NodeChoice, SshPublicKey, gateway_in_subnet, is_disk_slot, is_dns_name, is_tag,
    parse_host_cidr,
};
use super::vm_lookup::Builder;

/// Where the VM's SSH public key comes from: the key itself, or a file to read it from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SshKeySetting {
    /// The key line, e.g. from `TF_VAR_ci_ssh_key`.
    Inline(SshPublicKey),
    /// A `.pub` file, read when the key is needed.
    File { file: PathBuf },
}

/// The fully resolved VM of one environment.
#[derive(Debug, Clone, Serialize)]
pub struct VmSpec {
    pub vmid: Resolved<u32>,
    pub name: Resolved<String>,
    pub description: Option<Resolved<String>>,
    /// Where the VM goes: a node, `auto`, or a list (placement picks one at deploy).
    pub node: Resolved<NodeChoice>,
    /// The template set on purpose (`--template`, `TEMPLATE_ID`, `sombrero.toml`); `None`:
    /// stage 2 takes stage 1's outputs, else the newest tagged template.
    pub template_id: Option<Resolved<u32>>,
    pub cores: Resolved<u32>,
    pub cpu: Resolved<String>,
    pub memory_mib: Resolved<u64>,
    /// Minimum memory for ballooning; `None` means ballooning is not configured.
    pub balloon_mib: Option<Resolved<u64>>,
    pub disk_size_gib: Resolved<u64>,
    pub disk_slot: Resolved<String>,
    pub disk_storage: Resolved<String>,
    pub bridge: Resolved<String>,
    pub ip: Resolved<IpNet>,
    pub gateway: Resolved<IpAddr>,
    pub nameservers: Resolved<Vec<IpAddr>>,
    pub searchdomain: Option<Resolved<String>>,
    pub ciuser: Resolved<String>,
    pub ssh_public_key: Option<Resolved<SshKeySetting>>,
    /// The private key `configure` logs in with; `None` when no layer sets it. Only the
    /// path is resolved (`~/`, relative to the file): `configure` checks the file.
    pub ssh_private_key_file: Option<Resolved<PathBuf>>,
    /// Users sshd lets in besides `ciuser` (which `configure` always allows); empty by
    /// default, meaning `ciuser` only.
    pub ssh_allow_users: Resolved<Vec<String>>,
    /// Public keys authorized on the VM besides the cloud-init key; empty by default.
    pub extra_authorized_keys: Resolved<Vec<SshPublicKey>>,
    pub tags: Resolved<Vec<String>>,
}

/// A built VM spec and where its identifying values are, for the duplicate checks.
pub(super) struct BuiltVm {
    pub spec: VmSpec,
    pub vmid_origin: Origin,
    pub ip_origin: Origin,
}

/// Builds one environment's VM, pushing every problem found onto `errors`.
pub(super) fn build(
    layers: &Layers<'_>,
    environment: &str,
    errors: &mut Vec<SettingsError>,
) -> Option<BuiltVm> {
    let mut builder = Builder {
        layers,
        environment,
        errors,
    };
    builder.build()
}

impl Builder<'_, '_> {
    /// The template id if a layer sets one: `Ok(None)` when none does (stage 2 then
    /// takes stage 1's outputs or the newest tagged template), `Err` when the value set
    /// is invalid (the error was pushed).
    fn template_id(&mut self) -> Result<Option<Resolved<u32>>, ()> {
        if let Some(template) = self.layers.cli.template_id {
            let origin = Origin::new(Source::Flag("--template"));
            return self.vmid(i64::from(template), origin).map(Some).ok_or(());
        }
        if let Some((text, origin)) = self.layers.variable(&[env_vars::TEMPLATE_ID]) {
            let Ok(value) = text.trim().parse::<i64>() else {
                self.invalid(origin, format!("{text:?} is not a VM id (a number)"));
                return Err(());
            };
            return self.vmid(value, origin).map(Some).ok_or(());
        }
        match self.lookup("template_id", |table| table.template_id.as_ref()) {
            Some((value, origin)) => self.vmid(value, origin).map(Some).ok_or(()),
            None => Ok(None),
        }
    }

    /// `node`: a name, `auto`, or a list (text with commas from the variable, a TOML
    /// string or array from the file).
    fn node(&mut self) -> Option<Resolved<NodeChoice>> {
        let found = self
            .layers
            .variable(&[env_vars::PACKER_PROXMOX_NODE])
            .map(|(text, origin)| (NodeChoice::parse(&text), origin))
            .or_else(|| {
                self.lookup("node", |table| table.node.as_ref())
                    .map(|(value, origin)| {
                        let choice = match value {
                            NodeValue::One(text) => NodeChoice::parse(&text),
                            NodeValue::Many(names) => NodeChoice::from_list(names),
                        };
                        (choice, origin)
                    })
            });
        let Some((choice, origin)) = found else {
            self.missing("node", Some(env_vars::PACKER_PROXMOX_NODE));
            return None;
        };
        match choice {
            Ok(choice) => Some(Resolved::new(choice, origin.source)),
            Err(reason) => {
                self.invalid(origin, reason);
                None
            }
        }
    }

    fn ssh_public_key(&mut self) -> Option<Resolved<SshKeySetting>> {
        let names = [env_vars::CI_SSH_KEY, env_vars::SOMBRERO_SSH_PUBLIC_KEY_FILE];
        let (is_file, (value, origin)) = if let Some(found) = self.layers.variable(&names) {
            let is_file = matches!(
                &found.1.source,
                Source::Env(name) | Source::Mise { name, .. }
                    if name == env_vars::SOMBRERO_SSH_PUBLIC_KEY_FILE
            );
            (is_file, found)
        } else if let Some(found) = self.lookup("ssh_public_key", |t| t.ssh_public_key.as_ref()) {
            (false, found)
        } else {
            let found = self.lookup("ssh_public_key_file", |t| t.ssh_public_key_file.as_ref())?;
            (true, found)
        };
        let setting = if is_file {
            SshKeySetting::File {
                file: self.layers.path(&value, &origin.source),
            }
        } else {
            match values::parse_ssh_public_key(&value) {
                Ok(key) => SshKeySetting::Inline(key),
                Err(reason) => {
                    self.invalid(origin, format!("not an SSH public key: {reason}"));
                    return None;
                }
            }
        };
        Some(Resolved::new(setting, origin.source))
    }

    fn addresses(&mut self) -> Option<(Resolved<IpNet>, Origin, Resolved<IpAddr>)> {
        let ip_found = self.lookup("ip", |table| table.ip.as_ref());
        let gateway_found = self.lookup("gateway", |table| table.gateway.as_ref());
        let ip =
            self.required("ip", ip_found)
                .and_then(|(value, at)| match parse_host_cidr(&value) {
                    Ok(net) => Some((net, at)),
                    Err(reason) => {
                        self.errors
                            .push(SettingsError::InvalidCidr { at, value, reason });
                        None
                    }
                });
        let gateway = self
            .required("gateway", gateway_found)
            .and_then(|(value, at)| match value.trim().parse::<IpAddr>() {
                Ok(address) => Some((address, at)),
                Err(error) => {
                    let reason = error.to_string();
                    self.errors
                        .push(SettingsError::InvalidIp { at, value, reason });
                    None
                }
            });
        let ((net, ip_origin), (gateway, gateway_origin)) = (ip?, gateway?);
        if gateway == net.addr() {
            self.errors.push(SettingsError::GatewayIsTheVm {
                at: gateway_origin,
                gateway,
            });
            return None;
        }
        if !gateway_in_subnet(&net, gateway) {
            self.errors.push(SettingsError::GatewayOutsideSubnet {
                at: gateway_origin,
                gateway,
                subnet: net.trunc(),
            });
            return None;
        }
        let ip_source = ip_origin.source.clone();
        Some((
            Resolved::new(net, ip_source),
            ip_origin,
            Resolved::new(gateway, gateway_origin.source),
        ))
    }

    fn nameservers(&mut self) -> Resolved<Vec<IpAddr>> {
        let (items, source) = self.list("nameservers", |table| table.nameservers.as_ref());
        let mut addresses = Vec::new();
        for item in items {
            let key = match &source {
                Source::File { key, .. } => key.clone(),
                _ => "nameservers".to_owned(),
            };
            match item.get_ref().trim().parse::<IpAddr>() {
                Ok(address) => addresses.push(address),
                Err(error) => self.errors.push(SettingsError::InvalidIp {
                    at: self.layers.file.origin(key, &item.span()),
                    value: item.get_ref().clone(),
                    reason: error.to_string(),
                }),
            }
        }
        Resolved::new(addresses, source)
    }

    fn tags(&mut self) -> Resolved<Vec<String>> {
        let (items, source) = self.list("tags", |table| table.tags.as_ref());
        let mut tags = Vec::new();
        for item in items {
            if is_tag(item.get_ref()) {
                tags.push(item.get_ref().clone());
            } else {
                let key = match &source {
                    Source::File { key, .. } => key.clone(),
                    _ => "tags".to_owned(),
                };
                let at = self.layers.file.origin(key, &item.span());
                self.invalid(at, format!("{:?} is not a Proxmox tag", item.get_ref()));
            }
        }
        Resolved::new(tags, source)
    }

    fn build(&mut self) -> Option<BuiltVm> {
        let not_blank = |text: &str| !text.trim().is_empty() && !text.contains(char::is_whitespace);
        let vmid = self
            .lookup("vmid", |table| table.vmid.as_ref())
            .map(|(value, origin)| (self.vmid(value, origin.clone()), origin));
        if vmid.is_none() {
            self.missing("vmid", None);
        }
        let name = self.text(
            "name",
            |t| t.name.as_ref(),
            is_dns_name,
            "a valid VM name (a DNS name)",
        );
        let description =
            self.optional_text("description", |t| t.description.as_ref(), |_| true, "");
        let node = self.node();
        let template_id = self.template_id();
        let cores = self
            .count("cores", |t| t.cores.as_ref(), 1)
            .and_then(|count| {
                if let Ok(cores) = u32::try_from(count.value) {
                    Some(Resolved::new(cores, count.source))
                } else {
                    let message = format!("{} cores is more than any machine has", count.value);
                    self.invalid(Origin::new(count.source), message);
                    None
                }
            });
        let cpu = self.text("cpu", |t| t.cpu.as_ref(), not_blank, "a CPU type");
        let memory_mib = self.count("memory_mib", |t| t.memory_mib.as_ref(), 16);
        let balloon = self.lookup("balloon_mib", |t| t.balloon_mib.as_ref());
        let disk_size_gib = self.count("disk_size_gib", |t| t.disk_size_gib.as_ref(), 1);
        let disk_slot = self.text(
            "disk_slot",
            |t| t.disk_slot.as_ref(),
            is_disk_slot,
            "a disk slot (scsi0..scsi30, virtio0..virtio15, sata0..sata5, ide0..ide3)",
        );
        let disk_storage = self.text(
            "disk_storage",
            |t| t.disk_storage.as_ref(),
            not_blank,
            "a storage id",
        );
        let bridge = self.text("bridge", |t| t.bridge.as_ref(), not_blank, "a bridge name");
        let addresses = self.addresses();
        let nameservers = self.nameservers();
        let searchdomain = self.optional_text(
            "searchdomain",
            |t| t.searchdomain.as_ref(),
            is_dns_name,
            "a DNS domain",
        );
        let ciuser = self.text(
            "ciuser",
            |t| t.ciuser.as_ref(),
            is_user_name,
            "a Linux user name",
        );
        let ssh_public_key = self.ssh_public_key();
        let ssh_private_key_file = self.ssh_private_key_file();
        let ssh_allow_users = self.ssh_allow_users();
        let extra_authorized_keys = self.extra_authorized_keys();
        let tags = self.tags();

        let balloon_mib = match (balloon, &memory_mib) {
            (None, _) => Some(None),
            (Some((value, origin)), Some(memory)) => match u64::try_from(value) {
                Ok(balloon) if balloon <= memory.value => {
                    Some(Some(Resolved::new(balloon, origin.source)))
                }
                Ok(balloon) => {
                    self.errors.push(SettingsError::BalloonExceedsMemory {
                        at: origin,
                        balloon,
                        memory: memory.value,
                    });
                    None
                }
                Err(_) => {
                    self.invalid(origin, format!("{value} is negative"));
                    None
                }
            },
            (Some(_), None) => None,
        };
        let (vmid, vmid_origin) = vmid?;
        let (ip, ip_origin, gateway) = addresses?;
        let spec = VmSpec {
            vmid: vmid?,
            name: name?,
            description: description.ok()?,
            node: node?,
            template_id: template_id.ok()?,
            cores: cores?,
            cpu: cpu?,
            memory_mib: memory_mib?,
            balloon_mib: balloon_mib?,
            disk_size_gib: disk_size_gib?,
            disk_slot: disk_slot?,
            disk_storage: disk_storage?,
            bridge: bridge?,
            ip,
            gateway,
            nameservers,
            searchdomain: searchdomain.ok()?,
            ciuser: ciuser?,
            ssh_public_key,
            ssh_private_key_file: ssh_private_key_file.ok()?,
            ssh_allow_users,
            extra_authorized_keys,
            tags,
        };
        Some(BuiltVm {
            spec,
            vmid_origin,
            ip_origin,
        })
    }
}

/// Whether `name` is a portable Linux user name (`[a-z_][a-z0-9_-]*`, at most 32).
pub(super) fn is_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 32
        && chars
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}
