//! Cluster-wide and node-level read endpoints: version, nodes, resources, nextid, network.
//!
//! Why: every client starts here (version check, node discovery, picking a free VM id,
//! checking the bridge exists); these answers must have exactly PVE's shapes and quirks,
//! such as `nextid` returning a string. In a cluster the lists span every member: a node's
//! memory counts the VMs running there, and a member that is down shows as PVE shows it
//! (`offline`, its VMs and storages `unknown`).

use serde_json::{Value, json};

use super::Shared;
use super::storage;
use super::vm::{self, memory_bytes};
use crate::api::{ApiError, ApiRequest, ApiResult};

/// The PVE release the lab imitates.
pub(crate) const PVE_VERSION: &str = "9.1.1";
const PVE_RELEASE: &str = "9.1";
const PVE_REPOID: &str = "42db4a6cf33dac83";
const NODE_CPUS: u64 = 8;
const NODE_MEMORY: u64 = 32 * 1024 * 1024 * 1024;
const NODE_ROOTFS: u64 = 94 * 1024 * 1024 * 1024;

/// `GET /version`.
pub(crate) fn version() -> Value {
    json!({"version": PVE_VERSION, "release": PVE_RELEASE, "repoid": PVE_REPOID})
}

/// Memory used on `node`: the host's own 2 GiB plus the VMs running there.
fn node_memory_used(shared: &Shared, node: &str) -> u64 {
    shared.read(|state| {
        let guests: u64 = state
            .vms_on(node)
            .filter(|(_, vm)| vm.run.is_some())
            .map(|(_, vm)| memory_bytes(&vm.config))
            .fold(0_u64, u64::saturating_add);
        guests
            .saturating_add(2 * 1024 * 1024 * 1024)
            .min(NODE_MEMORY)
    })
}

fn uptime(shared: &Shared, node: &str) -> u64 {
    let boot = shared
        .membership
        .up_since(node)
        .unwrap_or_else(|| shared.read(|state| state.boot_time));
    super::unix_seconds().saturating_sub(boot)
}

/// `GET /nodes`: every member; one that is down carries only its name and `offline`.
pub(crate) fn nodes(shared: &Shared) -> Value {
    let items = shared
        .options
        .cluster_nodes()
        .into_iter()
        .map(|name| {
            let mut node = json!({
                "node": name, "status": "offline", "type": "node",
                "id": format!("node/{name}"), "level": "",
            });
            if shared.membership.is_online(&name) {
                node["status"] = json!("online");
                node["cpu"] = json!(0.021);
                node["maxcpu"] = json!(NODE_CPUS);
                node["mem"] = json!(node_memory_used(shared, &name));
                node["maxmem"] = json!(NODE_MEMORY);
                node["uptime"] = json!(uptime(shared, &name));
                node["disk"] = json!(NODE_ROOTFS / 8);
                node["maxdisk"] = json!(NODE_ROOTFS);
            }
            if let Some(fingerprint) = &shared.options.ssl_fingerprint {
                node["ssl_fingerprint"] = json!(fingerprint);
            }
            node
        })
        .collect();
    Value::Array(items)
}

/// `GET /nodes/{node}`: the node's index.
pub(crate) fn node_index() -> Value {
    let names = [
        "aplinfo",
        "apt",
        "capabilities",
        "ceph",
        "certificates",
        "config",
        "disks",
        "dns",
        "firewall",
        "hardware",
        "hosts",
        "journal",
        "lxc",
        "netstat",
        "network",
        "qemu",
        "replication",
        "report",
        "rrd",
        "rrddata",
        "scan",
        "sdn",
        "services",
        "spiceshell",
        "status",
        "storage",
        "subscription",
        "syslog",
        "tasks",
        "termproxy",
        "time",
        "version",
        "vncshell",
        "vzdump",
        "wakeonlan",
    ];
    Value::Array(names.iter().map(|name| json!({"name": name})).collect())
}

/// `GET /nodes/{node}/status`.
pub(crate) fn node_status(shared: &Shared, request: &ApiRequest) -> Value {
    let node = request.path("node");
    let used = node_memory_used(shared, node);
    json!({
        "cpu": 0.021, "wait": 0.0004, "idle": 0,
        "cpuinfo": {
            "cores": 4, "cpus": NODE_CPUS, "sockets": 1, "model": "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz",
            "mhz": "3192.000", "hvm": "1", "user_hz": 100, "flags": "fpu vme de pse tsc msr pae mce cx8 apic sep vmx",
        },
        "memory": {"total": NODE_MEMORY, "used": used, "free": NODE_MEMORY - used, "available": NODE_MEMORY - used},
        "swap": {"total": 8_589_930_496_u64, "used": 0, "free": 8_589_930_496_u64},
        "rootfs": {"total": NODE_ROOTFS, "used": NODE_ROOTFS / 8, "free": NODE_ROOTFS - NODE_ROOTFS / 8, "avail": NODE_ROOTFS - NODE_ROOTFS / 8},
        "ksm": {"shared": 0},
        "loadavg": ["0.12", "0.09", "0.05"],
        "uptime": uptime(shared, node),
        "kversion": "Linux 6.14.11-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4 (2025-10-10T08:04Z)",
        "current-kernel": {
            "sysname": "Linux", "release": "6.14.11-4-pve", "machine": "x86_64",
            "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4 (2025-10-10T08:04Z)",
        },
        "pveversion": format!("pve-manager/{PVE_VERSION}/{PVE_REPOID}"),
        "boot-info": {"mode": "efi", "secureboot": 0},
    })
}

/// `GET /nodes/{node}/network?type`: the physical NIC and the `vmbr0` bridge.
pub(crate) fn network(request: &ApiRequest) -> Value {
    let wanted = super::param_str(request, "type");
    let interfaces = [
        json!({
            "iface": "eno1", "type": "eth", "method": "manual", "method6": "manual",
            "active": 1, "exists": 1, "families": ["inet"], "priority": 3,
        }),
        json!({
            "iface": "vmbr0", "type": "bridge", "method": "static", "method6": "manual",
            "active": 1, "autostart": 1, "families": ["inet"], "priority": 4,
            "bridge_ports": "eno1", "bridge_stp": "off", "bridge_fd": "0",
            "address": "192.168.10.10", "netmask": "24", "cidr": "192.168.10.10/24",
            "gateway": "192.168.10.1",
        }),
    ];
    let items: Vec<Value> = interfaces
        .into_iter()
        .filter(|interface| match wanted {
            None => true,
            Some("any_bridge" | "any_local_bridge") => interface["type"] == "bridge",
            Some(kind) => interface["type"] == kind,
        })
        .collect();
    Value::Array(items)
}

/// `GET /cluster/resources?type`: every member, each member's storages (the shared one
/// once per node, as PVE lists it), every VM with its node, each member's SDN zone.
pub(crate) fn resources(shared: &Shared, request: &ApiRequest) -> Value {
    let wanted = super::param_str(request, "type");
    let wants = |kind: &str| wanted.is_none_or(|wanted| wanted == kind);
    let members = shared.options.cluster_nodes();
    let mut items = Vec::new();
    if wants("node") {
        for name in &members {
            items.push(node_resource(shared, name));
        }
    }
    shared.read(|state| {
        let storages = storage::definitions(state);
        if wants("storage") {
            for name in &members {
                let online = shared.membership.is_online(name);
                for storage in &storages {
                    let mut item = json!({
                        "id": format!("storage/{name}/{}", storage.id), "type": "storage",
                        "storage": storage.id, "node": name,
                        "status": if online { "available" } else { "unknown" },
                        "content": storage.content, "plugintype": storage.kind,
                        "shared": u8::from(storage.shared),
                    });
                    if online {
                        item["disk"] = json!(storage::used(state, name, storage.id));
                        item["maxdisk"] = json!(storage.total);
                    }
                    items.push(item);
                }
            }
        }
        if wants("vm") {
            for (vmid, guest) in &state.vms {
                let mut item = vm::summary(*vmid, guest);
                item["id"] = json!(format!("qemu/{vmid}"));
                item["type"] = json!("qemu");
                item["node"] = json!(guest.node);
                item["maxcpu"] = item["cpus"].clone();
                item["template"] = json!(u8::from(guest.is_template()));
                if let Some(map) = item.as_object_mut() {
                    map.remove("cpus");
                    map.remove("pid");
                }
                if !shared.membership.is_online(&guest.node) {
                    item["status"] = json!("unknown");
                }
                items.push(item);
            }
        }
    });
    if wants("sdn") {
        for name in &members {
            let online = shared.membership.is_online(name);
            items.push(json!({
                "id": format!("sdn/{name}/localnetwork"), "type": "sdn", "sdn": "localnetwork",
                "node": name, "status": if online { "ok" } else { "unknown" },
            }));
        }
    }
    Value::Array(items)
}

/// One member in `/cluster/resources`; a node that is down keeps its static maxima.
fn node_resource(shared: &Shared, name: &str) -> Value {
    if !shared.membership.is_online(name) {
        return json!({
            "id": format!("node/{name}"), "type": "node", "node": name, "status": "offline",
            "maxcpu": NODE_CPUS, "maxmem": NODE_MEMORY, "maxdisk": NODE_ROOTFS,
            "level": "", "cgroup-mode": 2,
        });
    }
    json!({
        "id": format!("node/{name}"), "type": "node", "node": name, "status": "online",
        "cpu": 0.021, "maxcpu": NODE_CPUS, "mem": node_memory_used(shared, name),
        "maxmem": NODE_MEMORY, "disk": NODE_ROOTFS / 8, "maxdisk": NODE_ROOTFS,
        "uptime": uptime(shared, name), "level": "", "cgroup-mode": 2,
    })
}

/// `GET /cluster/nextid?vmid`: the next free id as a STRING, or 400 if `vmid` is taken.
pub(crate) fn next_id(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let requested = super::param_u64(request, "vmid");
    shared.read(|state| {
        if let Some(vmid) = requested {
            let taken = u32::try_from(vmid).is_ok_and(|vmid| state.vms.contains_key(&vmid));
            if taken {
                return Err(ApiError::param("vmid", format!("VM {vmid} already exists")));
            }
            return Ok(json!(vmid.to_string()));
        }
        let free = (100_u32..=999_999_999)
            .find(|vmid| !state.vms.contains_key(vmid))
            .unwrap_or(100);
        Ok(json!(free.to_string()))
    })
}
