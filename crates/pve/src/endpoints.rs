//! One pure function per endpoint sombrero uses: arguments in, [`Request`] out.
//!
//! Why: this is the whole surface the client can produce, in one place. Each function names
//! its method and path, encodes parameters the PVE way and picks the retry rule that is
//! safe for that endpoint. A test checks every one against the official schema.

use crate::request::{Method, Params, Request, RetryRule, path};
use crate::types::{ConfigUpdate, DiskSize, ResourceType, Upid};

fn get(segments: &[&str]) -> Request {
    Request::new(Method::Get, path(segments))
}

fn vm_path(node: &str, vmid: u64, rest: &[&str]) -> String {
    let vmid = vmid.to_string();
    let mut segments = vec!["nodes", node, "qemu", vmid.as_str()];
    segments.extend_from_slice(rest);
    path(segments)
}

fn task_dispatch(method: Method, path: String, params: Params) -> Request {
    Request::new(method, path)
        .with_params(params)
        .with_retry(RetryRule::TaskDispatch)
}

/// `GET /version`.
pub fn version() -> Request {
    get(&["version"])
}

/// `GET /access/permissions`: the caller's effective privileges, by path.
pub fn permissions() -> Request {
    get(&["access", "permissions"])
}

/// `GET /nodes`.
pub fn nodes() -> Request {
    get(&["nodes"])
}

/// `GET /nodes/{node}/status`.
pub fn node_status(node: &str) -> Request {
    get(&["nodes", node, "status"])
}

/// `GET /cluster/resources[?type=]`.
pub fn cluster_resources(filter: Option<ResourceType>) -> Request {
    let mut params = Params::new();
    if let Some(filter) = filter {
        params.set("type", filter.as_str());
    }
    get(&["cluster", "resources"]).with_params(params)
}

/// `GET /cluster/status`: the cluster (in a cluster) and each member, online or not.
pub fn cluster_status() -> Request {
    get(&["cluster", "status"])
}

/// `GET /cluster/nextid[?vmid=]`: the next free id, or (with `vmid`) 400 if it is taken.
pub fn next_id(check: Option<u64>) -> Request {
    let mut params = Params::new();
    if let Some(vmid) = check {
        params.set("vmid", vmid.to_string());
    }
    get(&["cluster", "nextid"]).with_params(params)
}

/// `GET /nodes/{node}/qemu`.
pub fn vm_list(node: &str) -> Request {
    get(&["nodes", node, "qemu"])
}

/// `POST /nodes/{node}/qemu`: create a VM (task `qmcreate`).
pub fn vm_create(node: &str, vmid: u64, config: ConfigUpdate) -> Request {
    let mut params = Params::new();
    params.set("vmid", vmid.to_string());
    params.extend(config.into_params());
    task_dispatch(Method::Post, path(["nodes", node, "qemu"]), params)
}

/// `GET /nodes/{node}/qemu/{vmid}/config` (`current=1`: without pending changes).
pub fn vm_config(node: &str, vmid: u64, current: bool) -> Request {
    let mut params = Params::new();
    if current {
        params.set_bool("current", true);
    }
    Request::new(Method::Get, vm_path(node, vmid, &["config"])).with_params(params)
}

/// Whether an update allocates a new volume (`scsi1=local-lvm:10`): repeating it would
/// allocate twice, so it is not idempotent.
fn allocates_volume(params: &Params) -> bool {
    const BUSES: [&str; 5] = ["scsi", "virtio", "sata", "ide", "efidisk"];
    params.names().any(|name| {
        let is_disk = BUSES.iter().any(|bus| {
            name.strip_prefix(bus)
                .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
        });
        is_disk
            && params.get(name).is_some_and(|value| {
                let volume = value.split(',').next().unwrap_or_default();
                volume
                    .split_once(':')
                    .is_some_and(|(_, size)| size.parse::<f64>().is_ok())
            })
    })
}

/// `PUT /nodes/{node}/qemu/{vmid}/config`: synchronous update. Repeated after a lost
/// answer only when it is idempotent (no `digest`, no volume allocation).
pub fn vm_config_set(node: &str, vmid: u64, update: ConfigUpdate) -> Request {
    let params = update.into_params();
    let retry = if params.get("digest").is_none() && !allocates_volume(&params) {
        RetryRule::Idempotent
    } else {
        RetryRule::TaskDispatch
    };
    Request::new(Method::Put, vm_path(node, vmid, &["config"]))
        .with_params(params)
        .with_retry(retry)
}

/// `POST /nodes/{node}/qemu/{vmid}/config`: asynchronous update (task `qmconfig`).
pub fn vm_config_set_async(node: &str, vmid: u64, update: ConfigUpdate) -> Request {
    task_dispatch(
        Method::Post,
        vm_path(node, vmid, &["config"]),
        update.into_params(),
    )
}

/// Options of `POST /nodes/{node}/qemu/{vmid}/clone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloneOptions {
    pub newid: u64,
    /// The new VM's name; also how a retried clone recognises its own VM.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Full clone; PVE's default is "full unless the source is a template".
    pub full: Option<bool>,
    /// Target storage (full clones only).
    pub storage: Option<String>,
    pub pool: Option<String>,
    /// Target node (needs shared storage).
    pub target: Option<String>,
}

/// `POST /nodes/{node}/qemu/{vmid}/clone` (task `qmclone`, whose id is the SOURCE vmid).
pub fn vm_clone(node: &str, source: u64, options: &CloneOptions) -> Request {
    let mut params = Params::new();
    params.set("newid", options.newid.to_string());
    for (name, value) in [
        ("name", &options.name),
        ("description", &options.description),
        ("storage", &options.storage),
        ("pool", &options.pool),
        ("target", &options.target),
    ] {
        if let Some(value) = value {
            params.set(name, value.clone());
        }
    }
    if let Some(full) = options.full {
        params.set_bool("full", full);
    }
    task_dispatch(Method::Post, vm_path(node, source, &["clone"]), params)
}

/// Options of `POST /nodes/{node}/qemu/{vmid}/migrate`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// The node to move the VM to.
    pub target: String,
    /// Live migration of a running VM (PVE refuses a running VM without it).
    pub online: Option<bool>,
    /// Move local disks of a running VM too (live storage migration).
    pub with_local_disks: Option<bool>,
    /// Storage map: one storage id for all, `SOURCE:TARGET,...`, or `1` (each to itself).
    pub targetstorage: Option<String>,
}

/// `POST /nodes/{node}/qemu/{vmid}/migrate` (task `qmigrate`, on the source node).
pub fn vm_migrate(node: &str, vmid: u64, options: &MigrateOptions) -> Request {
    let mut params = Params::new();
    params.set("target", options.target.clone());
    if let Some(online) = options.online {
        params.set_bool("online", online);
    }
    if let Some(with_local_disks) = options.with_local_disks {
        params.set_bool("with-local-disks", with_local_disks);
    }
    if let Some(targetstorage) = &options.targetstorage {
        params.set("targetstorage", targetstorage.clone());
    }
    task_dispatch(Method::Post, vm_path(node, vmid, &["migrate"]), params)
}

/// `POST /nodes/{node}/qemu/{vmid}/template` (task `qmtemplate`).
pub fn vm_template(node: &str, vmid: u64) -> Request {
    task_dispatch(
        Method::Post,
        vm_path(node, vmid, &["template"]),
        Params::new(),
    )
}

/// The `size` of a resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTo {
    /// An absolute size (`32G`): idempotent.
    Absolute(DiskSize),
    /// Grow by (`+8G`): not idempotent.
    Grow(DiskSize),
}

/// `PUT /nodes/{node}/qemu/{vmid}/resize` (task `resize` since PVE 8; `null` before).
pub fn vm_resize(
    node: &str,
    vmid: u64,
    disk: &str,
    size: ResizeTo,
    digest: Option<&str>,
) -> Request {
    let mut params = Params::new();
    params.set("disk", disk);
    let retry = match size {
        ResizeTo::Absolute(size) => {
            params.set("size", size.to_string());
            RetryRule::Idempotent
        }
        ResizeTo::Grow(size) => {
            params.set("size", format!("+{size}"));
            RetryRule::TaskDispatch
        }
    };
    if let Some(digest) = digest {
        params.set("digest", digest);
    }
    Request::new(Method::Put, vm_path(node, vmid, &["resize"]))
        .with_params(params)
        .with_retry(retry)
}

/// `DELETE /nodes/{node}/qemu/{vmid}` (task `qmdestroy`); `purge` also removes it from
/// backup jobs, replication and HA.
pub fn vm_delete(node: &str, vmid: u64, purge: bool) -> Request {
    let mut params = Params::new();
    if purge {
        params.set_bool("purge", true);
        params.set_bool("destroy-unreferenced-disks", true);
    }
    task_dispatch(Method::Delete, vm_path(node, vmid, &[]), params)
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
pub fn vm_status(node: &str, vmid: u64) -> Request {
    Request::new(Method::Get, vm_path(node, vmid, &["status", "current"]))
}

/// A power action under `POST /nodes/{node}/qemu/{vmid}/status/...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    /// Hard stop.
    Stop,
    /// ACPI shutdown; `force_stop` stops the VM if it does not shut down within `timeout`.
    Shutdown {
        timeout: Option<u32>,
        force_stop: bool,
    },
    Reboot,
}

/// `POST /nodes/{node}/qemu/{vmid}/status/{start|stop|shutdown|reboot}` (tasks `qmstart`,
/// `qmstop`, `qmshutdown`, `qmreboot`).
pub fn vm_power(node: &str, vmid: u64, action: PowerAction) -> Request {
    let mut params = Params::new();
    let name = match action {
        PowerAction::Start => "start",
        PowerAction::Stop => "stop",
        PowerAction::Reboot => "reboot",
        PowerAction::Shutdown {
            timeout,
            force_stop,
        } => {
            if let Some(timeout) = timeout {
                params.set("timeout", timeout.to_string());
            }
            if force_stop {
                params.set_bool("forceStop", true);
            }
            "shutdown"
        }
    };
    task_dispatch(Method::Post, vm_path(node, vmid, &["status", name]), params)
}

/// `POST /nodes/{node}/qemu/{vmid}/agent/ping`.
pub fn agent_ping(node: &str, vmid: u64) -> Request {
    Request::new(Method::Post, vm_path(node, vmid, &["agent", "ping"]))
        .with_retry(RetryRule::Idempotent)
}

/// `GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces`.
pub fn agent_interfaces(node: &str, vmid: u64) -> Request {
    Request::new(
        Method::Get,
        vm_path(node, vmid, &["agent", "network-get-interfaces"]),
    )
}

/// `POST /nodes/{node}/qemu/{vmid}/agent/exec` (`command` as repeated keys). Runs a
/// command, so it is never repeated after a lost answer.
pub fn agent_exec(node: &str, vmid: u64, command: &[&str], input: Option<&str>) -> Request {
    let mut params = Params::new();
    for part in command {
        params.push("command", *part);
    }
    if let Some(input) = input {
        params.set("input-data", input);
    }
    Request::new(Method::Post, vm_path(node, vmid, &["agent", "exec"]))
        .with_params(params)
        .with_retry(RetryRule::NeverSentOnly)
}

/// `GET /nodes/{node}/qemu/{vmid}/agent/exec-status?pid=`.
pub fn agent_exec_status(node: &str, vmid: u64, pid: u64) -> Request {
    let mut params = Params::new();
    params.set("pid", pid.to_string());
    Request::new(Method::Get, vm_path(node, vmid, &["agent", "exec-status"])).with_params(params)
}

/// `GET /nodes/{node}/qemu/{vmid}/agent/file-read?file=`.
pub fn agent_file_read(node: &str, vmid: u64, file: &str) -> Request {
    let mut params = Params::new();
    params.set("file", file);
    Request::new(Method::Get, vm_path(node, vmid, &["agent", "file-read"])).with_params(params)
}

/// `GET /nodes/{node}/qemu/{vmid}/cloudinit`: cloud-init keys with pending changes.
pub fn vm_cloudinit(node: &str, vmid: u64) -> Request {
    Request::new(Method::Get, vm_path(node, vmid, &["cloudinit"]))
}

/// Filters of `GET /nodes/{node}/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub vmid: Option<u64>,
    pub typefilter: Option<String>,
    pub limit: Option<u32>,
    /// `active`, `archive` or `all`.
    pub source: Option<String>,
}

/// `GET /nodes/{node}/tasks`.
pub fn tasks(node: &str, filter: &TaskFilter) -> Request {
    let mut params = Params::new();
    if let Some(vmid) = filter.vmid {
        params.set("vmid", vmid.to_string());
    }
    if let Some(kind) = &filter.typefilter {
        params.set("typefilter", kind.clone());
    }
    if let Some(limit) = filter.limit {
        params.set("limit", limit.to_string());
    }
    if let Some(source) = &filter.source {
        params.set("source", source.clone());
    }
    get(&["nodes", node, "tasks"]).with_params(params)
}

/// `GET /nodes/{node}/tasks/{upid}/status` (node taken from the UPID).
pub fn task_status(upid: &Upid) -> Request {
    get(&["nodes", upid.node(), "tasks", upid.as_str(), "status"])
}

/// `GET /nodes/{node}/tasks/{upid}/log?start=&limit=`.
pub fn task_log(upid: &Upid, start: u64, limit: u64) -> Request {
    let mut params = Params::new();
    params
        .set("start", start.to_string())
        .set("limit", limit.to_string());
    get(&["nodes", upid.node(), "tasks", upid.as_str(), "log"]).with_params(params)
}

/// `GET /nodes/{node}/storage[?content=]`.
pub fn storage_list(node: &str, content: Option<&str>) -> Request {
    let mut params = Params::new();
    if let Some(content) = content {
        params.set("content", content);
    }
    get(&["nodes", node, "storage"]).with_params(params)
}

/// `GET /nodes/{node}/storage/{storage}/content[?content=]`.
pub fn storage_content(node: &str, storage: &str, content: Option<&str>) -> Request {
    let mut params = Params::new();
    if let Some(content) = content {
        params.set("content", content);
    }
    get(&["nodes", node, "storage", storage, "content"]).with_params(params)
}

/// What `download-url` fetches and how it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUrl {
    /// `iso`, `vztmpl` or `import` (cloud images for `import-from`).
    pub content: String,
    /// The file name in the storage (PVE normalizes it).
    pub filename: String,
    /// `https?://...`; PVE itself fetches it, from the node.
    pub url: String,
    /// The expected SHA-256 (hex); PVE fails the task on a mismatch.
    pub sha256: Option<String>,
}

/// `POST /nodes/{node}/storage/{storage}/download-url` (task `download`).
pub fn download_url(node: &str, storage: &str, download: &DownloadUrl) -> Request {
    let mut params = Params::new();
    params
        .set("content", download.content.clone())
        .set("filename", download.filename.clone())
        .set("url", download.url.clone());
    if let Some(sha256) = &download.sha256 {
        params
            .set("checksum", sha256.clone())
            .set("checksum-algorithm", "sha256");
    }
    task_dispatch(
        Method::Post,
        path(["nodes", node, "storage", storage, "download-url"]),
        params,
    )
}

#[cfg(test)]
#[path = "endpoints_tests.rs"]
mod tests;
