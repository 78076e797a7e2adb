//! The node's side of real guests: what a task does to the QEMU backend in qemu mode.
//!
//! Why: the handlers keep PVE's bookkeeping (locks, tasks, volumes, pending values) for
//! both kinds of guests; in qemu mode they also call these hooks, which translate the
//! VM's config into a machine (memory, cores, boot disk, MAC, the address cloud-init
//! configures, the seed generated exactly like `.../cloudinit/dump` shows it) and answer
//! the agent endpoints from the real guest agent. In state mode every hook does nothing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::config::{drive_is_cdrom, is_drive_key, parse_drive, parse_properties};
use super::params::{internal, vmid};
use super::{Node, Shared};
use crate::api::{ApiError, ApiRequest, ApiResult, Method};
use crate::guest::{AgentError, MachineSpec, QemuGuests, SeedFiles};

/// The largest file `agent/file-read` returns (PVE: 16 MiB).
const FILE_READ_LIMIT: u64 = 16 * 1024 * 1024;

impl Node {
    /// The guests behind this node's VMs.
    pub fn guests(&self) -> &crate::guest::Guests {
        &self.shared.options.guests
    }

    /// The 127.0.0.1 address forwarding to VM `vmid`'s SSH port: `Ok(None)` for a
    /// state-only guest or a stopped VM.
    ///
    /// # Errors
    /// PVE's missing-config message when the VM does not exist.
    pub fn ssh_forward(&self, vmid: u32) -> Result<Option<SocketAddr>, String> {
        let node = &self.shared.options.name;
        self.shared.read(|state| state.vm(node, vmid).map(|_| ()))?;
        Ok(self
            .guests()
            .qemu()
            .and_then(|guests| guests.ssh_forward(vmid)))
    }

    /// After a restart on a saved state: no VM runs (a previous lab's QEMU processes were
    /// reaped), so qemu mode marks every VM stopped.
    pub fn forget_previous_guests(&self) {
        if self.guests().qemu().is_some() {
            self.shared.write(|state| {
                for vm in state.vms.values_mut() {
                    vm.run = None;
                }
            });
        }
    }

    /// Stops every QEMU process (the lab is shutting down).
    pub async fn stop_guests(&self) {
        if let Some(guests) = self.guests().qemu() {
            guests.stop_all().await;
        }
    }
}

impl super::NodeOptions {
    /// Sets the guests. With real guests, the tasks whose work is now real (start, stop,
    /// shutdown, reboot, clones, resize, destroy, template) take the time that work takes
    /// instead of a simulated duration.
    pub fn set_guests(&mut self, guests: crate::guest::Guests) {
        if guests.qemu().is_some() {
            let durations = &mut self.durations;
            for duration in [
                &mut durations.start,
                &mut durations.stop,
                &mut durations.shutdown,
                &mut durations.reboot,
                &mut durations.clone_full,
                &mut durations.clone_linked,
                &mut durations.resize,
                &mut durations.destroy,
                &mut durations.template,
            ] {
                *duration = Duration::ZERO;
            }
        }
        self.guests = guests;
    }
}

fn qemu(shared: &Shared) -> Option<&Arc<QemuGuests>> {
    shared.options.guests.qemu()
}

/// The boot disk's config key: the first disk of the boot order, else the first disk.
fn boot_disk(config: &BTreeMap<String, String>) -> Option<String> {
    let is_disk = |key: &String| {
        is_drive_key(key)
            && config.get(key).is_some_and(|value| {
                let (file, options) = parse_drive(value);
                !drive_is_cdrom(&options) && !file.contains("cloudinit") && file.contains(':')
            })
    };
    super::vm::boot_order(config)
        .into_iter()
        .find(|key| is_disk(key))
        .or_else(|| config.keys().find(|key| is_disk(key)).cloned())
}

/// The address eth0 gets from `ipconfig0` (static), else the first DHCP lease QEMU hands
/// out (`dhcpstart`).
fn guest_address(config: &BTreeMap<String, String>) -> Ipv4Addr {
    config
        .get("ipconfig0")
        .and_then(|ipconfig| {
            parse_properties(ipconfig, "ip")
                .into_iter()
                .find(|(key, _)| key == "ip")
                .and_then(|(_, cidr)| cidr.split('/').next().and_then(|ip| ip.parse().ok()))
        })
        .unwrap_or(Ipv4Addr::new(192, 168, 10, 100))
}

/// Boots VM `vmid`'s machine from its config (pending values applied, as the start does);
/// returns the QEMU pid, `None` in state mode.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    node: &str,
    vmid: u32,
) -> Result<Option<u32>, String> {
    let Some(guests) = qemu(shared) else {
        return Ok(None);
    };
    let (config, disk) = shared.read(|state| {
        let vm = state.vm(node, vmid)?;
        let mut preview = vm.clone();
        preview.apply_pending();
        let key = boot_disk(&preview.config).ok_or("no bootable disk")?;
        let volid = parse_drive(preview.config.get(&key).map_or("", String::as_str)).0;
        let volume = state.volume(&volid);
        let size = volume.map_or(0, |volume| volume.size);
        let parent = volume.and_then(|volume| volume.parent.clone());
        Ok::<_, String>((preview.config, (volid, size, parent)))
    })?;
    let (volid, size, parent) = disk;
    let disk = guests
        .ensure_disk(&volid, size, parent.as_deref())
        .await
        .map_err(|error| format!("disk {volid}: {}", error_chain(&error)))?;
    let has_cloudinit = config
        .iter()
        .any(|(key, value)| is_drive_key(key) && parse_drive(value).0.contains("cloudinit"));
    let seed = has_cloudinit.then(|| {
        let files = super::cloudinit::generate(vmid, &config);
        SeedFiles {
            user: files.user,
            network: files.network,
            meta: files.meta,
            vendor: String::new(),
        }
    });
    let spec = MachineSpec {
        vmid,
        memory_mib: super::vm::memory_bytes(&config) / (1024 * 1024),
        cores: u32::try_from(super::vm::cpu_count(&config)).unwrap_or(1),
        disk,
        mac: config
            .get("net0")
            .and_then(|net| super::agent::net_mac(net)),
        guest_address: guest_address(&config),
        seed,
    };
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let node_name = node.to_owned();
    let on_exit = Box::new(move |notice: crate::guest::ExitNotice| {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        shared.write(|state| {
            if let Ok(vm) = state.vm_mut(&node_name, notice.vmid)
                && vm.run.as_ref().is_some_and(|run| run.pid == notice.pid)
            {
                vm.run = None;
                vm.apply_pending();
            }
        });
    });
    let pid = guests
        .start(&spec, on_exit)
        .await
        .map_err(|error| format!("start failed: {}", error_chain(&error)))?;
    Ok(Some(pid))
}

/// Records the QEMU pid in the run state; the agent's readiness is the real agent's.
pub(crate) fn booted(state: &mut super::state::State, node: &str, vmid: u32, pid: Option<u32>) {
    let Some(pid) = pid else {
        return;
    };
    if let Ok(vm) = state.vm_mut(node, vmid)
        && let Some(run) = vm.run.as_mut()
    {
        run.pid = pid;
        run.agent_ready_ms = Some(run.started_ms);
    }
}

/// `stop` (quit) or `shutdown` (ACPI, at most `timeout`, then quit when `force`).
pub(crate) async fn stop(
    shared: &Shared,
    vmid: u32,
    graceful: bool,
    timeout: Duration,
    force: bool,
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    if graceful {
        let stopped = guests
            .shutdown(vmid, timeout)
            .await
            .map_err(|error| error_chain(&error))?;
        if stopped {
            return Ok(());
        }
        if !force {
            return Err("VM quit/powerdown failed - got timeout".to_owned());
        }
    }
    guests.stop(vmid).await.map_err(|error| error_chain(&error))
}

/// A full clone's disks: flattened copies (linked clones get overlays at their start).
pub(crate) async fn clone_disks(
    shared: &Shared,
    copies: &[(String, Option<String>, String)],
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    for (source, source_parent, target) in copies {
        guests
            .copy_disk(source, source_parent.as_deref(), target)
            .await
            .map_err(|error| format!("clone of {source} failed: {}", error_chain(&error)))?;
    }
    Ok(())
}

/// Template conversion: each renamed volume's file becomes the read-only base.
pub(crate) async fn make_base(
    shared: &Shared,
    renames: &[(String, String, String)],
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    for (storage, old, new) in renames {
        guests
            .make_base(&format!("{storage}:{old}"), &format!("{storage}:{new}"))
            .await
            .map_err(|error| error_chain(&error))?;
    }
    Ok(())
}

/// Grows a disk's file (or, running, the guest's disk through QMP).
pub(crate) async fn resize(
    shared: &Shared,
    vmid: u32,
    volid: &str,
    size: u64,
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    guests
        .resize_disk(vmid, volid, size)
        .await
        .map_err(|error| error_chain(&error))
}

/// Removes destroyed volumes' files.
pub(crate) async fn remove_disks(shared: &Shared, volumes: &[String]) {
    let Some(guests) = qemu(shared) else {
        return;
    };
    for volid in volumes {
        if let Err(error) = guests.remove_disk(volid).await {
            tracing::warn!(volid, error = %error_chain(&error), "cannot remove a disk file");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// In qemu mode, answers the agent endpoints from the real guest agent; `None` otherwise
/// (the state-only handlers answer).
pub(crate) async fn intercept(shared: &Shared, request: &ApiRequest) -> Option<ApiResult> {
    let guests = qemu(shared)?;
    let command = request
        .template
        .strip_prefix("/nodes/{node}/qemu/{vmid}/agent/")?;
    let known = matches!(
        (request.method, command),
        (Method::Post, "ping" | "exec")
            | (
                Method::Get,
                "network-get-interfaces" | "exec-status" | "file-read"
            )
    );
    if !known {
        return None;
    }
    Some(agent(shared, guests, request, command).await)
}

fn agent_error(error: &AgentError) -> ApiError {
    ApiError::internal(error.to_string())
}

async fn agent(
    shared: &Shared,
    guests: &QemuGuests,
    request: &ApiRequest,
    command: &str,
) -> ApiResult {
    let vmid = vmid(request)?;
    shared.read(|state| {
        let vm = state.vm(request.path("node"), vmid).map_err(internal)?;
        if !vm.agent_enabled() {
            return Err(ApiError::internal("No QEMU guest agent configured"));
        }
        if vm.run.is_none() || !guests.is_running(vmid) {
            return Err(ApiError::internal(format!("VM {vmid} is not running")));
        }
        Ok(())
    })?;
    let call = |name: &'static str, arguments: Option<Value>| async move {
        guests
            .agent(vmid, name, arguments)
            .await
            .map_err(|error| agent_error(&error))
    };
    match command {
        "ping" => call("guest-ping", None)
            .await
            .map(|_| json!({"result": {}})),
        "network-get-interfaces" => call("guest-network-get-interfaces", None)
            .await
            .map(|result| json!({"result": result})),
        "exec" => {
            let parts: Vec<String> = match request.params.get("command") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect(),
                Some(Value::String(text)) => vec![text.clone()],
                _ => Vec::new(),
            };
            let Some((path, arguments)) = parts.split_first() else {
                return Err(ApiError::param(
                    "command",
                    "property is missing and it is not optional",
                ));
            };
            let mut arguments = json!({"path": path, "arg": arguments, "capture-output": true});
            if let Some(input) = super::param_str(request, "input-data") {
                arguments["input-data"] = json!(STANDARD.encode(input));
            }
            call("guest-exec", Some(arguments))
                .await
                .map(|result| json!({"pid": result.get("pid").cloned().unwrap_or(Value::Null)}))
        }
        "exec-status" => {
            let pid = super::param_u64(request, "pid").unwrap_or(0);
            let mut result = call("guest-exec-status", Some(json!({"pid": pid}))).await?;
            if let Some(object) = result.as_object_mut() {
                let exited = object
                    .get("exited")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                object.insert("exited".into(), json!(u8::from(exited)));
                for key in ["out-data", "err-data"] {
                    if let Some(Value::String(encoded)) = object.get(key) {
                        let decoded = STANDARD.decode(encoded).unwrap_or_default();
                        let text = String::from_utf8_lossy(&decoded).into_owned();
                        object.insert(key.into(), json!(text));
                    }
                }
                for key in ["out-truncated", "err-truncated"] {
                    if let Some(flag) = object.get(key).and_then(Value::as_bool) {
                        object.insert(key.into(), json!(u8::from(flag)));
                    }
                }
            }
            Ok(result)
        }
        _ => file_read(request, call).await,
    }
}

async fn file_read<F, Fut>(request: &ApiRequest, call: F) -> ApiResult
where
    F: Fn(&'static str, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    let file = super::param_str(request, "file")
        .unwrap_or_default()
        .to_owned();
    let offset = super::param_u64(request, "offset").unwrap_or(0);
    let limit = super::param_u64(request, "count")
        .unwrap_or(FILE_READ_LIMIT)
        .min(FILE_READ_LIMIT);
    let handle = call("guest-file-open", Some(json!({"path": file, "mode": "r"}))).await?;
    let mut content = Vec::new();
    let mut truncated = false;
    let outcome: Result<(), ApiError> = async {
        if offset > 0 {
            call(
                "guest-file-seek",
                Some(json!({"handle": handle, "offset": offset, "whence": "set"})),
            )
            .await?;
        }
        loop {
            let remaining = limit.saturating_sub(content.len() as u64);
            let chunk = remaining.clamp(1, 1024 * 1024);
            let read = call(
                "guest-file-read",
                Some(json!({"handle": handle, "count": chunk})),
            )
            .await?;
            let bytes = read
                .get("buf-b64")
                .and_then(Value::as_str)
                .and_then(|encoded| STANDARD.decode(encoded).ok())
                .unwrap_or_default();
            let eof = read.get("eof").and_then(Value::as_bool).unwrap_or(true);
            if remaining == 0 {
                truncated = !bytes.is_empty();
                break;
            }
            content.extend_from_slice(&bytes);
            if eof || bytes.is_empty() {
                break;
            }
        }
        Ok(())
    }
    .await;
    let _ = call("guest-file-close", Some(json!({"handle": handle}))).await;
    outcome?;
    let mut answer = json!({
        "content": String::from_utf8_lossy(&content),
        "bytes-read": content.len(),
    });
    if truncated {
        answer["truncated"] = json!(1);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn the_boot_disk_follows_the_boot_order_and_skips_cloudinit() {
        let vm = config(&[
            ("boot", "order=scsi0;ide2;net0"),
            ("ide2", "local-lvm:vm-100-cloudinit,media=cdrom"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=8G"),
        ]);
        assert_eq!(boot_disk(&vm).as_deref(), Some("scsi0"));
        let no_order = config(&[
            ("ide2", "local-lvm:vm-100-cloudinit,media=cdrom"),
            ("virtio0", "local-lvm:vm-100-disk-1"),
        ]);
        assert_eq!(boot_disk(&no_order).as_deref(), Some("virtio0"));
    }

    #[test]
    fn the_forward_targets_the_static_address_or_the_first_lease() {
        let fixed = config(&[("ipconfig0", "ip=192.168.10.251/24,gw=192.168.10.1")]);
        assert_eq!(guest_address(&fixed), Ipv4Addr::new(192, 168, 10, 251));
        let dhcp = config(&[("ipconfig0", "ip=dhcp")]);
        assert_eq!(guest_address(&dhcp), Ipv4Addr::new(192, 168, 10, 100));
    }
}
