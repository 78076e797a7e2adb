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

use super::cloudinit::percent_decode;
use super::config::{self, config_string, drive_is_cdrom, is_drive_key, parse_drive};
use super::create::{allocate_drive, check_drive, normalize_net};
use super::params::{internal, vmid};
use super::state::{State, Vm};
use super::tasks::{self, TaskContext, TaskSpec};
use super::vm::{boot_order, memory_bytes};
use super::{Shared, param_bool, param_str, param_u64};
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

/// Keys PVE applies at once on a running VM (`fast_plug_option`, cloud-init, default
/// hotplug `network,disk,usb`).
fn hotpluggable(key: &str) -> bool {
    const FAST: &[&str] = &[
        "description",
        "hookscript",
        "lock",
        "migrate_downtime",
        "migrate_speed",
        "name",
        "onboot",
        "protection",
        "shares",
        "startup",
        "tags",
        "vmstatestorage",
    ];
    FAST.contains(&key)
        || config::is_cloudinit_key(key)
        || is_drive_key(key)
        || ["net", "usb", "unused"]
            .iter()
            .any(|prefix| config::indexed(key, prefix).is_some())
}

fn option_exists(key: &str) -> bool {
    KEYS.contains(&key)
        || INDEXED
            .iter()
            .any(|prefix| config::indexed(key, prefix).is_some())
}

/// A validated update request.
#[derive(Debug, Clone)]
struct Update {
    vmid: u32,
    node: String,
    delete: Vec<String>,
    revert: Vec<String>,
    set: BTreeMap<String, String>,
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
        if balloon > 0 && balloon * 1024 * 1024 > memory_bytes(&merged) {
            return Err(internal(
                "balloon value too large (must be smaller than assigned memory)".into(),
            ));
        }
    }
    for (key, value) in update.set.iter().filter(|(key, _)| is_drive_key(key)) {
        check_drive(state, value).map_err(|message| ApiError::param(key.clone(), message))?;
    }
    Ok(())
}

/// Moves a replaced or deleted disk to `unusedN`; frees a cloud-init volume.
fn retire_drive(state: &mut State, vmid: u32, node: &str, value: &str) {
    let (file, options) = parse_drive(value);
    if file.contains("cloudinit") {
        state.remove_volume(&file);
        return;
    }
    if drive_is_cdrom(&options) || !file.contains(&format!("-{vmid}-")) {
        return;
    }
    if let Ok(vm) = state.vm_mut(node, vmid) {
        let slot = (0..u32::MAX)
            .map(|index| format!("unused{index}"))
            .find(|key| !vm.config.contains_key(key))
            .unwrap_or_default();
        vm.config.insert(slot, file);
    }
}

/// Applies one key of the pending section to the current config.
fn apply_key(state: &mut State, update: &Update, key: &str) {
    let Ok(vm) = state.vm_mut(&update.node, update.vmid) else {
        return;
    };
    let deleted = vm.pending_delete.remove(key);
    let new = vm.pending.remove(key);
    let old = if deleted || new.is_some() {
        vm.config.remove(key)
    } else {
        None
    };
    if let Some(new) = new.clone() {
        vm.config.insert(key.to_owned(), new);
    }
    if let Some(old) = old
        && is_drive_key(key)
        && new
            .as_ref()
            .is_none_or(|new| parse_drive(new).0 != parse_drive(&old).0)
    {
        retire_drive(state, update.vmid, &update.node, &old);
    }
}

/// The worker: deletes, sets, cleanup, apply or hotplug. Returns warnings.
fn apply(state: &mut State, update: &Update) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let vmid = update.vmid;
    let vm = state.vm_mut(&update.node, vmid)?;
    for key in &update.revert {
        vm.pending.remove(key);
        vm.pending_delete.remove(key);
    }
    let mut order = boot_order(&super::vm::effective_config(vm));
    let order_before = order.clone();
    for key in &update.delete {
        let vm = state.vm_mut(&update.node, vmid)?;
        let Some(value) = vm.config.get(key).or_else(|| vm.pending.get(key)).cloned() else {
            warnings.push(format!(
                "cannot delete '{key}' - not set in current configuration!"
            ));
            continue;
        };
        vm.pending.remove(key);
        order.retain(|device| device != key);
        if config::indexed(key, "unused").is_some() {
            if vm
                .config
                .get("protection")
                .is_some_and(|value| value == "1")
            {
                return Err(format!(
                    "can't remove unused disk '{value}' - protection mode enabled"
                ));
            }
            vm.config.remove(key);
            state.remove_volume(&parse_drive(&value).0);
        } else if vm.config.contains_key(key) {
            vm.pending_delete.insert(key.clone());
        }
    }
    for (key, value) in &update.set {
        let value = if is_drive_key(key) {
            let (value, _) = allocate_drive(state, vmid, value)?;
            let (_, options) = parse_drive(&value);
            if drive_is_cdrom(&options) && !order.is_empty() && !order.contains(key) {
                order.push(key.clone());
            }
            value
        } else if config::indexed(key, "net").is_some() {
            normalize_net(value, state)
        } else {
            value.clone()
        };
        let vm = state.vm_mut(&update.node, vmid)?;
        if key == "boot" {
            let wanted = boot_order(&BTreeMap::from([("boot".to_owned(), value.clone())]));
            for device in &wanted {
                let exists = vm.config.contains_key(device)
                    || vm.pending.contains_key(device)
                    || update.set.contains_key(device);
                if !exists || update.delete.contains(device) {
                    return Err(format!(
                        "invalid bootorder: device '{device}' does not exist'"
                    ));
                }
            }
            order.clone_from(&wanted);
        }
        vm.pending.insert(key.clone(), value);
        vm.pending_delete.remove(key);
    }
    let vm = state.vm_mut(&update.node, vmid)?;
    if order != order_before && !update.set.contains_key("boot") {
        vm.pending
            .insert("boot".into(), format!("order={}", order.join(";")));
    }
    cleanup_pending(vm);
    let running = vm.run.is_some();
    let keys: Vec<String> = vm
        .pending
        .keys()
        .chain(vm.pending_delete.iter())
        .cloned()
        .collect();
    for key in keys.iter().filter(|key| !running || hotpluggable(key)) {
        apply_key(state, update, key);
    }
    Ok(warnings)
}

/// Drops pending values equal to the current ones, and deletes of unset keys.
fn cleanup_pending(vm: &mut Vm) {
    let config = vm.config.clone();
    vm.pending
        .retain(|key, value| config.get(key) != Some(value));
    vm.pending_delete.retain(|key| config.contains_key(key));
}

/// `PUT .../config`: everything synchronous; answers `null`.
pub(crate) fn put(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let update = parse(request)?;
    let digest = param_str(request, "digest");
    let skiplock = param_bool(request, "skiplock").unwrap_or(false);
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
    let skiplock = param_bool(request, "skiplock").unwrap_or(false);
    let spec = TaskSpec {
        kind: "qmconfig",
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(delay);
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
