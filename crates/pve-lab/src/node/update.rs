//! Config updates: `PUT .../config` (synchronous) and `POST .../config` (a `qmconfig` task).
//!
//! Why: this is qemu-server's `update_vm_api`: before forking, the `digest` and lock checks
//! (HTTP 500 on failure); then, in the worker, `delete=` entries (an unset key only warns,
//! so a POST task ends `WARNINGS: N`), new values into `[PENDING]`, boot-order upkeep, and
//! finally the pending changes applied (stopped VM) or hot-plugged where PVE can (running
//! VM; the rest stays pending until the next restart).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::apply::apply;
use super::cloudinit::percent_decode;
use super::config::{self, config_string, is_drive_key};
use super::create::check_drive;
use super::params::{internal, vmid};
use super::state::State;
use super::tasks::{self, TaskContext, TaskSpec};
use super::vm::memory_bytes;
use super::{Shared, param_str, param_u64};
use crate::api::{ApiError, ApiRequest, ApiResult};

/// Parameters of the config endpoints that are not config keys.
const CONTROL: &[&str] = &[
    "node",
    "vmid",
    "delete",
    "revert",
    "digest",
    "skiplock",
    "force",
    "background_delay",
];

/// Non-indexed config keys (from the schema's config GET returns).
const KEYS: &[&str] = &[
    "acpi",
    "affinity",
    "agent",
    "allow-ksm",
    "amd-sev",
    "arch",
    "args",
    "audio0",
    "autostart",
    "balloon",
    "bios",
    "boot",
    "bootdisk",
    "cdrom",
    "cicustom",
    "cipassword",
    "citype",
    "ciupgrade",
    "ciuser",
    "cores",
    "cpu",
    "cpulimit",
    "cpuunits",
    "description",
    "efidisk0",
    "freeze",
    "hookscript",
    "hotplug",
    "hugepages",
    "intel-tdx",
    "ivshmem",
    "keephugepages",
    "keyboard",
    "kvm",
    "localtime",
    "lock",
    "machine",
    "memory",
    "meta",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "nameserver",
    "numa",
    "onboot",
    "ostype",
    "protection",
    "reboot",
    "rng0",
    "scsihw",
    "searchdomain",
    "shares",
    "smbios1",
    "smp",
    "sockets",
    "spice_enhancements",
    "sshkeys",
    "startdate",
    "startup",
    "tablet",
    "tags",
    "tdf",
    "template",
    "tpmstate0",
    "vcpus",
    "vga",
    "vmgenid",
    "vmstate",
    "vmstatestorage",
    "watchdog",
];

/// Indexed key prefixes (`net0`, `scsi3`, ...).
const INDEXED: &[&str] = &[
    "hostpci", "ide", "ipconfig", "net", "numa", "parallel", "sata", "scsi", "serial", "unused",
    "usb", "virtio", "virtiofs",
];

fn option_exists(key: &str) -> bool {
    KEYS.contains(&key)
        || INDEXED
            .iter()
            .any(|prefix| config::indexed(key, prefix).is_some())
}

/// A validated update request.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    pub vmid: u32,
    pub node: String,
    pub delete: Vec<String>,
    pub revert: Vec<String>,
    pub set: BTreeMap<String, String>,
}

fn split_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split([',', ';', ' ', '\0'])
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The parameter checks PVE makes before taking the lock (400s and 500s).
fn parse(request: &ApiRequest) -> Result<Update, ApiError> {
    let vmid = vmid(request)?;
    let set: BTreeMap<String, String> = request
        .params
        .iter()
        .filter(|(key, _)| !CONTROL.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), config_string(value)))
        .collect();
    let revert = split_list(param_str(request, "revert"));
    let mut delete = Vec::new();
    for key in split_list(param_str(request, "delete")) {
        let key = if key == "cdrom" {
            "ide2".to_owned()
        } else {
            key
        };
        if set.contains_key(&key) {
            return Err(ApiError::param(
                "delete",
                format!("you can't use '-{key}' and -delete {key}' at the same time"),
            ));
        }
        if !option_exists(&key) {
            return Err(ApiError::param("delete", format!("unknown option '{key}'")));
        }
        delete.push(key);
    }
    if let Some(keys) = set.get("sshkeys") {
        let decoded = percent_decode(keys);
        let valid = decoded
            .lines()
            .filter(|line| !line.trim().is_empty())
            .all(|line| {
                let mut parts = line.split_whitespace();
                let kind = parts.next().unwrap_or_default();
                let known = kind.starts_with("ssh-")
                    || kind.starts_with("ecdsa-")
                    || kind.starts_with("sk-");
                known && parts.next().is_some_and(|blob| blob.len() > 16)
            });
        if !valid {
            return Err(internal("SSH public key validation error".into()));
        }
    }
    if delete.is_empty() && revert.is_empty() && set.is_empty() {
        return Err(internal("no options specified".into()));
    }
    Ok(Update {
        vmid,
        node: request.path("node").to_owned(),
        delete,
        revert,
        set,
    })
}

/// The checks under the lock, before the worker: exists, digest, lock, balloon.
fn precheck(
    state: &State,
    update: &Update,
    digest: Option<&str>,
    skiplock: bool,
) -> Result<(), ApiError> {
    let vm = state.vm(&update.node, update.vmid).map_err(internal)?;
    if digest.is_some_and(|digest| digest != config::digest(vm)) {
        return Err(internal(
            "checksum mismatch (file change by other user?)".into(),
        ));
    }
    if !skiplock {
        vm.check_lock().map_err(internal)?;
    }
    if update.set.contains_key("memory") || update.set.contains_key("balloon") {
        let mut merged = super::vm::effective_config(vm);
        merged.extend(update.set.clone());
        let balloon: u64 = merged
            .get("balloon")
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        if balloon > 0 && balloon.saturating_mul(1024 * 1024) > memory_bytes(&merged) {
            return Err(internal(
                "balloon value too large (must be smaller than assigned memory)".into(),
            ));
        }
    }
    for (_, value) in update.set.iter().filter(|(key, _)| is_drive_key(key)) {
        check_drive(state, &update.node, value).map_err(internal)?;
    }
    Ok(())
}

/// `PUT .../config`: everything synchronous; answers `null`.
pub(crate) fn put(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let update = parse(request)?;
    let digest = param_str(request, "digest");
    let skiplock = super::params::skiplock(request)?;
    shared.write(|state| {
        precheck(state, &update, digest, skiplock)?;
        let warnings = apply(state, &update).map_err(internal)?;
        for warning in warnings {
            tracing::warn!(vmid = update.vmid, "{warning}");
        }
        Ok(Value::Null)
    })
}

/// `POST .../config`: checks, then a `qmconfig` task; with `background_delay`, waits up to
/// that many seconds and answers `null` when the task finished in time.
pub(crate) async fn post(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let update = parse(request)?;
    let digest = param_str(request, "digest");
    let skiplock = super::params::skiplock(request)?;
    let spec = TaskSpec {
        kind: "qmconfig",
        node: update.node.clone(),
        id: update.vmid.to_string(),
        user: request.identity.upid_user(),
        duration: shared.options.durations.config,
    };
    let vmid = update.vmid;
    let upid = shared.write(|state| {
        precheck(state, &update, digest, skiplock)?;
        Ok::<_, ApiError>(tasks::spawn(
            shared,
            state,
            spec,
            move |context: TaskContext| async move {
                context.lock_vm(update.vmid).await?;
                context.log(format!("update VM {}: {}", update.vmid, describe(&update)));
                context.work().await?;
                let warnings = context.shared.write(|state| apply(state, &update))?;
                for warning in warnings {
                    context.warn(warning);
                }
                Ok(())
            },
        ))
    })?;
    let Some(delay) = param_u64(request, "background_delay") else {
        return Ok(json!(upid));
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(delay.min(30));
    while tokio::time::Instant::now() < deadline {
        let status = shared.read(|state| {
            state
                .tasks
                .iter()
                .rev()
                .find(|task| task.upid == upid)
                .and_then(|task| task.exitstatus.clone())
        });
        if let Some(status) = status {
            if status == "OK" || status.starts_with("WARNINGS") {
                return Ok(Value::Null);
            }
            return Err(internal(format!("failed to update VM {vmid}: {status}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(json!(upid))
}

/// `-delete a,b -name x` as PVE logs the update.
fn describe(update: &Update) -> String {
    let mut parts = Vec::new();
    if !update.delete.is_empty() {
        parts.push(format!("-delete {}", update.delete.join(",")));
    }
    for (key, value) in &update.set {
        let shown = if key == "cipassword" {
            "<hidden>"
        } else {
            value
        };
        parts.push(format!("-{key} {shown}"));
    }
    parts.join(" ")
}
