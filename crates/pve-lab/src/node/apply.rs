//! Applying a config update: deletes, new values, boot order, pending vs hot-plug.
//!
//! Why: this is the worker half of qemu-server's `update_vm_api`, shared by the
//! synchronous PUT and the `qmconfig` task of POST: an unset key only warns, a deleted
//! device leaves the boot order, a replaced disk becomes `unusedN`, and on a running VM
//! only what PVE can hot-plug applies at once; the rest stays in `[PENDING]`.

use std::collections::BTreeMap;

use super::config::{self, drive_is_cdrom, is_drive_key, parse_drive};
use super::create::{allocate_drive, normalize_net};
use super::crypt::{hash_password, looks_hashed};
use super::state::{State, Vm};
use super::update::Update;
use super::vm::boot_order;

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

/// Moves a replaced or deleted disk to `unusedN`; frees a cloud-init volume.
fn retire_drive(state: &mut State, vmid: u32, node: &str, value: &str) {
    let (file, options) = parse_drive(value);
    if file.contains("cloudinit") {
        state.remove_volume(node, &file);
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
pub(crate) fn apply(state: &mut State, update: &Update) -> Result<Vec<String>, String> {
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
            state.remove_volume(&update.node, &parse_drive(&value).0);
        } else if vm.config.contains_key(key) {
            vm.pending_delete.insert(key.clone());
        }
    }
    for (key, value) in &update.set {
        let value = if is_drive_key(key) {
            let (value, _) = allocate_drive(state, &update.node, vmid, value)?;
            let (_, options) = parse_drive(&value);
            if drive_is_cdrom(&options) && !order.is_empty() && !order.contains(key) {
                order.push(key.clone());
            }
            value
        } else if config::indexed(key, "net").is_some() {
            normalize_net(value, state)
        } else if key == "cipassword" && !looks_hashed(value) {
            hash_password(value, &mut state.random)
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
