//! Read endpoints of one VM: list, index, config, pending, status.
//!
//! Why: clients poll these constantly (wait for the clone lock to clear, wait for
//! `running`, read the config's digest before an update), so they must reflect the state
//! exactly: the lock while a task runs, pending values, PVE's typed JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::config::{self, drive_is_cdrom, is_drive_key, parse_drive, parse_size};
use super::params::{internal, vmid};
use super::state::{State, Vm};
use super::{Shared, param_bool};
use crate::api::{ApiRequest, ApiResult};

const MIB: u64 = 1024 * 1024;

/// PVE's mask for `cipassword` in API answers.
pub(crate) const PASSWORD_MASK: &str = "**********";

/// Maximum memory in bytes from `memory: [current=]N` (MiB; default 512).
pub(crate) fn memory_bytes(config: &BTreeMap<String, String>) -> u64 {
    config
        .get("memory")
        .and_then(|value| {
            config::parse_properties(value, "current")
                .into_iter()
                .find(|(key, _)| key == "current")
                .and_then(|(_, current)| current.parse::<u64>().ok())
        })
        .unwrap_or(512)
        .saturating_mul(MIB)
}

/// Number of vCPUs: `vcpus`, else `sockets * cores`.
pub(crate) fn cpu_count(config: &BTreeMap<String, String>) -> u64 {
    let read = |key: &str| config.get(key).and_then(|value| value.parse::<u64>().ok());
    read("vcpus").unwrap_or_else(|| read("sockets").unwrap_or(1) * read("cores").unwrap_or(1))
}

/// Size of the boot disk: the first disk of the boot order, else the first disk.
pub(crate) fn boot_disk_size(config: &BTreeMap<String, String>) -> u64 {
    let order = boot_order(config);
    let disk_size = |key: &String| {
        let (_, options) = parse_drive(config.get(key)?);
        if drive_is_cdrom(&options) {
            return None;
        }
        let size = options.iter().find(|(name, _)| name == "size")?;
        parse_size(&size.1).map(|(_, bytes)| bytes)
    };
    order
        .iter()
        .filter(|key| is_drive_key(key))
        .find_map(disk_size)
        .or_else(|| {
            config
                .keys()
                .filter(|key| is_drive_key(key))
                .find_map(disk_size)
        })
        .unwrap_or(0)
}

/// The devices of `boot: order=a;b;c`.
pub(crate) fn boot_order(config: &BTreeMap<String, String>) -> Vec<String> {
    config
        .get("boot")
        .and_then(|boot| {
            config::parse_properties(boot, "legacy")
                .into_iter()
                .find(|(key, _)| key == "order")
                .map(|(_, order)| order.split(';').map(str::to_owned).collect())
        })
        .unwrap_or_default()
}

/// The list/resources view of one VM.
pub(crate) fn summary(vmid: u32, vm: &Vm) -> Value {
    let now = super::unix_millis();
    let mut item = json!({
        "vmid": vmid,
        "name": vm.config.get("name").cloned().unwrap_or_else(|| format!("VM {vmid}")),
        "status": if vm.run.is_some() { "running" } else { "stopped" },
        "cpus": cpu_count(&vm.config), "maxmem": memory_bytes(&vm.config),
        "maxdisk": boot_disk_size(&vm.config), "disk": 0,
        "cpu": 0, "mem": 0, "uptime": 0, "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
    });
    if let Some(run) = &vm.run {
        item["pid"] = json!(run.pid);
        item["uptime"] = json!(now.saturating_sub(run.started_ms) / 1000);
        item["mem"] = json!(memory_bytes(&vm.config) / 3);
        item["cpu"] = json!(0.013);
    }
    if let Some(lock) = vm.lock() {
        item["lock"] = json!(lock);
    }
    if let Some(tags) = vm.config.get("tags") {
        item["tags"] = json!(tags);
    }
    if vm.is_template() {
        item["template"] = json!(1);
    }
    item
}

/// `GET /nodes/{node}/qemu`: the VMs that live on that node.
pub(crate) fn list(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let node = request.path("node");
    shared.read(|state| {
        let items: Vec<Value> = state
            .vms_on(node)
            .map(|(vmid, vm)| summary(vmid, vm))
            .collect();
        Ok(Value::Array(items))
    })
}

pub(crate) fn with_vm(
    shared: &Shared,
    request: &ApiRequest,
    reader: impl FnOnce(u32, &Vm, &State) -> ApiResult,
) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node");
    shared.read(|state| {
        let vm = state.vm(node, vmid).map_err(internal)?;
        reader(vmid, vm, state)
    })
}

/// `GET /nodes/{node}/qemu/{vmid}`: the VM's index.
pub(crate) fn index(shared: &Shared, request: &ApiRequest) -> ApiResult {
    with_vm(shared, request, |_, _, _| {
        let names = [
            "agent",
            "clone",
            "cloudinit",
            "config",
            "feature",
            "firewall",
            "migrate",
            "monitor",
            "move",
            "pending",
            "remote_migrate",
            "resize",
            "rrd",
            "rrddata",
            "sendkey",
            "snapshot",
            "spiceproxy",
            "status",
            "template",
            "termproxy",
            "unlink",
            "vncproxy",
            "vncwebsocket",
        ];
        Ok(Value::Array(
            names.iter().map(|name| json!({"subdir": name})).collect(),
        ))
    })
}

/// The config with pending changes applied (what `GET config` shows by default).
pub(crate) fn effective_config(vm: &Vm) -> BTreeMap<String, String> {
    let mut config = vm.config.clone();
    for key in &vm.pending_delete {
        config.remove(key);
    }
    config.extend(vm.pending.clone());
    config
}

/// `GET /nodes/{node}/qemu/{vmid}/config?current`.
pub(crate) fn config(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let current = param_bool(request, "current").unwrap_or(false);
    if let Some(snapshot) = super::param_str(request, "snapshot") {
        return Err(internal(format!("snapshot '{snapshot}' does not exist")));
    }
    with_vm(shared, request, |_, vm, _| {
        let section = if current {
            vm.config.clone()
        } else {
            effective_config(vm)
        };
        let mut map = config::typed_map(&section);
        if map.contains_key("cipassword") {
            map.insert("cipassword".into(), json!(PASSWORD_MASK));
        }
        map.insert("digest".into(), json!(config::digest(vm)));
        Ok(Value::Object(map))
    })
}

/// `GET /nodes/{node}/qemu/{vmid}/pending`.
pub(crate) fn pending(shared: &Shared, request: &ApiRequest) -> ApiResult {
    with_vm(shared, request, |_, vm, _| {
        let keys: BTreeSet<&String> = vm
            .config
            .keys()
            .chain(vm.pending.keys())
            .chain(vm.pending_delete.iter())
            .collect();
        let mask = |key: &str, value: &str| {
            if key == "cipassword" {
                json!(PASSWORD_MASK)
            } else {
                json!(value)
            }
        };
        let items: Vec<Value> = keys
            .into_iter()
            .map(|key| {
                let mut item = Map::new();
                item.insert("key".into(), json!(key));
                if let Some(value) = vm.config.get(key) {
                    item.insert("value".into(), mask(key, value));
                }
                if let Some(value) = vm.pending.get(key) {
                    item.insert("pending".into(), mask(key, value));
                }
                if vm.pending_delete.contains(key) {
                    item.insert("delete".into(), json!(1));
                }
                Value::Object(item)
            })
            .collect();
        Ok(Value::Array(items))
    })
}

/// `GET /nodes/{node}/qemu/{vmid}/status`: the status index.
pub(crate) fn status_index(shared: &Shared, request: &ApiRequest) -> ApiResult {
    with_vm(shared, request, |_, _, _| {
        let names = [
            "current", "reboot", "reset", "resume", "shutdown", "start", "stop", "suspend",
        ];
        Ok(Value::Array(
            names.iter().map(|name| json!({"subdir": name})).collect(),
        ))
    })
}

/// `GET /nodes/{node}/qemu/{vmid}/status/current`.
pub(crate) fn status_current(shared: &Shared, request: &ApiRequest) -> ApiResult {
    with_vm(shared, request, |vmid, vm, _| {
        let mut item = summary(vmid, vm);
        let running = vm.run.is_some();
        item["qmpstatus"] = json!(if running { "running" } else { "stopped" });
        item["ha"] = json!({"managed": 0});
        if vm.agent_enabled() {
            item["agent"] = json!(1);
        }
        if vm.config.contains_key("serial0") {
            item["serial"] = json!(1);
        }
        if running {
            item["running-machine"] = json!("pc-i440fx-9.2+pve1");
            item["running-qemu"] = json!("9.2.0");
        }
        Ok(item)
    })
}
