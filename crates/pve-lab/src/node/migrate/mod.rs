//! `POST /nodes/{node}/qemu/{vmid}/migrate`: moving a VM to another cluster node.
//!
//! Why: node maintenance means moving VMs away and back, and a client must know which node
//! a VM is on afterwards. The rules follow qemu-server (`migrate_vm` and `QemuMigrate`):
//! before the fork, `target is local node.` (400), `no such cluster node`, the missing
//! config, the config lock, and `can't migrate running VM without --online`; inside the
//! `qmigrate` task (whose UPID is on the source node), a target that is down, local disks
//! of a running VM without `with-local-disks`, and linked clones on local storage end the
//! task with `migration aborted` after an `ERROR:` line saying why. Disks on shared
//! storage stay where they are; local disks move to the target node's storage of the same
//! name, or to the one `targetstorage` maps them to.
//!
//! Simulation (decision 112): an online migration keeps the VM running without a restart.
//! For a real QEMU guest the lab keeps the very same process (one machine hosts every
//! node), so its SSH forward, agent and uptime survive, which is what a live migration
//! looks like from the guest; local disk files stay where they are unless the volume
//! changes storage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::config::{drive_is_cdrom, is_drive_key, parse_drive, print_drive};
use super::params::{internal, vmid};
use super::state::State;
use super::tasks::{self, TaskContext, TaskSpec};
use super::{Shared, param_bool, param_str};
use crate::api::{ApiError, ApiRequest, ApiResult};

mod storage_map;

use storage_map::{StorageMap, parse_storage_map};

/// What a migration asked for.
#[derive(Debug, Clone)]
struct Request {
    node: String,
    target: String,
    vmid: u32,
    online: bool,
    with_local_disks: bool,
    map: StorageMap,
}

/// `POST .../migrate`: the checks qemu-server makes before forking, then `qmigrate`.
pub(crate) fn migrate(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let vmid = vmid(request)?;
    let node = request.path("node").to_owned();
    let target = param_str(request, "target").unwrap_or_default().to_owned();
    if target == node {
        return Err(ApiError::param("target", "target is local node."));
    }
    if !shared.options.is_member(&target) {
        return Err(internal(format!("no such cluster node '{target}'")));
    }
    let user = request.identity.upid_user();
    for option in ["force", "migration_type", "migration_network"] {
        if request.params.contains_key(option) && user != crate::auth::ROOT_USER {
            return Err(ApiError::param(option, "Only root may use this option."));
        }
    }
    let map = match param_str(request, "targetstorage") {
        Some(text) => parse_storage_map(text).map_err(|error| {
            ApiError::param(
                "targetstorage",
                format!("failed to parse storage map: {error}"),
            )
        })?,
        None => StorageMap::default(),
    };
    let wanted = Request {
        node: node.clone(),
        target,
        vmid,
        online: param_bool(request, "online").unwrap_or(false),
        with_local_disks: param_bool(request, "with-local-disks").unwrap_or(false),
        map,
    };
    let spec = TaskSpec {
        kind: "qmigrate",
        node,
        id: vmid.to_string(),
        user,
        duration: shared.options.durations.migrate,
    };
    shared.write(|state| {
        let vm = state.vm(&wanted.node, vmid).map_err(internal)?;
        vm.check_lock().map_err(internal)?;
        if vm.run.is_some() && !wanted.online {
            return Err(internal(
                "can't migrate running VM without --online".to_owned(),
            ));
        }
        let targets = wanted
            .map
            .entries
            .values()
            .chain(wanted.map.default.as_ref());
        for storage in targets {
            let found = super::storage::definition(state, storage)
                .ok_or_else(|| internal(super::storage::missing_storage(storage)))?;
            if !found.content.split(',').any(|content| content == "images") {
                return Err(internal(format!(
                    "storage '{storage}' does not support vm images"
                )));
            }
        }
        let upid = tasks::spawn(
            shared,
            state,
            spec,
            move |context: TaskContext| async move {
                let started = Instant::now();
                let result = run(&context, &wanted, started).await;
                let duration = duration_text(started);
                context.shared.write(|state| {
                    if let Some(vm) = state.vms.get_mut(&wanted.vmid)
                        && vm.lock() == Some("migrate")
                    {
                        vm.config.remove("lock");
                    }
                });
                match result {
                    Ok(()) => {
                        context.log(format!(
                            "migration finished successfully (duration {duration})"
                        ));
                        Ok(())
                    }
                    Err(error) => {
                        context.log(format!(
                            "ERROR: migration aborted (duration {duration}): {error}"
                        ));
                        Err("migration aborted".to_owned())
                    }
                }
            },
        );
        Ok(json!(upid))
    })
}

/// One local volume the migration moves: drive key, old and new volume id.
#[derive(Debug, Clone)]
struct Move {
    key: String,
    from: String,
    to_storage: String,
    to_name: String,
}

async fn run(context: &TaskContext, wanted: &Request, started: Instant) -> Result<(), String> {
    let vmid = wanted.vmid;
    context.lock_vm(vmid).await?;
    let running = prepare(context, wanted)?;
    let members = context.shared.options.cluster_nodes();
    let index = members
        .iter()
        .position(|member| *member == wanted.target)
        .unwrap_or(0);
    context.log(format!(
        "starting migration of VM {vmid} to node '{}' ({})",
        wanted.target,
        super::membership::member_ip(index)
    ));
    let moves = context.shared.write(|state| {
        let vm = state.vm_mut(&wanted.node, vmid)?;
        vm.config.insert("lock".into(), "migrate".into());
        let config = vm.config.clone();
        Ok::<_, String>(plan_moves(state, wanted, &config))
    })?;
    if !moves.is_empty() {
        context.log("copying local disk images");
    }
    context.work_part(1, 2).await?;
    if running {
        context.log(format!(
            "starting VM {vmid} on remote node '{}'",
            wanted.target
        ));
        context.log("start remote tunnel");
        context.log(format!(
            "starting online/live migration on unix:/run/qemu-server/{vmid}.migrate"
        ));
    }
    context.work_part(1, 1).await?;
    if running {
        context.log("migration status: completed");
    }
    let renamed = context
        .shared
        .write(|state| finish(state, wanted, &moves))?;
    for (from, to) in &renamed {
        context.log(format!("volume '{from}' is '{to}' on the target"));
    }
    if !running {
        let copies: Vec<(String, Option<String>, String)> = renamed
            .iter()
            .filter(|(from, to)| from != to)
            .map(|(from, to)| (from.clone(), None, to.clone()))
            .collect();
        super::qemu_hooks::clone_disks(&context.shared, &copies).await?;
        let old: Vec<String> = copies.into_iter().map(|(from, _, _)| from).collect();
        super::qemu_hooks::remove_disks(&context.shared, &old).await;
    }
    tracing::debug!(vmid, target = %wanted.target, elapsed = ?started.elapsed(), "migrated");
    Ok(())
}

/// qemu-server's `prepare`: the VM as the worker finds it, the target reachable, and every
/// local volume migratable. Returns whether the VM runs (an online migration).
fn prepare(context: &TaskContext, wanted: &Request) -> Result<bool, String> {
    let shared = &context.shared;
    let (running, findings) = shared.read(|state| {
        let vm = state.vm(&wanted.node, wanted.vmid)?;
        vm.check_lock()?;
        let running = vm.run.is_some();
        if running && !wanted.online {
            return Err("can't migrate running VM without --online".to_owned());
        }
        Ok((running, scan(state, wanted, &vm.config, running)))
    })?;
    if !shared.membership.is_online(&wanted.target) {
        return Err("Can't connect to destination address using public key".to_owned());
    }
    let mut failed = false;
    for finding in findings {
        match finding {
            Finding::Info(line) => context.log(line),
            Finding::Refused { volid, reason } => {
                failed = true;
                context.log(format!(
                    "WARN: can't migrate local disk '{volid}': {reason}"
                ));
            }
            Finding::Fatal(message) => return Err(message),
        }
    }
    if failed {
        return Err("can't migrate VM - check log".to_owned());
    }
    Ok(running)
}

/// What the volume scan found about one volume.
enum Finding {
    Info(String),
    Refused { volid: String, reason: String },
    Fatal(String),
}

fn scan(
    state: &State,
    wanted: &Request,
    config: &BTreeMap<String, String>,
    running: bool,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (key, value) in config.iter().filter(|(key, _)| is_drive_key(key)) {
        let (volid, options) = parse_drive(value);
        let Some((storage, _)) = volid.split_once(':') else {
            continue;
        };
        if super::storage::is_shared(storage) {
            continue;
        }
        let cloudinit = volid.contains("cloudinit");
        if drive_is_cdrom(&options) && !cloudinit {
            findings.push(Finding::Refused {
                volid,
                reason: "local cdrom image".to_owned(),
            });
            continue;
        }
        if let Some(base) = state
            .volume(&wanted.node, &volid)
            .and_then(|volume| volume.parent.clone())
        {
            findings.push(Finding::Fatal(format!(
                "can't migrate '{volid}' as it's a clone of '{}'",
                base.rsplit(':').next().unwrap_or(&base)
            )));
            continue;
        }
        let has_clones = state
            .visible_volumes(&wanted.node)
            .any(|(_, _, volume)| volume.parent.as_deref() == Some(volid.as_str()));
        if has_clones {
            findings.push(Finding::Refused {
                volid,
                reason: "referenced by linked clone(s)".to_owned(),
            });
            continue;
        }
        if cloudinit {
            findings.push(Finding::Info(format!(
                "found generated disk '{volid}' (in current VM config)"
            )));
            continue;
        }
        if running && !wanted.with_local_disks {
            findings.push(Finding::Refused {
                volid: volid.clone(),
                reason: "can't live migrate attached local disks without with-local-disks option"
                    .to_owned(),
            });
        }
        findings.push(Finding::Info(format!(
            "found local disk '{volid}' (attached, {key})"
        )));
    }
    findings
}

/// Where each local volume goes on the target: the mapped storage, the same name when it
/// is free there.
fn plan_moves(state: &State, wanted: &Request, config: &BTreeMap<String, String>) -> Vec<Move> {
    let mut moves: Vec<Move> = Vec::new();
    for (key, value) in config.iter().filter(|(key, _)| is_drive_key(key)) {
        let (volid, _) = parse_drive(value);
        let Some((storage, name)) = volid.split_once(':') else {
            continue;
        };
        if super::storage::is_shared(storage) || state.volume(&wanted.node, &volid).is_none() {
            continue;
        }
        let to_storage = wanted.map.target(storage).to_owned();
        let taken = |candidate: &str| {
            state
                .volume(&wanted.target, &format!("{to_storage}:{candidate}"))
                .is_some()
                || moves
                    .iter()
                    .any(|planned| planned.to_storage == to_storage && planned.to_name == candidate)
        };
        let to_name = if taken(name) {
            let mut index = 0_u32;
            loop {
                let candidate = format!("vm-{}-disk-{index}", wanted.vmid);
                if !taken(&candidate) {
                    break candidate;
                }
                index += 1;
            }
        } else {
            name.to_owned()
        };
        moves.push(Move {
            key: key.clone(),
            from: volid.clone(),
            to_storage,
            to_name,
        });
    }
    moves
}

/// Phase 3: the volumes are on the target, the config is in the target's directory.
/// Returns `(old volid, new volid)` of each moved volume.
fn finish(
    state: &mut State,
    wanted: &Request,
    moves: &[Move],
) -> Result<Vec<(String, String)>, String> {
    let mut renamed = Vec::new();
    for planned in moves {
        if let Some(volume) = state.remove_volume(&wanted.node, &planned.from) {
            state.put_volume(
                &wanted.target,
                &planned.to_storage,
                &planned.to_name,
                volume,
            );
        }
        renamed.push((
            planned.from.clone(),
            format!("{}:{}", planned.to_storage, planned.to_name),
        ));
    }
    let vm = state.vm_mut(&wanted.node, wanted.vmid)?;
    for (planned, (_, to)) in moves.iter().zip(&renamed) {
        if let Some(value) = vm.config.get(&planned.key) {
            let (_, options) = parse_drive(value);
            let value = print_drive(to, &options);
            vm.config.insert(planned.key.clone(), value);
        }
    }
    vm.config.remove("lock");
    vm.node.clone_from(&wanted.target);
    Ok(renamed)
}

/// `HH:MM:SS`, as PVE prints a migration's duration.
fn duration_text(started: Instant) -> String {
    let seconds = started.elapsed().as_secs();
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}
