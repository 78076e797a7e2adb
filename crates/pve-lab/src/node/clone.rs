//! Cloning VMs and converting them to templates.
//!
//! Why: clone is the heart of stage 2 and the source of most client bugs (lock timeouts
//! under parallel clones, configuring the target before its `lock: clone` clears). The
//! rules follow qemu-server: `full` defaults to "source is not a template", linked clones
//! only from templates and without `storage`/`format`, new MACs and SMBIOS UUID,
//! `template` dropped, name defaulting to `Copy-of-VM-<name>`; the target exists with only
//! `lock: clone` while the task runs; the UPID's id is the SOURCE vmid. With `target`
//! (another cluster node), every volume of the source, CD-ROMs included, must be on
//! shared storage, and so must `storage`; the source node's worker does the copy and the
//! new VM then lives on the target.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::agent::{generate_host_key, net_mac};
use super::config::{self, drive_is_cdrom, human_size, is_drive_key, parse_drive, print_drive};
use super::initial_state::image;
use super::locks::{self, LockMode};
use super::params::{internal, vmid};
use super::state::{State, Vm};
use super::storage::{definition, missing_storage};
use super::tasks::{self, TaskContext, TaskSpec};
use super::{Shared, param_bool, param_str, param_u64};
use crate::api::{ApiError, ApiRequest, ApiResult};

/// Keys a clone never copies.
const NOT_COPIED: &[&str] = &[
    "template",
    "lock",
    "parent",
    "snaptime",
    "vmstate",
    "runningmachine",
    "runningcpu",
];

/// One disk the clone creates: config key, source volume, new volume, size.
#[derive(Debug, Clone)]
struct DiskCopy {
    key: String,
    source: String,
    target_storage: String,
    target_name: String,
    size: u64,
    format: String,
    linked: bool,
}

/// `POST .../clone`.
pub(crate) fn clone(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let newid = param_u64(request, "newid")
        .and_then(|newid| u32::try_from(newid).ok())
        .ok_or_else(|| ApiError::param("newid", "property is missing and it is not optional"))?;
    let storage = param_str(request, "storage").map(str::to_owned);
    let format = param_str(request, "format").map(str::to_owned);
    let name = param_str(request, "name").map(str::to_owned);
    let description = param_str(request, "description").map(str::to_owned);
    let target = param_str(request, "target")
        .filter(|target| *target != node && *target != "localhost")
        .map(str::to_owned);
    if let Some(target) = &target
        && !shared.options.is_member(target)
    {
        return Err(internal(format!("no such cluster node '{target}'")));
    }
    if newid == vmid {
        return Err(ApiError::param(
            "newid",
            "newid should be different from vmid",
        ));
    }
    if let Some(snapshot) = param_str(request, "snapname") {
        return Err(internal(format!("snapshot '{snapshot}' does not exist")));
    }
    let user = request.identity.upid_user();
    shared.write(|state| {
        let source = state.vm(&node, vmid).map_err(internal)?.clone();
        source.check_lock().map_err(internal)?;
        let full = param_bool(request, "full").unwrap_or(!source.is_template());
        if !full && storage.is_some() {
            return Err(internal(
                "parameter 'storage' not allowed for linked clones".into(),
            ));
        }
        if !full && format.is_some() {
            return Err(internal(
                "parameter 'format' not allowed for linked clones".into(),
            ));
        }
        if let Some(storage) = &storage {
            let found =
                definition(state, storage).ok_or_else(|| internal(missing_storage(storage)))?;
            if !found.content.split(',').any(|content| content == "images") {
                return Err(ApiError::param(
                    "storage",
                    format!("storage '{storage}' does not support vm images"),
                ));
            }
            if target.is_some() && !found.shared {
                return Err(internal(format!(
                    "can't clone to non-shared storage '{storage}'"
                )));
            }
        }
        if let Some(target) = &target
            && !uses_only_shared_storage(&source)
        {
            return Err(internal(format!(
                "can't clone VM to node '{target}' (VM uses local storage)"
            )));
        }
        let (mut new_config, disks) = plan(
            state,
            &node,
            vmid,
            newid,
            &source,
            full,
            storage.as_deref(),
            format.as_deref(),
        )
        .map_err(internal)?;
        if state.vms.contains_key(&newid) {
            return Err(internal(format!(
                "unable to create VM {newid}: config file already exists"
            )));
        }
        let old_name = source
            .config
            .get("name")
            .cloned()
            .unwrap_or_else(|| vmid.to_string());
        let new_name = name.unwrap_or_else(|| format!("Copy-of-VM-{old_name}"));
        new_config.insert("name".into(), new_name.clone());
        if let Some(description) = description {
            new_config.insert("description".into(), description);
        }
        let host_key = generate_host_key(&mut state.random, &new_name);
        let source_running = source.run.is_some();
        let mut placeholder = Vm {
            node: node.clone(),
            ..Vm::default()
        };
        placeholder.config.insert("lock".into(), "clone".into());
        state.vms.insert(newid, placeholder);
        let home = target.unwrap_or_else(|| node.clone());
        let duration = if full {
            shared.options.durations.clone_full
        } else {
            shared.options.durations.clone_linked
        };
        let spec = TaskSpec {
            kind: "qmclone",
            node: node.clone(),
            id: vmid.to_string(),
            user,
            duration,
        };
        let upid = tasks::spawn(
            shared,
            state,
            spec,
            move |context: TaskContext| async move {
                let mut result = run_clone(&context, vmid, newid, source_running, &disks).await;
                if result.is_ok() {
                    let copies = full_copies(&context.shared, &node, &disks);
                    result = super::qemu_hooks::clone_disks(&context.shared, &copies).await;
                }
                context.shared.write(|state| match &result {
                    Ok(()) => {
                        for disk in &disks {
                            let mut volume =
                                image(disk.size, &disk.format, newid, super::unix_seconds());
                            if disk.linked {
                                volume.parent = Some(disk.source.clone());
                            }
                            state.put_volume(
                                &node,
                                &disk.target_storage,
                                &disk.target_name,
                                volume,
                            );
                        }
                        state.vms.insert(
                            newid,
                            Vm {
                                node: home,
                                config: new_config,
                                host_key,
                                ..Vm::default()
                            },
                        );
                    }
                    Err(_) => {
                        state.vms.remove(&newid);
                    }
                });
                result
            },
        );
        Ok(json!(upid))
    })
}

/// The disks a full clone copies (source, its parent, target), for real guests' files.
fn full_copies(
    shared: &Shared,
    node: &str,
    disks: &[DiskCopy],
) -> Vec<(String, Option<String>, String)> {
    shared.read(|state| {
        disks
            .iter()
            .filter(|disk| !disk.linked && !disk.source.contains("cloudinit"))
            .map(|disk| {
                let parent = state
                    .volume(node, &disk.source)
                    .and_then(|volume| volume.parent.clone());
                let target = format!("{}:{}", disk.target_storage, disk.target_name);
                (disk.source.clone(), parent, target)
            })
            .collect()
    })
}

async fn run_clone(
    context: &TaskContext,
    vmid: u32,
    newid: u32,
    source_running: bool,
    disks: &[DiskCopy],
) -> Result<(), String> {
    let first_storage = disks
        .first()
        .map_or("local-lvm", |disk| disk.target_storage.as_str());
    let storage_timeout = |storage: &str| {
        format!(
            "clone failed: {}",
            locks::timeout_message(&locks::storage_lock(storage))
        )
    };
    context.lock(storage_timeout(first_storage)).await?;
    let source_mode = if source_running {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    };
    context.acquire(&locks::vm_lock(vmid), source_mode).await?;
    context
        .acquire(&locks::vm_lock(newid), LockMode::Exclusive)
        .await?;
    for disk in disks {
        let kind = if disk.linked { "linked" } else { "full" };
        context.log(format!(
            "create {kind} clone of drive {} ({})",
            disk.key, disk.source
        ));
        let storage_lock = locks::storage_lock(&disk.target_storage);
        context
            .acquire(&storage_lock, LockMode::Exclusive)
            .await
            .map_err(|_| storage_timeout(&disk.target_storage))?;
        context.work_part(1, 20).await?;
        context.release(&storage_lock);
        context.log(format!(
            "  Logical volume \"{}\" created.",
            disk.target_name.rsplit('/').next().unwrap_or_default()
        ));
        if !disk.linked && !disk.target_name.ends_with("cloudinit") {
            let total = human_size(disk.size);
            for step in 0..=4_u32 {
                context.work_part(1, 5).await?;
                let done = disk.size / 4 * u64::from(step);
                context.log(format!(
                    "transferred {} of {total} ({}.00%)",
                    human_size(done),
                    step * 25
                ));
            }
        }
    }
    context.work().await?;
    tracing::debug!(newid, "clone finished");
    Ok(())
}

/// The target config and the disks to create, per qemu-server's clone rules.
#[expect(
    clippy::too_many_arguments,
    reason = "qemu-server's clone inputs, each a separate rule"
)]
fn plan(
    state: &mut State,
    node: &str,
    vmid: u32,
    newid: u32,
    source: &Vm,
    full: bool,
    storage: Option<&str>,
    format: Option<&str>,
) -> Result<(BTreeMap<String, String>, Vec<DiskCopy>), String> {
    let mut new_config = BTreeMap::new();
    let mut disks = Vec::new();
    let mut used_names: Vec<String> = Vec::new();
    let source_config = source.config.clone();
    for (key, value) in &source_config {
        if NOT_COPIED.contains(&key.as_str()) || config::indexed(key, "unused").is_some() {
            continue;
        }
        if config::indexed(key, "net").is_some() {
            new_config.insert(key.clone(), replace_mac(value, &state.random.mac()));
            continue;
        }
        if !is_drive_key(key) {
            new_config.insert(key.clone(), value.clone());
            continue;
        }
        let (file, options) = parse_drive(value);
        let is_cloudinit = file.contains("cloudinit");
        if drive_is_cdrom(&options) && !is_cloudinit {
            new_config.insert(key.clone(), value.clone());
            continue;
        }
        let (source_storage, source_name) = file
            .split_once(':')
            .ok_or_else(|| format!("unable to parse volume ID '{file}'"))?;
        let source_volume = state.volume(node, &file).cloned();
        let linked = !full && !is_cloudinit;
        if linked && !source_name.starts_with(&format!("base-{vmid}-")) {
            return Err(format!(
                "Linked clone feature is not supported for drive '{key}'"
            ));
        }
        let target_storage = if linked {
            source_storage.to_owned()
        } else {
            storage.unwrap_or(source_storage).to_owned()
        };
        let target_name = if is_cloudinit {
            format!("vm-{newid}-cloudinit")
        } else {
            let mut name = state.free_disk_name(node, &target_storage, newid);
            while used_names.contains(&name) {
                let index = used_names.len();
                name = format!("vm-{newid}-disk-{index}");
            }
            used_names.push(name.clone());
            if linked {
                format!("{source_name}/{name}")
            } else {
                name
            }
        };
        let size = source_volume.as_ref().map_or(0, |volume| volume.size);
        let default_format =
            definition(state, &target_storage).map_or("raw", |found| found.default_format);
        let volume_format = if linked {
            "raw"
        } else {
            format.unwrap_or(default_format)
        };
        new_config.insert(
            key.clone(),
            print_drive(&format!("{target_storage}:{target_name}"), &options),
        );
        disks.push(DiskCopy {
            key: key.clone(),
            source: file.clone(),
            target_storage,
            target_name,
            size,
            format: volume_format.to_owned(),
            linked,
        });
    }
    if let Some(smbios) = new_config.get_mut("smbios1") {
        let uuid = state.random.uuid();
        let mut pairs = config::parse_properties(smbios, "uuid");
        config::set_option(&mut pairs, "uuid", uuid);
        *smbios = config::print_properties(&pairs, "");
    }
    if new_config.contains_key("vmgenid") {
        new_config.insert("vmgenid".into(), state.random.uuid());
    }
    Ok((new_config, disks))
}

/// qemu-server's `check_storage_access_clone` verdict: every volume the config refers to
/// (disks and CD-ROM images alike; an empty drive or the host's `cdrom` does not count)
/// is on shared storage.
fn uses_only_shared_storage(source: &Vm) -> bool {
    source
        .config
        .iter()
        .filter(|(key, _)| is_drive_key(key))
        .all(|(_, value)| {
            let (file, _) = parse_drive(value);
            match file.split_once(':') {
                Some((storage, _)) => super::storage::is_shared(storage),
                None => true,
            }
        })
}

/// A `netN` value with a new MAC.
fn replace_mac(net: &str, mac: &str) -> String {
    let old = net_mac(net).unwrap_or_default();
    if old.is_empty() {
        return net.to_owned();
    }
    net.replacen(&old, mac, 1)
}
