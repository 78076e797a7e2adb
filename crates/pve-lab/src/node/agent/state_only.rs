//! The QEMU guest agent of state-only guests: the agent endpoints answered from the
//! VM's config, no process behind them (the real agent of QEMU guests is [`super::qemu`]).
//!
//! Why: clients find a new VM's address through `agent/network-get-interfaces` and pin its
//! SSH host key through `agent/file-read`; the hard parts for them are the agent not being
//! up yet right after start, and the noise (`lo`, link-local, `docker0`) they must filter.
//! State-only guests answer from the VM's config: `lo`, `eth0` with net0's MAC and the
//! `ipconfig0` address cloud-init applied at the last start (the 192.168.10.x addresses
//! are data only, nothing is reachable),
//! an IPv6 link-local, and `docker0`. `exec` runs NOTHING: it hands out a pid and
//! `exec-status` reports the command exited 0 with empty output.

use serde_json::{Value, json};

use super::net_mac;
use crate::api::{ApiError, ApiRequest, ApiResult};
use crate::node::Shared;
use crate::node::config::parse_properties;
use crate::node::params::{internal, vmid};
use crate::node::state::{State, Vm};

/// PVE's `assert_agent_available`: configured, running, agent up.
fn available<'state>(
    state: &'state State,
    request: &ApiRequest,
) -> Result<(u32, &'state Vm), ApiError> {
    let vmid = vmid(request)?;
    let vm = state.vm(request.path("node"), vmid).map_err(internal)?;
    if !vm.agent_enabled() {
        return Err(ApiError::internal("No QEMU guest agent configured"));
    }
    let Some(run) = &vm.run else {
        return Err(ApiError::internal(format!("VM {vmid} is not running")));
    };
    let ready = run
        .agent_ready_ms
        .is_some_and(|ready| crate::node::unix_millis() >= ready);
    if !ready {
        return Err(ApiError::internal("QEMU guest agent is not running"));
    }
    Ok((vmid, vm))
}

/// `GET .../agent`: the list of agent commands.
pub(crate) fn index(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    shared.read(|state| {
        state
            .vm(request.path("node"), vmid)
            .map(|_| ())
            .map_err(internal)
    })?;
    let names = [
        "exec",
        "exec-status",
        "file-read",
        "file-write",
        "fsfreeze-freeze",
        "fsfreeze-status",
        "fsfreeze-thaw",
        "fstrim",
        "get-fsinfo",
        "get-host-name",
        "get-memory-block-info",
        "get-memory-blocks",
        "get-osinfo",
        "get-time",
        "get-timezone",
        "get-users",
        "get-vcpus",
        "info",
        "network-get-interfaces",
        "ping",
        "set-user-password",
        "shutdown",
        "suspend-disk",
        "suspend-hybrid",
        "suspend-ram",
    ];
    Ok(Value::Array(
        names.iter().map(|name| json!({"name": name})).collect(),
    ))
}

/// `POST .../agent` with `command`: the generic form of the agent endpoints.
pub(crate) fn command(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let command = crate::node::param_str(request, "command").unwrap_or_default();
    match command {
        "ping" => ping(shared, request),
        "network-get-interfaces" => interfaces(shared, request),
        "get-host-name" => shared.read(|state| {
            let (vmid, vm) = available(state, request)?;
            let name = vm.config.get("name").cloned().unwrap_or_else(|| format!("VM{vmid}"));
            let host = name.split('.').next().unwrap_or(&name).to_owned();
            Ok(json!({"result": {"host-name": host}}))
        }),
        "get-osinfo" => shared.read(|state| {
            available(state, request)?;
            Ok(json!({"result": {
                "id": "ubuntu", "name": "Ubuntu", "pretty-name": "Ubuntu 24.04.3 LTS",
                "version": "24.04.3 LTS (Noble Numbat)", "version-id": "24.04",
                "kernel-release": "6.8.0-88-generic", "kernel-version": "#89-Ubuntu SMP PREEMPT_DYNAMIC",
                "machine": "x86_64",
            }}))
        }),
        other => shared.read(|state| {
            available(state, request)?;
            Err(ApiError::internal(format!(
                "Agent error: The command {other} has been disabled for this instance"
            )))
        }),
    }
}

/// `POST .../agent/ping`.
pub(crate) fn ping(shared: &Shared, request: &ApiRequest) -> ApiResult {
    shared.read(|state| available(state, request).map(|_| json!({"result": {}})))
}

fn address(ip: &str, kind: &str, prefix: u32) -> Value {
    json!({"ip-address": ip, "ip-address-type": kind, "prefix": prefix})
}

fn statistics() -> Value {
    json!({"rx-bytes": 91_234, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 734,
           "tx-bytes": 48_112, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 402})
}

/// The IPv6 link-local (EUI-64) address of a MAC.
fn link_local(mac: &str) -> String {
    let bytes: Vec<u8> = mac
        .split(':')
        .filter_map(|part| u8::from_str_radix(part, 16).ok())
        .collect();
    let mac = <[u8; 6]>::try_from(bytes).unwrap_or([0; 6]);
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]])
    )
}

/// The `ipconfig0` the guest booted with: cloud-init applies the values of the last
/// start (a later change needs a restart); without a cloud-init drive there is none.
fn booted_ipconfig(vm: &Vm) -> Option<&String> {
    vm.run.as_ref()?.cloudinit.as_ref()?.get("ipconfig0")
}

/// The IPv4 address and prefix the guest has on eth0: `ipconfig0`'s static address, or a
/// deterministic DHCP lease in 192.168.10.0/24 (data only).
fn ipv4(vmid: u32, vm: &Vm) -> (String, u32) {
    let ip = booted_ipconfig(vm).and_then(|ipconfig| {
        parse_properties(ipconfig, "ip")
            .into_iter()
            .find(|(key, _)| key == "ip")
            .map(|(_, ip)| ip)
    });
    match ip.as_deref().and_then(|cidr| cidr.split_once('/')) {
        Some((address, prefix)) => (address.to_owned(), prefix.parse().unwrap_or(24)),
        None => (format!("192.168.10.{}", 100 + vmid % 100), 24),
    }
}

/// `GET .../agent/network-get-interfaces`.
pub(crate) fn interfaces(shared: &Shared, request: &ApiRequest) -> ApiResult {
    shared.read(|state| {
        let (vmid, vm) = available(state, request)?;
        let mut result = vec![json!({
            "name": "lo", "hardware-address": "00:00:00:00:00:00",
            "ip-addresses": [address("127.0.0.1", "ipv4", 8), address("::1", "ipv6", 128)],
            "statistics": statistics(),
        })];
        if let Some(mac) = vm.config.get("net0").and_then(|net| net_mac(net)) {
            let mac = mac.to_lowercase();
            let (ip, prefix) = ipv4(vmid, vm);
            let mut addresses = vec![address(&ip, "ipv4", prefix)];
            if let Some(ip6) = booted_ipconfig(vm).and_then(|ipconfig| {
                parse_properties(ipconfig, "ip")
                    .into_iter()
                    .find(|(key, value)| key == "ip6" && value.contains('/'))
                    .map(|(_, value)| value)
            }) && let Some((ip6, prefix6)) = ip6.split_once('/')
            {
                addresses.push(address(ip6, "ipv6", prefix6.parse().unwrap_or(64)));
            }
            addresses.push(address(&link_local(&mac), "ipv6", 64));
            result.push(json!({
                "name": "eth0", "hardware-address": mac, "ip-addresses": addresses,
                "statistics": statistics(),
            }));
        }
        result.push(json!({
            "name": "docker0", "hardware-address": "02:42:5c:1e:3a:07",
            "ip-addresses": [address("172.17.0.1", "ipv4", 16)],
            "statistics": statistics(),
        }));
        Ok(json!({"result": result}))
    })
}

/// `POST .../agent/exec`: hands out a pid; runs nothing (state-only guest).
pub(crate) fn exec(shared: &Shared, request: &ApiRequest) -> ApiResult {
    shared.read(|state| available(state, request).map(|_| ()))?;
    let vmid = vmid(request)?;
    let node = request.path("node");
    shared.write(|state| {
        let pid = state.allocate_pid();
        let vm = state.vm_mut(node, vmid).map_err(internal)?;
        vm.exec_pids.push(pid);
        if vm.exec_pids.len() > 1_000 {
            vm.exec_pids.remove(0);
        }
        Ok(json!({"pid": pid}))
    })
}

/// `GET .../agent/exec-status?pid`: the command exited 0 with empty output.
pub(crate) fn exec_status(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let pid = crate::node::param_u64(request, "pid").unwrap_or(0);
    shared.read(|state| {
        let (_, vm) = available(state, request)?;
        if !vm.exec_pids.iter().any(|known| u64::from(*known) == pid) {
            return Err(ApiError::internal(format!(
                "Agent error: Invalid parameter 'pid': PID {pid} does not exist"
            )));
        }
        Ok(json!({"exited": 1, "exitcode": 0, "out-data": ""}))
    })
}

/// `GET .../agent/file-read?file`: the host key, hostname and machine id of the guest.
pub(crate) fn file_read(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let file = crate::node::param_str(request, "file")
        .unwrap_or_default()
        .to_owned();
    let offset = crate::node::param_u64(request, "offset").unwrap_or(0);
    let count = crate::node::param_u64(request, "count").unwrap_or(16 * 1024 * 1024);
    shared.read(|state| {
        let (vmid, vm) = available(state, request)?;
        let name = vm
            .config
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("VM{vmid}"));
        let content = match file.as_str() {
            "/etc/ssh/ssh_host_ed25519_key.pub" => format!("{}\n", vm.host_key),
            "/etc/hostname" => format!("{}\n", name.split('.').next().unwrap_or(&name)),
            "/etc/machine-id" => {
                let uuid = vm.config.get("smbios1").cloned().unwrap_or_default();
                format!("{}\n", uuid.trim_start_matches("uuid=").replace('-', ""))
            }
            _ => {
                return Err(ApiError::internal(format!(
                    "Agent error: Failed to open file '{file}': No such file or directory"
                )));
            }
        };
        let bytes = content.as_bytes();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start
            .saturating_add(usize::try_from(count).unwrap_or(usize::MAX))
            .min(bytes.len());
        let chunk = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        let mut answer = json!({"content": chunk, "bytes-read": end - start});
        if end < bytes.len() {
            answer["truncated"] = json!(1);
        }
        Ok(answer)
    })
}
