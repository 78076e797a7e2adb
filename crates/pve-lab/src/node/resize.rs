//! `PUT .../resize`: grow a disk, absolute (`32G`) or relative (`+8G`).
//!
//! Why: since PVE 8 resize is a task, and everything that can go wrong (digest race,
//! lock, unknown disk, CD-ROM, shrinking) fails inside it with HTTP 200 on dispatch;
//! growing to the current size is a no-op, which makes client retries idempotent.

use std::sync::Arc;

use super::config::{self, drive_is_cdrom, format_size, human_size, parse_drive, parse_size};
use super::locks::{ConfigChecks, read_checked};
use super::params::vmid;
use super::tasks::{self, TaskContext};
use super::{Shared, param_str};
use crate::api::{ApiRequest, ApiResult};

/// `PUT .../resize`: absolute or `+` size, grow only; every check runs inside the task.
pub(crate) fn resize(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let disk = param_str(request, "disk").unwrap_or_default().to_owned();
    let size = param_str(request, "size").unwrap_or_default().to_owned();
    let digest = param_str(request, "digest").map(str::to_owned);
    let skiplock = super::params::skiplock(request)?;
    let spec = super::power::spec("resize", vmid, request, shared.options.durations.resize);
    tasks::spawn_on_vm(
        shared,
        request.path("node"),
        vmid,
        spec,
        |_| Ok(()),
        move |context: TaskContext| async move {
            let checks = ConfigChecks {
                digest: digest.as_deref(),
                skiplock,
            };
            let plan = read_checked(&context.shared, &node, vmid, checks, |state, vm| {
                let value = vm
                    .config
                    .get(&disk)
                    .ok_or_else(|| format!("disk '{disk}' does not exist"))?;
                let (file, options) = parse_drive(value);
                if drive_is_cdrom(&options) {
                    return Err("you can't resize a cdrom".to_owned());
                }
                let current = options
                    .iter()
                    .find(|(key, _)| key == "size")
                    .and_then(|(_, size)| parse_size(size))
                    .map(|(_, bytes)| bytes)
                    .or_else(|| state.volume(&node, &file).map(|volume| volume.size))
                    .unwrap_or(0);
                let (relative, bytes) =
                    parse_size(&size).ok_or_else(|| format!("unable to parse size '{size}'"))?;
                let wanted = if relative {
                    current.saturating_add(bytes)
                } else {
                    bytes
                };
                if wanted < current {
                    return Err("shrinking disks is not supported".to_owned());
                }
                Ok((file, current, wanted))
            })?;
            let (file, current, wanted) = plan;
            if wanted == current {
                return Ok(());
            }
            let volume = file
                .rsplit(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_owned();
            context.work().await?;
            context.log(format!(
                "  Size of logical volume pve/{volume} changed from {} to {}.",
                human_size(current),
                human_size(wanted)
            ));
            context.log(format!(
                "  Logical volume pve/{volume} successfully resized."
            ));
            context.shared.write(|state| {
                let vm = state.vm_mut(&node, vmid)?;
                let value = vm.config.get(&disk).cloned().unwrap_or_default();
                let (file, mut options) = parse_drive(&value);
                config::set_option(&mut options, "size", format_size(wanted));
                vm.config
                    .insert(disk.clone(), config::print_drive(&file, &options));
                if let Some(volume) = state.volume_mut(&node, &file) {
                    volume.size = wanted;
                }
                Ok::<_, String>(())
            })?;
            super::qemu_hooks::resize(&context.shared, vmid, &file, wanted).await
        },
    )
}
