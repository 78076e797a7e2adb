//! Storages and their content.
//!
//! Why: clients list storages to pick where disks go (`local-lvm` for images, `local` for
//! ISOs, imports and snippets) and read storage content to find the cloud image to import.
//! The two storages of a default PVE install are fixed and every node has its own; a
//! cluster also has one shared storage (`shared`, type `nfs`, PVE's `shared: 1`) whose
//! volumes every node sees, which is what cross-node clones and migrations without disk
//! copies need (decision 110). The volumes live in the state ([`State::volume`]).

use serde_json::{Value, json};

use super::Shared;
use super::state::{State, Volume};
use crate::api::{ApiError, ApiRequest, ApiResult};

/// One configured storage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StorageDefinition {
    pub id: &'static str,
    pub kind: &'static str,
    pub content: &'static str,
    pub total: u64,
    pub default_format: &'static str,
    /// PVE's `shared` flag: one storage that every node sees.
    pub shared: bool,
}

const GIB: u64 = 1024 * 1024 * 1024;

/// The storages of a default PVE install.
pub(crate) const STORAGES: [StorageDefinition; 2] = [
    StorageDefinition {
        id: "local",
        kind: "dir",
        content: "backup,import,iso,snippets,vztmpl",
        total: 100 * GIB,
        default_format: "qcow2",
        shared: false,
    },
    StorageDefinition {
        id: "local-lvm",
        kind: "lvmthin",
        content: "images,rootdir",
        total: 350 * GIB,
        default_format: "raw",
        shared: false,
    },
];

/// The id of the cluster's shared storage.
pub(crate) const SHARED_STORAGE_ID: &str = "shared";

/// The cluster's shared storage (an NFS export in PVE terms), present per
/// [`super::NodeOptions::has_shared_storage`].
pub(crate) const SHARED_STORAGE: StorageDefinition = StorageDefinition {
    id: SHARED_STORAGE_ID,
    kind: "nfs",
    content: "images,iso,snippets",
    total: 1024 * GIB,
    default_format: "qcow2",
    shared: true,
};

/// Whether `id` names the shared storage (its volumes are the same on every node).
pub(crate) fn is_shared(id: &str) -> bool {
    id == SHARED_STORAGE_ID
}

/// The storages configured in this lab's cluster (the same list on every node).
pub(crate) fn definitions(state: &State) -> Vec<StorageDefinition> {
    let mut storages = STORAGES.to_vec();
    if state.has_shared_storage {
        storages.push(SHARED_STORAGE);
    }
    storages
}

/// A configured storage by id.
pub(crate) fn definition(state: &State, id: &str) -> Option<StorageDefinition> {
    definitions(state)
        .into_iter()
        .find(|storage| storage.id == id)
}

/// PVE's error for an unknown storage.
pub(crate) fn missing_storage(id: &str) -> String {
    format!("storage '{id}' does not exist")
}

/// Bytes used on `node`'s view of a storage (sum of volume sizes; lvmthin would be thin,
/// this is enough).
pub(crate) fn used(state: &State, node: &str, id: &str) -> u64 {
    state.storage_volumes(node, id).map_or(0, |volumes| {
        volumes.values().map(|volume| volume.size).sum()
    })
}

/// `GET /nodes/{node}/storage`.
pub(crate) fn list(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let content_filter: Option<Vec<&str>> =
        super::param_str(request, "content").map(|text| text.split(',').collect());
    let storage_filter = super::param_str(request, "storage");
    let with_format = super::param_bool(request, "format").unwrap_or(false);
    let node = request.path("node");
    shared.read(|state| {
        let items: Vec<Value> = definitions(state)
            .iter()
            .filter(|storage| storage_filter.is_none_or(|id| id == storage.id))
            .filter(|storage| {
                content_filter.as_ref().is_none_or(|wanted| {
                    wanted
                        .iter()
                        .any(|kind| storage.content.split(',').any(|have| have == *kind))
                })
            })
            .map(|storage| {
                let used = used(state, node, storage.id).min(storage.total);
                #[expect(clippy::cast_precision_loss, reason = "a fraction for display")]
                let fraction = used as f64 / storage.total as f64;
                let mut item = json!({
                    "storage": storage.id, "type": storage.kind, "content": storage.content,
                    "active": 1, "enabled": 1, "shared": u8::from(storage.shared),
                    "total": storage.total, "used": used, "avail": storage.total - used,
                    "used_fraction": fraction,
                });
                if with_format {
                    let supported = if storage.kind == "dir" || storage.kind == "nfs" {
                        json!(["raw", "qcow2", "vmdk", "subvol"])
                    } else {
                        json!(["raw"])
                    };
                    item["formats"] =
                        json!({"default": storage.default_format, "supported": supported});
                    item["select_existing"] = json!(0);
                }
                item
            })
            .collect();
        Ok(Value::Array(items))
    })
}

/// `GET /nodes/{node}/storage/{storage}`: the storage's index.
pub(crate) fn index(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let id = request.path("storage");
    shared
        .read(|state| definition(state, id))
        .ok_or_else(|| ApiError::internal(missing_storage(id)))?;
    Ok(json!([
        {"subdir": "content"}, {"subdir": "download-url"}, {"subdir": "file-restore"},
        {"subdir": "import-metadata"}, {"subdir": "prunebackups"}, {"subdir": "rrd"},
        {"subdir": "rrddata"}, {"subdir": "status"}, {"subdir": "upload"},
    ]))
}

fn volume_json(storage: &str, name: &str, volume: &Volume) -> Value {
    let mut item = json!({
        "volid": format!("{storage}:{name}"), "format": volume.format, "size": volume.size,
        "content": volume.content, "ctime": volume.ctime,
    });
    if let Some(vmid) = volume.vmid {
        item["vmid"] = json!(vmid);
        item["used"] = json!(volume.size / 10);
    }
    if let Some(parent) = &volume.parent {
        item["parent"] = json!(parent);
    }
    item
}

/// `GET /nodes/{node}/storage/{storage}/content?content&vmid`.
pub(crate) fn content(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let id = request.path("storage");
    shared
        .read(|state| definition(state, id))
        .ok_or_else(|| ApiError::internal(missing_storage(id)))?;
    let node = request.path("node");
    let content = super::param_str(request, "content");
    let vmid = super::param_u64(request, "vmid");
    shared.read(|state| {
        let items: Vec<Value> = state
            .storage_volumes(node, id)
            .into_iter()
            .flatten()
            .filter(|(_, volume)| content.is_none_or(|kind| volume.content == kind))
            .filter(|(_, volume)| vmid.is_none_or(|vmid| volume.vmid.map(u64::from) == Some(vmid)))
            .map(|(name, volume)| volume_json(id, name, volume))
            .collect();
        Ok(Value::Array(items))
    })
}

/// `GET /nodes/{node}/storage/{storage}/content/{volume}`: one volume's attributes.
pub(crate) fn volume(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let id = request.path("storage");
    shared
        .read(|state| definition(state, id))
        .ok_or_else(|| ApiError::internal(missing_storage(id)))?;
    let node = request.path("node");
    let requested = request.path("volume");
    let name = requested
        .strip_prefix(&format!("{id}:"))
        .unwrap_or(requested);
    shared.read(|state| {
        let volume = state
            .storage_volumes(node, id)
            .and_then(|volumes| volumes.get(name))
            .ok_or_else(|| ApiError::internal(format!("volume '{id}:{name}' does not exist")))?;
        let mut item = json!({
            "format": volume.format, "size": volume.size, "used": volume.size / 10,
            "path": format!("/dev/pve/{name}"),
        });
        if volume.content == "import" || volume.content == "iso" {
            item["path"] = json!(format!("/var/lib/vz/{name}"));
        }
        Ok(item)
    })
}
