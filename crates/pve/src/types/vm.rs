//! Response types for VMs, nodes, cluster resources and storage.
//!
//! Why hand-written rather than generated: sombrero reads a handful of fields from each
//! answer, and PVE encodes many of them loosely (numbers as strings, booleans as 0/1).
//! Every field here goes through the lenient readers and unknown fields are ignored, so a
//! newer PVE adding fields never breaks a deployment.

use serde::{Deserialize, Serialize};

use crate::lenient;

/// A VM's run state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum VmState {
    Running,
    Stopped,
    Paused,
    #[serde(other)]
    Unknown,
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmStatus {
    #[serde(deserialize_with = "lenient::u64")]
    pub vmid: u64,
    pub status: VmState,
    #[serde(default)]
    pub name: Option<String>,
    /// QEMU's own view (`running`, `paused`, `prelaunch`, ...).
    #[serde(default)]
    pub qmpstatus: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    /// Whether the config enables the guest agent.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub agent: bool,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub template: bool,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub uptime: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxdisk: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_f64")]
    pub cpus: Option<f64>,
}

/// One entry of `GET /nodes/{node}/qemu`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSummary {
    #[serde(deserialize_with = "lenient::u64")]
    pub vmid: u64,
    pub status: VmState,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub template: bool,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxdisk: Option<u64>,
}

/// One entry of `GET /cluster/resources`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterResource {
    /// `node/pve1`, `qemu/150`, `storage/pve1/local-lvm`, ...
    pub id: String,
    /// `node`, `qemu`, `lxc`, `storage`, `pool`, `sdn`, ...
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub vmid: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub storage: Option<String>,
    /// [storage] Whether every node sees the same storage (PVE's `shared`).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub shared: bool,
    /// [storage] The content types it holds (`images,rootdir`).
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub template: bool,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxdisk: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub disk: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxmem: Option<u64>,
    /// Memory in use (bytes): a node's used memory, a VM's current memory.
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub mem: Option<u64>,
}

/// The `type` filter of `GET /cluster/resources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceType {
    Vm,
    Storage,
    Node,
    Sdn,
}

impl ResourceType {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vm => "vm",
            Self::Storage => "storage",
            Self::Node => "node",
            Self::Sdn => "sdn",
        }
    }
}

/// One entry of `GET /nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub node: String,
    /// `online`, `offline`, `unknown`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_f64")]
    pub cpu: Option<f64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxcpu: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub mem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub maxmem: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub uptime: Option<u64>,
    /// SHA-256 fingerprint of the node's certificate, colon hex.
    #[serde(default)]
    pub ssl_fingerprint: Option<String>,
}

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub version: String,
    pub release: String,
    pub repoid: String,
}

/// One entry of `GET /nodes/{node}/storage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageSummary {
    pub storage: String,
    #[serde(rename = "type")]
    pub storage_type: String,
    /// Comma-separated content types, e.g. `images,rootdir`.
    #[serde(default)]
    pub content: String,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub active: bool,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub enabled: bool,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub shared: bool,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub avail: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub total: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub used: Option<u64>,
}

impl StorageSummary {
    /// Whether `content` lists `kind` (e.g. `images`, `iso`, `snippets`).
    pub fn holds(&self, kind: &str) -> bool {
        self.content.split(',').any(|item| item.trim() == kind)
    }
}

/// One entry of `GET /nodes/{node}/storage/{storage}/content`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageContent {
    pub volid: String,
    pub content: String,
    pub format: String,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub vmid: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub ctime: Option<u64>,
}

/// One entry of `GET /nodes/{node}/qemu/{vmid}/cloudinit` (pending cloud-init changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudinitEntry {
    pub key: String,
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub pending: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub delete: bool,
}

#[cfg(test)]
mod tests {
    use super::{ClusterResource, StorageSummary, VmState, VmStatus};
    use serde_json::json;

    #[test]
    fn decodes_loosely_typed_answers() {
        let status: VmStatus = serde_json::from_value(json!({
            "vmid": "150", "status": "running", "agent": 1, "qmpstatus": "running",
            "uptime": 12, "cpus": 2, "maxmem": 2_147_483_648_u64, "extra": [1]
        }))
        .unwrap();
        assert_eq!(status.vmid, 150);
        assert_eq!(status.status, VmState::Running);
        assert!(status.agent);
        let odd: VmStatus =
            serde_json::from_value(json!({"vmid": 1, "status": "migrating"})).unwrap();
        assert_eq!(odd.status, VmState::Unknown);
        let resource: ClusterResource = serde_json::from_value(json!({
            "id": "qemu/9000", "type": "qemu", "vmid": 9000, "template": 1, "node": "pve1"
        }))
        .unwrap();
        assert!(resource.template);
        let storage: StorageSummary = serde_json::from_value(json!({
            "storage": "local", "type": "dir", "content": "iso,vztmpl,snippets", "active": 1, "enabled": "1"
        }))
        .unwrap();
        assert!(storage.holds("snippets") && !storage.holds("images"));
        assert!(storage.enabled);
    }
}
