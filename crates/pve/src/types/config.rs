//! A VM's configuration as returned by `GET .../config`, and updates to send back.
//!
//! Why both typed and untyped: sombrero reads a dozen keys with meaning (memory, disks, NICs,
//! cloud-init, lock, digest) and must pass every other key through untouched. [`VmConfig`]
//! keeps the raw map and offers lenient typed getters; [`ConfigUpdate`] builds the form
//! parameters for `PUT`/`POST .../config`, with PVE's encodings (0/1, `sshkeys`) applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::devices::{AgentConfig, Disk, Memory, NetDevice};
use super::ipconfig::IpConfig;
use super::property::{PropertyError, bool_text};
use super::sshkeys::{decode_sshkeys, encode_sshkeys};
use crate::lenient;
use crate::request::Params;
use crate::secret::Secret;

/// Config keys that hold disks (bus name + index).
const DISK_BUSES: [&str; 6] = ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"];

/// `GET /nodes/{node}/qemu/{vmid}/config`: every key, with typed getters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmConfig {
    values: Map<String, Value>,
}

impl VmConfig {
    /// Wraps a raw config map.
    pub fn from_map(values: Map<String, Value>) -> Self {
        Self { values }
    }

    /// The raw value of any key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Any key as text (numbers and booleans printed as PVE would).
    pub fn get_text(&self, key: &str) -> Option<String> {
        self.values.get(key).and_then(lenient::value_as_string)
    }

    /// All keys and values.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.values
    }

    fn parsed<T>(&self, key: &str) -> Result<Option<T>, PropertyError>
    where
        T: std::str::FromStr<Err = PropertyError>,
    {
        self.get_text(key).map(|text| text.parse()).transpose()
    }

    /// `name`.
    pub fn name(&self) -> Option<String> {
        self.get_text("name")
    }

    /// `description` (PVE stores it as a comment; may be multi-line).
    pub fn description(&self) -> Option<String> {
        self.get_text("description")
    }

    /// `memory`, maximum RAM in MiB.
    ///
    /// # Errors
    /// When the value is not `N` or `current=N`.
    pub fn memory(&self) -> Result<Option<Memory>, PropertyError> {
        self.parsed("memory")
    }

    /// `balloon`, minimum RAM in MiB (0 disables ballooning).
    pub fn balloon(&self) -> Option<u64> {
        self.values.get("balloon").and_then(lenient::value_as_u64)
    }

    /// `cores`.
    pub fn cores(&self) -> Option<u64> {
        self.values.get("cores").and_then(lenient::value_as_u64)
    }

    /// `sockets`.
    pub fn sockets(&self) -> Option<u64> {
        self.values.get("sockets").and_then(lenient::value_as_u64)
    }

    /// `cpu`, e.g. `host` or `x86-64-v2-AES`.
    pub fn cpu(&self) -> Option<String> {
        self.get_text("cpu")
    }

    /// `netN`.
    ///
    /// # Errors
    /// When the value is not a valid network device.
    pub fn net(&self, index: u8) -> Result<Option<NetDevice>, PropertyError> {
        self.parsed(&format!("net{index}"))
    }

    /// `net0`.
    ///
    /// # Errors
    /// When the value is not a valid network device.
    pub fn net0(&self) -> Result<Option<NetDevice>, PropertyError> {
        self.net(0)
    }

    /// A disk by key, e.g. `scsi0`, `ide2`.
    ///
    /// # Errors
    /// When the value is not a valid disk.
    pub fn disk(&self, key: &str) -> Result<Option<Disk>, PropertyError> {
        self.parsed(key)
    }

    /// `scsi0`.
    ///
    /// # Errors
    /// When the value is not a valid disk.
    pub fn scsi0(&self) -> Result<Option<Disk>, PropertyError> {
        self.disk("scsi0")
    }

    /// Every disk-like key (`scsiN`, `virtioN`, `sataN`, `ideN`, ...) with its value,
    /// cloud-init drives and CD-ROMs included.
    ///
    /// # Errors
    /// When one of them is not a valid disk.
    pub fn disks(&self) -> Result<BTreeMap<String, Disk>, PropertyError> {
        let mut disks = BTreeMap::new();
        for key in self.values.keys() {
            let is_disk = DISK_BUSES.iter().any(|bus| {
                key.strip_prefix(bus).is_some_and(|index| {
                    !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit())
                })
            });
            if !is_disk {
                continue;
            }
            if let Some(disk) = self.disk(key)? {
                disks.insert(key.clone(), disk);
            }
        }
        Ok(disks)
    }

    /// `ipconfigN`.
    ///
    /// # Errors
    /// When the value is not a valid ipconfig.
    pub fn ipconfig(&self, index: u8) -> Result<Option<IpConfig>, PropertyError> {
        self.parsed(&format!("ipconfig{index}"))
    }

    /// `ipconfig0`.
    ///
    /// # Errors
    /// When the value is not a valid ipconfig.
    pub fn ipconfig0(&self) -> Result<Option<IpConfig>, PropertyError> {
        self.ipconfig(0)
    }

    /// `agent`.
    ///
    /// # Errors
    /// When the value is not a valid agent setting.
    pub fn agent(&self) -> Result<Option<AgentConfig>, PropertyError> {
        self.parsed("agent")
    }

    /// Whether `agent` is present and enabled (invalid values count as disabled).
    pub fn agent_enabled(&self) -> bool {
        matches!(self.agent(), Ok(Some(agent)) if agent.enabled())
    }

    /// `tags`, split on PVE's separators (`;`, `,`, space).
    pub fn tags(&self) -> Vec<String> {
        self.get_text("tags")
            .map(|text| {
                text.split([';', ',', ' '])
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `lock`, e.g. `clone`, `create`, `backup`, while an operation holds the VM.
    pub fn lock(&self) -> Option<String> {
        self.get_text("lock").filter(|lock| !lock.is_empty())
    }

    /// `digest`, the SHA-1 of the config file, for optimistic concurrency.
    pub fn digest(&self) -> Option<String> {
        self.get_text("digest")
    }

    /// `template`.
    pub fn is_template(&self) -> bool {
        self.values
            .get("template")
            .and_then(lenient::value_as_bool)
            .unwrap_or(false)
    }

    /// `sshkeys`, decoded into one key per entry.
    pub fn sshkeys(&self) -> Vec<String> {
        self.get_text("sshkeys")
            .map(|value| decode_sshkeys(&value))
            .unwrap_or_default()
    }
}

/// Parameters for `PUT`/`POST /nodes/{node}/qemu/{vmid}/config` (and the config part of
/// `POST /nodes/{node}/qemu`). Values are encoded the way PVE expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    params: Params,
    delete: Vec<String>,
}

impl ConfigUpdate {
    /// An empty update.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets any key to a raw text value.
    #[must_use]
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.params.set(key, value);
        self
    }

    /// Sets a boolean key as `1`/`0`.
    #[must_use]
    pub fn set_bool(self, key: &str, value: bool) -> Self {
        self.set(key, bool_text(value))
    }

    /// `memory` in MiB.
    #[must_use]
    pub fn memory(self, mebibytes: u64) -> Self {
        self.set("memory", mebibytes.to_string())
    }

    /// `balloon` in MiB (0 disables ballooning; must not exceed `memory`).
    #[must_use]
    pub fn balloon(self, mebibytes: u64) -> Self {
        self.set("balloon", mebibytes.to_string())
    }

    /// `cores`.
    #[must_use]
    pub fn cores(self, cores: u32) -> Self {
        self.set("cores", cores.to_string())
    }

    /// `netN`.
    #[must_use]
    pub fn net(self, index: u8, device: &NetDevice) -> Self {
        self.set(&format!("net{index}"), device.to_string())
    }

    /// A disk key such as `scsi0`.
    #[must_use]
    pub fn disk(self, key: &str, disk: &Disk) -> Self {
        self.set(key, disk.to_string())
    }

    /// `ipconfigN`.
    #[must_use]
    pub fn ipconfig(self, index: u8, config: &IpConfig) -> Self {
        self.set(&format!("ipconfig{index}"), config.to_string())
    }

    /// `agent`.
    #[must_use]
    pub fn agent(self, agent: &AgentConfig) -> Self {
        self.set("agent", agent.to_string())
    }

    /// `sshkeys`, percent-encoded once here (the form body encodes it again).
    #[must_use]
    pub fn sshkeys<I: IntoIterator<Item = S>, S: AsRef<str>>(self, keys: I) -> Self {
        self.set("sshkeys", encode_sshkeys(keys))
    }

    /// `cipassword`, kept redacted in `Debug`.
    #[must_use]
    pub fn cipassword(mut self, password: &Secret) -> Self {
        self.params.set_secret("cipassword", password.clone());
        self
    }

    /// `tags`, joined with `;`.
    #[must_use]
    pub fn tags<I: IntoIterator<Item = S>, S: AsRef<str>>(self, tags: I) -> Self {
        let joined: Vec<String> = tags
            .into_iter()
            .map(|tag| tag.as_ref().to_owned())
            .collect();
        self.set("tags", joined.join(";"))
    }

    /// Adds a key to `delete`.
    #[must_use]
    pub fn delete(mut self, key: &str) -> Self {
        self.delete.push(key.to_owned());
        self
    }

    /// `digest`: the update fails if the config changed since it was read.
    #[must_use]
    pub fn digest(self, digest: &str) -> Self {
        self.set("digest", digest)
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.params.names().all(|key| key == "digest")
    }

    /// The form parameters, `delete` joined with `,`.
    pub fn into_params(self) -> Params {
        let mut params = self.params;
        if !self.delete.is_empty() {
            params.set("delete", self.delete.join(","));
        }
        params
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
