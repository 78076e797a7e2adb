//! Typed views of the property strings sombrero reads and writes: `netN`, disks, `agent`,
//! `memory` (`ipconfigN` lives in [`super::ipconfig`]).
//!
//! Why typed views over a lossless [`PropertyString`]: the client must read a MAC address
//! or a disk size reliably and change one key (a size, a bridge) without dropping options it
//! does not model (`discard=on`, `queues=4`, ...). Each view validates the keys it owns and
//! prints every other entry back unchanged.

use std::fmt;
use std::str::FromStr;

use super::property::{PropertyError, PropertyString, bool_text, parse_bool};
use super::size::DiskSize;

/// Network card models PVE accepts (the schema's `net[n].model` enum).
pub const NET_MODELS: [&str; 14] = [
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];

pub(super) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> PropertyError {
    PropertyError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// A `netN` value, e.g. `virtio=BC:24:11:2A:3B:4C,bridge=vmbr0,firewall=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    model: String,
    macaddr: Option<String>,
    /// Every other entry, in order.
    rest: PropertyString,
}

impl NetDevice {
    /// A NIC of `model` on `bridge`; PVE generates the MAC.
    pub fn new(model: &str, bridge: &str) -> Self {
        let mut rest = PropertyString::new();
        rest.set("bridge", bridge);
        Self {
            model: model.to_owned(),
            macaddr: None,
            rest,
        }
    }

    /// The card model, e.g. `virtio`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The MAC address, upper case as PVE prints it.
    pub fn macaddr(&self) -> Option<&str> {
        self.macaddr.as_deref()
    }

    /// Whether `mac` is this NIC's address (case-insensitive, as guests report lower case).
    pub fn has_mac(&self, mac: &str) -> bool {
        self.macaddr
            .as_deref()
            .is_some_and(|own| own.eq_ignore_ascii_case(mac.trim()))
    }

    /// The bridge, e.g. `vmbr0`.
    pub fn bridge(&self) -> Option<&str> {
        self.rest.get("bridge")
    }

    /// The VLAN tag.
    pub fn tag(&self) -> Option<u16> {
        self.rest.get("tag").and_then(|tag| tag.parse().ok())
    }

    /// Whether the PVE firewall filters this NIC.
    pub fn firewall(&self) -> bool {
        self.rest
            .get("firewall")
            .is_some_and(|value| parse_bool("firewall", value).unwrap_or(false))
    }

    /// Sets or replaces an option such as `bridge`, `tag`, `firewall`, `queues`.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.rest.set(key, value);
        self
    }

    /// Sets the firewall flag (printed `1`/`0`).
    pub fn set_firewall(&mut self, enabled: bool) -> &mut Self {
        self.set("firewall", bool_text(enabled))
    }
}

impl FromStr for NetDevice {
    type Err = PropertyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let property: PropertyString = text.parse()?;
        let mut model = None;
        let mut macaddr = None;
        let mut rest = PropertyString::new();
        for entry in property.entries() {
            match entry.key.as_deref() {
                None | Some("model") => model = Some(entry.value.clone()),
                Some("macaddr") => macaddr = Some(entry.value.clone()),
                Some(key) if NET_MODELS.contains(&key) => {
                    model = Some(key.to_owned());
                    if !entry.value.is_empty() {
                        macaddr = Some(entry.value.clone());
                    }
                }
                Some(key) => rest.push(Some(key), entry.value.clone()),
            }
        }
        let model = model.ok_or_else(|| PropertyError::Missing {
            text: text.to_owned(),
            missing: "a network card model",
        })?;
        if !NET_MODELS.contains(&model.as_str()) {
            return Err(invalid("model", &model, "unknown network card model"));
        }
        if let Some(mac) = &macaddr {
            let valid = mac.split(':').count() == 6
                && mac
                    .split(':')
                    .all(|octet| octet.len() == 2 && octet.bytes().all(|b| b.is_ascii_hexdigit()));
            if !valid {
                return Err(invalid("macaddr", mac, "expected XX:XX:XX:XX:XX:XX"));
            }
        }
        Ok(Self {
            model,
            macaddr,
            rest,
        })
    }
}

impl fmt::Display for NetDevice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.macaddr {
            Some(mac) => write!(formatter, "{}={mac}", self.model)?,
            None => write!(formatter, "model={}", self.model)?,
        }
        if !self.rest.entries().is_empty() {
            write!(formatter, ",{}", self.rest)?;
        }
        Ok(())
    }
}

/// A disk value (`scsiN`, `virtioN`, `ideN`, `sataN`, `efidisk0`), e.g.
/// `local-lvm:vm-150-disk-0,discard=on,size=32G`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    property: PropertyString,
}

impl Disk {
    /// A disk backed by `volume` (`STORAGE:VOLUME`, or `STORAGE:SIZE_IN_GIB` to allocate).
    pub fn new(volume: &str) -> Self {
        let mut property = PropertyString::new();
        property.push(None, volume);
        Self { property }
    }

    /// The backing volume, e.g. `local-lvm:vm-150-disk-0` or `local-lvm:cloudinit`.
    pub fn volume(&self) -> &str {
        self.property
            .bare()
            .or_else(|| self.property.get("file"))
            .unwrap_or_default()
    }

    /// The recorded size (`size=`), informational in PVE but what resize compares against.
    ///
    /// # Errors
    /// When `size=` is present but not a size.
    pub fn size(&self) -> Result<Option<DiskSize>, PropertyError> {
        self.property
            .get("size")
            .map(|text| {
                text.parse().map_err(|error: super::size::SizeParseError| {
                    invalid("size", text, error.to_string())
                })
            })
            .transpose()
    }

    /// `media=cdrom` or the like.
    pub fn media(&self) -> Option<&str> {
        self.property.get("media")
    }

    /// Whether this is a cloud-init drive (`STORAGE:cloudinit` or `vm-N-cloudinit`).
    pub fn is_cloudinit(&self) -> bool {
        self.volume().contains("cloudinit")
    }

    /// Any option by key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.property.get(key)
    }

    /// Sets or replaces an option, e.g. `discard=on`, `ssd=1`.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.property.set(key, value);
        self
    }
}

impl FromStr for Disk {
    type Err = PropertyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let disk = Self {
            property: text.parse()?,
        };
        if disk.volume().is_empty() {
            return Err(PropertyError::Missing {
                text: text.to_owned(),
                missing: "a volume",
            });
        }
        disk.size()?;
        Ok(disk)
    }
}

impl fmt::Display for Disk {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.property.fmt(formatter)
    }
}

pub(super) fn parse_field<T: FromStr>(key: &str, value: &str) -> Result<T, PropertyError>
where
    T::Err: fmt::Display,
{
    value
        .parse()
        .map_err(|error: T::Err| invalid(key, value, error.to_string()))
}

/// The `agent` value, e.g. `1` or `enabled=1,fstrim_cloned_disks=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    enabled: bool,
    rest: PropertyString,
}

impl AgentConfig {
    /// `agent=1` or `agent=0`.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            rest: PropertyString::new(),
        }
    }

    /// Whether the guest agent channel is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

impl FromStr for AgentConfig {
    type Err = PropertyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let property: PropertyString = text.parse()?;
        let mut enabled = false;
        let mut rest = PropertyString::new();
        for entry in property.entries() {
            match entry.key.as_deref() {
                None | Some("enabled") => enabled = parse_bool("enabled", &entry.value)?,
                Some(key) => rest.push(Some(key), entry.value.clone()),
            }
        }
        Ok(Self { enabled, rest })
    }
}

impl fmt::Display for AgentConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(bool_text(self.enabled))?;
        if !self.rest.entries().is_empty() {
            write!(formatter, ",{}", self.rest)?;
        }
        Ok(())
    }
}

/// The `memory` value: maximum RAM in MiB, `2048` or `current=2048`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// MiB.
    pub current: u64,
}

impl FromStr for Memory {
    type Err = PropertyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let property: PropertyString = text.parse()?;
        let value = property
            .bare()
            .or_else(|| property.get("current"))
            .ok_or_else(|| PropertyError::Missing {
                text: text.to_owned(),
                missing: "a memory size",
            })?;
        Ok(Self {
            current: parse_field("current", value)?,
        })
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.current)
    }
}

#[cfg(test)]
#[path = "devices_tests.rs"]
mod tests;
