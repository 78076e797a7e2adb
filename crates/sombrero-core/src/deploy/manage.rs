//! `status`, `destroy` and `adopt`: looking at, removing and taking over an environment's VM.
//!
//! Why together: all three start from the same question, "is the VM with this
//! environment's id ours?", and must answer it the same way. `destroy` refuses a VM
//! without sombrero's marker (so a typo in `vmid` cannot delete someone's VM), and
//! `adopt` is the only way to add the marker to a VM sombrero did not create.

use std::path::PathBuf;

use pve::{Client, ConfigUpdate, VmState, select_address};
use serde::Serialize;

use super::desired::{Desired, MANAGED_TAG, Marker};
use super::diff::{FieldChange, diff};
use super::error::{DeployError, DeployResult};
use super::events::{DeployEvent, Events, Step, Timeouts};
use super::known_hosts;
use super::outputs::{self, Layout};
use super::plan::{Existing, Resume, existing};

/// What `sombrero status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub environment: String,
    pub node: String,
    pub vmid: u32,
    pub exists: bool,
    /// Whether sombrero manages it for this environment.
    pub managed: bool,
    pub name: Option<String>,
    pub power: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub address: Option<String>,
    /// `agent` or `ipconfig0`.
    pub address_source: Option<String>,
    /// The guest agent of a running VM: `answering`, `no address yet`, `not answering:
    /// REASON`, or `not enabled`; `None` when the VM is not running.
    pub agent: Option<String>,
    pub template: Option<u32>,
    pub lock: Option<String>,
    /// What `deploy` would change.
    pub drift: Vec<FieldChange>,
    /// Why the VM is not ours, when it is not.
    pub problem: Option<String>,
}

/// Reads the environment's VM: power, uptime, address, template and drift. Never writes.
///
/// # Errors
/// API errors (a foreign VM is reported, not an error).
pub async fn status(client: &Client, desired: &Desired) -> DeployResult<Status> {
    let mut status = Status {
        environment: desired.environment.clone(),
        node: desired.node.clone(),
        vmid: desired.vmid,
        exists: false,
        managed: false,
        name: None,
        power: None,
        uptime_seconds: None,
        address: None,
        address_source: None,
        agent: None,
        template: None,
        lock: None,
        drift: Vec::new(),
        problem: None,
    };
    let (config, marker, running) = match existing(client, desired, Resume::Report).await {
        Ok(Existing::Absent) => return Ok(status),
        Ok(Existing::Managed {
            config,
            marker,
            running,
        }) => (config, marker, running),
        Err(error @ (DeployError::ForeignVm { .. } | DeployError::CloneInProgress { .. })) => {
            status.exists = true;
            status.problem = Some(error.to_string());
            return Ok(status);
        }
        Err(error) => return Err(error),
    };
    let vmid = u64::from(desired.vmid);
    let current = client
        .vm_status(&desired.node, vmid)
        .await
        .map_err(|error| DeployError::api(format!("reading the status of VM {vmid}"), error))?;
    status.exists = true;
    status.managed = true;
    status.name = config.name();
    status.power = Some(
        match current.status {
            VmState::Running => "running",
            VmState::Stopped => "stopped",
            VmState::Paused => "paused",
            _ => "unknown",
        }
        .to_owned(),
    );
    status.uptime_seconds = current.uptime.filter(|_| running);
    status.lock = config.lock();
    status.template = marker.template;
    status.drift = diff(desired, &config, marker.template, running);
    if running && !config.agent_enabled() {
        status.agent = Some("not enabled".to_owned());
    }
    if running && config.agent_enabled() {
        let mac = config
            .net0()
            .ok()
            .flatten()
            .and_then(|net| net.macaddr().map(str::to_owned));
        status.agent = Some(match client.agent_interfaces(&desired.node, vmid).await {
            Ok(answer) => match select_address(&answer.result, mac.as_deref()) {
                Some(address) => {
                    status.address = Some(address.to_string());
                    status.address_source = Some("agent".to_owned());
                    "answering".to_owned()
                }
                None => "answering, no address yet".to_owned(),
            },
            Err(error) => format!(
                "not answering: {}",
                error
                    .api()
                    .map_or_else(|| error.to_string(), |api| api.reason.clone())
            ),
        });
    }
    if status.address.is_none()
        && let Ok(Some(ipconfig)) = config.ipconfig0()
        && let Some(pve::Ipv4Setting::Static(net)) = ipconfig.ip
    {
        status.address = Some(net.addr().to_string());
        status.address_source = Some("ipconfig0".to_owned());
    }
    Ok(status)
}

/// What `destroy` removed.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub environment: String,
    pub vmid: u32,
    /// Whether there was a VM to delete.
    pub deleted: bool,
    pub removed_files: Vec<PathBuf>,
}

/// The VM `destroy` would delete: `Some((name, running))`, `None` when there is none.
///
/// # Errors
/// [`DeployError::ForeignVm`] for a VM sombrero does not manage; API errors.
pub async fn destroy_target(
    client: &Client,
    desired: &Desired,
) -> DeployResult<Option<(String, bool)>> {
    match existing(client, desired, Resume::Wait).await? {
        Existing::Absent => Ok(None),
        Existing::Managed {
            config, running, ..
        } => Ok(Some((config.name().unwrap_or_default(), running))),
    }
}

/// Shuts the VM down (stop as fallback), deletes it with purge, and removes the
/// environment's outputs and pinned host keys.
///
/// # Errors
/// [`DeployError::ForeignVm`] (nothing is touched), API errors, file errors.
pub async fn destroy(
    client: &Client,
    desired: &Desired,
    timeouts: Timeouts,
    events: Events<'_>,
) -> DeployResult<DestroyReport> {
    let forward = |event: &pve::WaitEvent| {
        events(&DeployEvent::Waiting {
            event: event.clone(),
        });
    };
    let vmid = u64::from(desired.vmid);
    let node = &desired.node;
    let target = destroy_target(client, desired).await?;
    let deleted = target.is_some();
    if let Some((_, running)) = target {
        if running {
            events(&DeployEvent::Started {
                step: Step::Stop,
                what: format!(
                    "shut down VM {vmid} (stop after {:?})",
                    timeouts.shutdown_grace
                ),
            });
            let shutdown = client
                .shutdown_vm_and_wait(
                    node,
                    vmid,
                    timeouts.shutdown_grace,
                    timeouts.power,
                    &forward,
                )
                .await;
            if shutdown.is_err() {
                client
                    .stop_vm_and_wait(node, vmid, timeouts.power, &forward)
                    .await
                    .map_err(|error| DeployError::api(format!("stopping VM {vmid}"), error))?;
            }
            events(&DeployEvent::Finished {
                step: Step::Stop,
                detail: "stopped".into(),
            });
        }
        events(&DeployEvent::Started {
            step: Step::Delete,
            what: format!("delete VM {vmid} with purge"),
        });
        client
            .delete_vm_and_wait(node, vmid, timeouts.power, &forward)
            .await
            .map_err(|error| DeployError::api(format!("deleting VM {vmid}"), error))?;
        events(&DeployEvent::Finished {
            step: Step::Delete,
            detail: "deleted".into(),
        });
    }
    events(&DeployEvent::Started {
        step: Step::Cleanup,
        what: "remove the environment's outputs and host keys".into(),
    });
    let layout = Layout::new(&desired.outputs_dir, &desired.environment);
    if let Some(previous) = outputs::read(&layout) {
        let host = previous.ssh_host.parse();
        if let Ok(host) = host {
            let pattern = known_hosts::host_pattern(host, previous.ssh_port);
            known_hosts::forget(&layout.known_hosts(), &pattern)?;
        }
    }
    let removed_files = outputs::remove(&layout)?;
    events(&DeployEvent::Finished {
        step: Step::Cleanup,
        detail: format!("{} paths removed", removed_files.len()),
    });
    Ok(DestroyReport {
        environment: desired.environment.clone(),
        vmid: desired.vmid,
        deleted,
        removed_files,
    })
}

/// What `adopt` did.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptReport {
    pub environment: String,
    pub vmid: u32,
    /// `false` when the VM already carried this environment's marker.
    pub adopted: bool,
}

/// Takes over VM `vmid` for the environment: adds the marker and the tags (one update,
/// guarded by the config digest). The VM is not otherwise changed; `plan` shows the drift.
///
/// # Errors
/// [`DeployError::WrongVmid`], [`DeployError::VmMissing`], [`DeployError::ForeignVm`] for
/// templates and VMs of another environment, API errors.
pub async fn adopt(client: &Client, desired: &Desired, vmid: u32) -> DeployResult<AdoptReport> {
    if vmid != desired.vmid {
        return Err(DeployError::WrongVmid {
            given: vmid,
            configured: desired.vmid,
            environment: desired.environment.clone(),
        });
    }
    let id = u64::from(vmid);
    let config = client
        .vm_config_opt(&desired.node, id)
        .await
        .map_err(|error| DeployError::api(format!("reading VM {vmid}"), error))?
        .ok_or_else(|| DeployError::VmMissing {
            vmid,
            node: desired.node.clone(),
        })?;
    let description = config.description().unwrap_or_default();
    let marker = Marker::find(&description);
    let report = |adopted| AdoptReport {
        environment: desired.environment.clone(),
        vmid,
        adopted,
    };
    let other_environment = marker
        .as_ref()
        .is_some_and(|marker| marker.environment != desired.environment);
    if config.is_template() || other_environment {
        return Err(DeployError::ForeignVm {
            vmid,
            node: desired.node.clone(),
            name: config.name(),
            environment: desired.environment.clone(),
            other: marker.map(|marker| marker.environment),
            template: config.is_template(),
        });
    }
    if marker.is_some() {
        return Ok(report(false));
    }
    let new_description = Marker {
        environment: desired.environment.clone(),
        template: None,
    }
    .apply_to(&description);
    let mut tags = config.tags();
    tags.extend([MANAGED_TAG.to_owned(), desired.environment.clone()]);
    tags.sort();
    tags.dedup();
    let mut update = ConfigUpdate::new()
        .set("description", new_description)
        .tags(&tags);
    if let Some(digest) = config.digest() {
        update = update.digest(&digest);
    }
    client
        .vm_config_set(&desired.node, id, update)
        .await
        .map_err(|error| DeployError::api(format!("marking VM {vmid} as managed"), error))?;
    Ok(report(true))
}
