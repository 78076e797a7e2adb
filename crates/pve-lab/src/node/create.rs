//! Creating VMs (`POST /nodes/{node}/qemu`), including `import-from` disks.
//!
//! Why: stage 1 builds the golden template from a cloud image: create a VM whose `scsi0`
//! imports `local:import/...qcow2`, add a cloud-init drive, then convert it. Disk values
//! use PVE's allocation syntax (`local-lvm:32`, `local-lvm:0,import-from=...`,
//! `local-lvm:cloudinit`), which [`allocate_drive`] turns into real volume ids, shared
//! with config updates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::json;

use super::agent::{NIC_MODELS, generate_host_key};
use super::config::{self, config_string, format_size, is_drive_key, parse_drive, print_drive};
use super::initial_state::image;
use super::params::internal;
use super::state::{State, Vm};
use super::storage::{definition, missing_storage};
use super::tasks::{self, TaskContext, TaskSpec};
use super::{Shared, param_bool};
use crate::api::{ApiRequest, ApiResult};

const GIB: u64 = 1024 * 1024 * 1024;

/// Parameters of `POST /nodes/{node}/qemu` that are not config keys.
const CONTROL: &[&str] = &[
    "node",
    "vmid",
    "archive",
    "storage",
    "force",
    "unique",
    "pool",
    "start",
    "live-restore",
    "bwlimit",
    "import-working-storage",
];

/// A `netN` value in PVE's printed form, with a generated MAC when none was given.
pub(crate) fn normalize_net(value: &str, state: &mut State) -> String {
    let mut model = None;
    let mut mac = None;
    let mut rest = Vec::new();
    for (key, item) in config::parse_properties(value, "model") {
        if key == "model" {
            model = Some(item);
        } else if NIC_MODELS.contains(&key.as_str()) {
            model = Some(key);
            mac = Some(item);
        } else if key == "macaddr" {
            mac = Some(item);
        } else {
            rest.push((key, item));
        }
    }
    let mac = mac
        .filter(|mac| !mac.is_empty())
        .unwrap_or_else(|| state.random.mac());
    let mut text = format!("{}={mac}", model.unwrap_or_else(|| "virtio".to_owned()));
    for (key, item) in rest {
        let _ = write!(text, ",{key}={item}");
    }
    text
}

/// Checks a drive value before forking: storages exist and hold images, imports exist.
pub(crate) fn check_drive(state: &State, node: &str, value: &str) -> Result<(), String> {
    let (file, options) = parse_drive(value);
    if let Some((_, import)) = options.iter().find(|(key, _)| key == "import-from")
        && state.volume(node, import).is_none()
    {
        return Err(format!("volume '{import}' does not exist"));
    }
    let Some((storage, name)) = file.split_once(':') else {
        return Ok(());
    };
    let found = definition(state, storage).ok_or_else(|| missing_storage(storage))?;
    let allocates = name == "cloudinit" || name.parse::<f64>().is_ok();
    if allocates && !found.content.split(',').any(|content| content == "images") {
        return Err(format!(
            "storage '{storage}' does not support content-type 'images'"
        ));
    }
    if !allocates && state.volume(node, &file).is_none() {
        return Err(format!("volume '{file}' does not exist"));
    }
    Ok(())
}

/// Turns PVE's allocation syntax into a volume: returns the final drive value and log lines.
pub(crate) fn allocate_drive(
    state: &mut State,
    node: &str,
    vmid: u32,
    value: &str,
) -> Result<(String, Vec<String>), String> {
    check_drive(state, node, value)?;
    let (file, mut options) = parse_drive(value);
    let Some((storage, name)) = file.split_once(':') else {
        return Ok((value.to_owned(), Vec::new()));
    };
    let storage = storage.to_owned();
    let now = super::unix_seconds();
    if name == "cloudinit" {
        let volume = format!("vm-{vmid}-cloudinit");
        state.put_volume(
            node,
            &storage,
            &volume,
            image(4 * 1024 * 1024, "raw", vmid, now),
        );
        config::set_option(&mut options, "media", "cdrom".to_owned());
        let line = format!("  Logical volume \"{volume}\" created.");
        return Ok((
            print_drive(&format!("{storage}:{volume}"), &options),
            vec![line],
        ));
    }
    let Ok(gigabytes) = name.parse::<f64>() else {
        return Ok((value.to_owned(), Vec::new()));
    };
    let mut log = Vec::new();
    let import = options
        .iter()
        .position(|(key, _)| key == "import-from")
        .map(|index| options.remove(index).1);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "sizes are small positive GiB counts"
    )]
    let mut size = (gigabytes * GIB as f64) as u64;
    if let Some(import) = &import {
        let source = state.volume(node, import).map_or(0, |volume| volume.size);
        size = size.max(source);
        log.push(format!("importing disk '{import}' to VM {vmid} ..."));
    }
    let default_format = definition(state, &storage).map_or("raw", |found| found.default_format);
    let format = options
        .iter()
        .position(|(key, _)| key == "format")
        .map_or_else(
            || default_format.to_owned(),
            |index| options.remove(index).1,
        );
    let volume = state.free_disk_name(node, &storage, vmid);
    state.put_volume(node, &storage, &volume, image(size, &format, vmid, now));
    log.push(format!("  Logical volume \"{volume}\" created."));
    if import.is_some() {
        log.push(format!(
            "transferred {} of {} (100.00%)",
            config::human_size(size),
            config::human_size(size)
        ));
        log.push(format!(
            "Successfully imported disk as 'unused0:{storage}:{volume}'"
        ));
    }
    config::set_option(&mut options, "size", format_size(size));
    Ok((print_drive(&format!("{storage}:{volume}"), &options), log))
}

/// `POST /nodes/{node}/qemu`: 500 before forking when the id is taken or a storage is bad.
pub(crate) fn create(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = u32::try_from(super::param_u64(request, "vmid").unwrap_or(0))
        .map_err(|_| crate::api::ApiError::param("vmid", "value must be at most 999999999"))?;
    let node = request.path("node").to_owned();
    let start = param_bool(request, "start").unwrap_or(false);
    let settings: BTreeMap<String, String> = request
        .params
        .iter()
        .filter(|(key, _)| !CONTROL.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), config_string(value)))
        .collect();
    if super::param_str(request, "archive").is_some() {
        return Err(internal(
            "restoring from a backup archive is not supported by the lab".to_owned(),
        ));
    }
    let spec = TaskSpec {
        kind: "qmcreate",
        node: node.clone(),
        id: vmid.to_string(),
        user: request.identity.upid_user(),
        duration: shared.options.durations.create,
    };
    shared.write(|state| {
        if state.vms.contains_key(&vmid) {
            return Err(internal(format!(
                "unable to create VM {vmid}: config file already exists"
            )));
        }
        for (_, value) in settings.iter().filter(|(key, _)| is_drive_key(key)) {
            check_drive(state, &node, value).map_err(internal)?;
        }
        let mut placeholder = Vm {
            node: node.clone(),
            ..Vm::default()
        };
        placeholder.config.insert("lock".into(), "create".into());
        state.vms.insert(vmid, placeholder);
        let upid = tasks::spawn(
            shared,
            state,
            spec,
            move |context: TaskContext| async move {
                let result = run_create(&context, &node, vmid, settings, start).await;
                if result.is_err() {
                    context.shared.write(|state| state.vms.remove(&vmid));
                }
                result
            },
        );
        Ok(json!(upid))
    })
}

async fn run_create(
    context: &TaskContext,
    node: &str,
    vmid: u32,
    settings: BTreeMap<String, String>,
    start: bool,
) -> Result<(), String> {
    context.lock_vm(vmid).await?;
    context.work().await?;
    let log = context.shared.write(|state| {
        let mut log = Vec::new();
        let mut config = BTreeMap::new();
        for (key, value) in settings {
            let value = if is_drive_key(&key) {
                let (drive, lines) = allocate_drive(state, node, vmid, &value)?;
                log.extend(lines);
                drive
            } else if config::indexed(&key, "net").is_some() {
                normalize_net(&value, state)
            } else if key == "cipassword" && !super::crypt::looks_hashed(&value) {
                super::crypt::hash_password(&value, &mut state.random)
            } else {
                value
            };
            config.insert(key, value);
        }
        config
            .entry("smbios1".into())
            .or_insert_with(|| format!("uuid={}", state.random.uuid()));
        config
            .entry("vmgenid".into())
            .or_insert_with(|| state.random.uuid());
        config
            .entry("meta".into())
            .or_insert_with(|| format!("creation-qemu=9.2.0,ctime={}", super::unix_seconds()));
        let hostname = config
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("VM{vmid}"));
        let host_key = generate_host_key(&mut state.random, &hostname);
        state.vms.insert(
            vmid,
            Vm {
                node: node.to_owned(),
                config,
                host_key,
                ..Vm::default()
            },
        );
        Ok::<_, String>(log)
    })?;
    for line in log {
        context.log(line);
    }
    if start {
        context.log(format!("start VM {vmid}"));
        let shared = Arc::clone(&context.shared);
        shared.write(|state| super::power::boot(&shared, state, node, vmid))?;
    }
    Ok(())
}
