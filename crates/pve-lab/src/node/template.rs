//! `POST .../template`: convert a VM into a template.
//!
//! Why: stage 1 ends by converting the built VM; PVE refuses running VMs and templates
//! before forking, then renames the VM's disks to `base-ID-disk-N` so linked clones can
//! share them.

use std::sync::Arc;

use super::Shared;
use super::config::{drive_is_cdrom, is_drive_key, parse_drive, print_drive};
use super::params::{internal, vmid};
use super::state::Vm;
use super::tasks::{self, TaskContext, TaskSpec};
use crate::api::{ApiRequest, ApiResult};

/// `POST .../template`: 500 before forking when running or already a template.
pub(crate) fn template(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let spec = TaskSpec {
        kind: "qmtemplate",
        node: node.clone(),
        id: vmid.to_string(),
        user: request.identity.upid_user(),
        duration: shared.options.durations.template,
    };
    let before_fork = |vm: &Vm| {
        vm.check_lock().map_err(internal)?;
        if vm.is_template() {
            return Err(internal(
                "you can't convert a template to a template".into(),
            ));
        }
        if vm.run.is_some() {
            return Err(internal(
                "you can't convert a VM to template if VM is running".into(),
            ));
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
            context.work().await?;
            let renamed = context.shared.write(|state| {
                let vm = state.vm_mut(&node, vmid)?;
                let mut renames = Vec::new();
                for (key, value) in &mut vm.config {
                    if !is_drive_key(key) {
                        continue;
                    }
                    let (file, options) = parse_drive(value);
                    if drive_is_cdrom(&options) {
                        continue;
                    }
                    let Some((storage, name)) = file.split_once(':') else {
                        continue;
                    };
                    let Some(rest) = name.strip_prefix(&format!("vm-{vmid}-")) else {
                        continue;
                    };
                    let base = format!("base-{vmid}-{rest}");
                    renames.push((storage.to_owned(), name.to_owned(), base.clone()));
                    *value = print_drive(&format!("{storage}:{base}"), &options);
                }
                vm.config.insert("template".into(), "1".into());
                for (storage, old, new) in &renames {
                    if let Some(volume) = state.remove_volume(&node, &format!("{storage}:{old}")) {
                        state.put_volume(&node, storage, new, volume);
                    }
                }
                Ok::<_, String>(renames)
            })?;
            super::qemu_hooks::make_base(&context.shared, &renamed).await?;
            for (_, old, new) in renamed {
                context.log(format!(
                    "  Renamed \"{old}\" to \"{new}\" in volume group \"pve\""
                ));
            }
            Ok(())
        },
    )
}
