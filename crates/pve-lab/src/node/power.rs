//! Power and disk tasks: start, stop, shutdown, reboot, resize, destroy.
//!
//! Why: these are the operations whose failures PVE reports *inside* the task (already
//! running, locked, shrinking, lock timeouts) while the HTTP call returned 200 with a
//! UPID; only the checks PVE makes before forking its worker answer with an HTTP error.

use std::sync::Arc;

use super::cloudinit::snapshot;
use super::config::{self, drive_is_cdrom, parse_drive};
use super::locks::{ConfigChecks, read_checked};
use super::params::{internal, vmid};
use super::state::{RunState, State};
use super::tasks::{self, TaskContext, TaskSpec};
use super::{Shared, param_bool};
use crate::api::{ApiRequest, ApiResult};

/// PVE's config lock timeout message for a VM.
pub(crate) fn lock_timeout_message(vmid: u32) -> String {
    super::locks::timeout_message(&super::locks::vm_lock(vmid))
}

pub(crate) fn spec(
    kind: &'static str,
    vmid: u32,
    request: &ApiRequest,
    duration: std::time::Duration,
) -> TaskSpec {
    TaskSpec {
        kind,
        node: request.path("node").to_owned(),
        id: vmid.to_string(),
        user: request.identity.upid_user(),
        duration,
    }
}

/// Marks a VM running (pending applied, cloud-init regenerated, agent up after the delay).
pub(crate) fn boot(
    shared: &Shared,
    state: &mut State,
    node: &str,
    vmid: u32,
) -> Result<(), String> {
    let pid = state.allocate_pid();
    let now = super::unix_millis();
    let agent_never = shared.draw_agent_never();
    let delay = shared.scaled(shared.options.agent_boot_delay);
    let vm = state.vm_mut(node, vmid)?;
    vm.apply_pending();
    let has_cloudinit_drive = vm.config.iter().any(|(key, value)| {
        config::is_drive_key(key) && parse_drive(value).0.contains("cloudinit")
    });
    vm.cloudinit = has_cloudinit_drive.then(|| snapshot(&vm.config));
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let boots = bootable(&vm.config);
    if !boots {
        tracing::debug!(vmid, "no disk in the boot order: the guest never comes up");
    }
    vm.run = Some(RunState {
        pid,
        started_ms: now,
        agent_ready_ms: (boots && !agent_never).then(|| now.saturating_add(delay_ms)),
        cloudinit: vm.cloudinit.clone(),
    });
    Ok(())
}

/// Whether the guest boots an OS: the boot order holds a disk (not only CD-ROMs or NICs);
/// the legacy form (`boot: cdn`) boots when it lists `c`. Losing the boot disk from the
/// order (a known failure after clones) leaves a guest whose agent never answers.
fn bootable(config: &std::collections::BTreeMap<String, String>) -> bool {
    let Some(boot) = config.get("boot") else {
        return true;
    };
    if !boot.contains("order=") {
        let legacy = config::parse_properties(boot, "legacy")
            .into_iter()
            .find(|(key, _)| key == "legacy")
            .map(|(_, value)| value);
        return legacy.is_none_or(|letters| letters.contains('c'));
    }
    super::vm::boot_order(config).iter().any(|device| {
        config::is_drive_key(device)
            && config
                .get(device)
                .is_some_and(|value| !drive_is_cdrom(&parse_drive(value).1))
    })
}

/// The node has one bridge, `vmbr0`; PVE fails the start for any other.
fn check_bridges(vm: &super::state::Vm) -> Result<(), String> {
    let effective = super::vm::effective_config(vm);
    for (key, value) in &effective {
        if config::indexed(key, "net").is_none() {
            continue;
        }
        let bridge = config::parse_properties(value, "model")
            .into_iter()
            .find(|(name, _)| name == "bridge")
            .map(|(_, bridge)| bridge);
        if let Some(bridge) = bridge
            && bridge != "vmbr0"
        {
            return Err(format!("bridge '{bridge}' does not exist"));
        }
    }
    Ok(())
}

/// `POST .../status/start`: fails inside the task when locked or already running.
pub(crate) fn start(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let skiplock = super::params::skiplock(request)?;
    let spec = spec("qmstart", vmid, request, shared.options.durations.start);
    tasks::spawn_on_vm(
        shared,
        request.path("node"),
        vmid,
        spec,
        |_| Ok(()),
        move |context: TaskContext| async move {
            let checks = ConfigChecks {
                skiplock,
                ..ConfigChecks::default()
            };
            let has_cloudinit = read_checked(&context.shared, &node, vmid, checks, |_, vm| {
                if vm.is_template() {
                    return Err("you can't start a vm if it's a template".to_owned());
                }
                if vm.run.is_some() {
                    return Err(format!("VM {vmid} already running"));
                }
                check_bridges(vm)?;
                Ok(vm.config.values().any(|value| value.contains("cloudinit")))
            })?;
            if has_cloudinit {
                context.log("generating cloud-init ISO");
            }
            context.work().await?;
            let qemu_pid = super::qemu_hooks::start(&context.shared, &node, vmid).await?;
            let shared = Arc::clone(&context.shared);
            shared.write(|state| {
                boot(&shared, state, &node, vmid)?;
                super::qemu_hooks::booted(state, &node, vmid, qemu_pid);
                Ok(())
            })
        },
    )
}

/// `POST .../status/stop` and `.../status/shutdown`: stopping a stopped VM is fine.
pub(crate) fn stop(shared: &Arc<Shared>, request: &ApiRequest, graceful: bool) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let skiplock = super::params::skiplock(request)?;
    let (kind, duration) = if graceful {
        ("qmshutdown", shared.options.durations.shutdown)
    } else {
        ("qmstop", shared.options.durations.stop)
    };
    let spec = spec(kind, vmid, request, duration);
    let timeout =
        std::time::Duration::from_secs(super::param_u64(request, "timeout").unwrap_or(180));
    let force = param_bool(request, "forceStop").unwrap_or(false);
    tasks::spawn_on_vm(
        shared,
        request.path("node"),
        vmid,
        spec,
        |_| Ok(()),
        move |context: TaskContext| async move {
            let checks = ConfigChecks {
                skiplock,
                ..ConfigChecks::default()
            };
            let running = read_checked(&context.shared, &node, vmid, checks, |_, vm| {
                Ok(vm.run.is_some())
            })?;
            if !running {
                return Ok(());
            }
            super::qemu_hooks::stop(&context.shared, vmid, graceful, timeout, force).await?;
            context.work().await?;
            context.shared.write(|state| {
                let vm = state.vm_mut(&node, vmid)?;
                vm.run = None;
                vm.apply_pending();
                Ok(())
            })
        },
    )
}

/// `POST .../status/reboot`: 500 before forking when the VM is not running.
pub(crate) fn reboot(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let spec = spec("qmreboot", vmid, request, shared.options.durations.reboot);
    let before_fork = |vm: &super::state::Vm| {
        if vm.run.is_none() {
            return Err(internal(format!("VM {vmid} not running")));
        }
        Ok(())
    };
    tasks::spawn_on_vm(
        shared,
        request.path("node"),
        vmid,
        spec,
        before_fork,
        move |context: TaskContext| async move {
            let checks = ConfigChecks::default();
            read_checked(&context.shared, &node, vmid, checks, |_, _| Ok(()))?;
            context.work().await?;
            let timeout = std::time::Duration::from_secs(180);
            super::qemu_hooks::stop(&context.shared, vmid, true, timeout, true).await?;
            let qemu_pid = super::qemu_hooks::start(&context.shared, &node, vmid).await?;
            let shared = Arc::clone(&context.shared);
            shared.write(|state| {
                let vm = state.vm_mut(&node, vmid)?;
                if vm.run.is_none() {
                    return Err(format!("VM {vmid} not running"));
                }
                vm.run = None;
                boot(&shared, state, &node, vmid)?;
                super::qemu_hooks::booted(state, &node, vmid, qemu_pid);
                Ok(())
            })
        },
    )
}

/// The volumes a VM's config references (drives and `unusedN`, not CD-ROM images).
pub(crate) fn referenced_volumes(vm: &super::state::Vm) -> Vec<String> {
    vm.config
        .iter()
        .chain(vm.pending.iter())
        .filter(|(key, _)| config::is_drive_key(key) || config::indexed(key, "unused").is_some())
        .filter_map(|(_, value)| {
            let (file, options) = parse_drive(value);
            let is_image = !drive_is_cdrom(&options) || file.contains("cloudinit");
            (is_image && file.contains(':')).then_some(file)
        })
        .collect()
}

/// `DELETE /nodes/{node}/qemu/{vmid}`: 500 before forking when running or protected.
pub(crate) fn destroy(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let skiplock = super::params::skiplock(request)?;
    let unreferenced = param_bool(request, "destroy-unreferenced-disks").unwrap_or(false);
    let spec = spec("qmdestroy", vmid, request, shared.options.durations.destroy);
    let before_fork = |vm: &super::state::Vm| {
        if vm
            .config
            .get("protection")
            .is_some_and(|value| value == "1")
        {
            return Err(internal(format!(
                "can't remove VM {vmid} - protection mode enabled"
            )));
        }
        if vm.run.is_some() {
            return Err(internal(format!("VM {vmid} is running - destroy failed")));
        }
        Ok(())
    };
    tasks::spawn_on_vm(
        shared,
        request.path("node"),
        vmid,
        spec,
        before_fork,
        move |context: TaskContext| async move {
            let checks = ConfigChecks {
                skiplock,
                ..ConfigChecks::default()
            };
            let volumes = read_checked(&context.shared, &node, vmid, checks, |state, vm| {
                let mut volumes = referenced_volumes(vm);
                if unreferenced {
                    for (storage, name, volume) in state.visible_volumes(&node) {
                        let volid = format!("{storage}:{name}");
                        if volume.vmid == Some(vmid) && !volumes.contains(&volid) {
                            volumes.push(volid);
                        }
                    }
                }
                for volid in &volumes {
                    let in_use = state
                        .volumes
                        .values()
                        .flat_map(|names| names.values())
                        .any(|volume| volume.parent.as_deref() == Some(volid.as_str()));
                    if in_use {
                        return Err(format!(
                            "base volume '{volid}' is still in use by linked clones"
                        ));
                    }
                }
                Ok(volumes)
            })?;
            context.work().await?;
            for volid in &volumes {
                let name = volid.rsplit(['/', ':']).next().unwrap_or_default();
                context.log(format!("  Logical volume \"{name}\" successfully removed."));
            }
            context.shared.write(|state| {
                for volid in &volumes {
                    state.remove_volume(&node, volid);
                }
                state.vms.remove(&vmid);
            });
            super::qemu_hooks::remove_disks(&context.shared, &volumes).await;
            Ok(())
        },
    )
}
