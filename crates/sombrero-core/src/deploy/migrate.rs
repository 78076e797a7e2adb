//! `sombrero migrate --to NODE [--online]`: move the environment's VM to another node of
//! the cluster, for node maintenance.
//!
//! Why a command and not "edit node, deploy": a deploy never moves a VM (it finds the VM
//! wherever it is, so that an HA fail-over or a migration from the web UI is not undone).
//! Moving is a deliberate act with its own checks, done before PVE is asked: the VM is
//! ours, the target is a known, online node, a running VM needs `--online`, and a live
//! migration of local disks copies them (`with-local-disks`). After PVE's `qmigrate` task
//! the VM is looked up again, and the outputs are rewritten with the new node; the address,
//! the SSH forward and the pinned host key do not change, since the guest is the same.

use std::time::Duration;

use pve::Client;
use pve::endpoints::MigrateOptions;
use serde::Serialize;

use super::desired::Desired;
use super::error::{DeployError, DeployResult};
use super::outputs::{self, Layout};
use super::placement::Cluster;
use super::plan::{Existing, Resume, existing};

/// What a migration did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    pub environment: String,
    pub vmid: u32,
    pub from: String,
    pub to: String,
    /// Live migration (the VM kept running).
    pub online: bool,
    /// `false`: the VM was already on the target; nothing was sent.
    pub moved: bool,
    /// Local disks copied along.
    pub with_local_disks: bool,
    /// The outputs rewritten with the new node.
    pub rewritten: Vec<String>,
}

/// How long the migration task may take (disks are copied when they are local).
pub const MIGRATE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Moves the environment's VM (`desired.node` is where it is, settled from the cluster)
/// to `to`.
///
/// # Errors
/// The VM missing or not ours, the target unknown or offline, a running VM without
/// `online` ([`DeployError::NeedsOnline`]), the task failing, or the VM not on the target
/// afterwards.
pub async fn migrate(
    client: &Client,
    desired: &Desired,
    to: &str,
    online: bool,
    progress: pve::Progress<'_>,
) -> DeployResult<MigrateReport> {
    let vmid = desired.vmid;
    let Existing::Managed {
        config, running, ..
    } = existing(client, desired, Resume::Report).await?
    else {
        return Err(DeployError::VmMissing {
            vmid,
            node: desired.node.clone(),
        });
    };
    let layout = Layout::new(&desired.outputs_dir, &desired.environment);
    let mut report = MigrateReport {
        environment: desired.environment.clone(),
        vmid,
        from: desired.node.clone(),
        to: to.to_owned(),
        online: online && running,
        moved: false,
        with_local_disks: false,
        rewritten: Vec::new(),
    };
    if desired.node == to {
        return Ok(report);
    }
    let cluster = Cluster::read(client).await?;
    let Some(target) = cluster.nodes.iter().find(|node| node.name == to) else {
        return Err(DeployError::NodeUnknown {
            node: to.to_owned(),
            known: cluster.nodes.iter().map(|node| node.name.clone()).collect(),
        });
    };
    if !target.online {
        return Err(DeployError::NodeOffline {
            node: to.to_owned(),
            status: "offline".to_owned(),
        });
    }
    if running && !online {
        return Err(DeployError::NeedsOnline {
            vmid,
            node: desired.node.clone(),
        });
    }
    let site = super::placement::TemplateSite::of(u64::from(vmid), &desired.node, &config);
    let local_disks = cluster.can_use_template(to, &site).is_err();
    report.with_local_disks = local_disks && report.online;
    let options = MigrateOptions {
        target: to.to_owned(),
        online: report.online.then_some(true),
        with_local_disks: report.with_local_disks.then_some(true),
        targetstorage: None,
    };
    let doing = format!("migrating VM {vmid} from {} to {to}", desired.node);
    let upid = client
        .vm_migrate(&desired.node, u64::from(vmid), &options)
        .await
        .map_err(|error| DeployError::api(doing.clone(), error))?;
    client
        .wait_task(&upid, MIGRATE_TIMEOUT, progress)
        .await
        .map_err(|error| DeployError::api(doing.clone(), error))?;
    let after = Cluster::read(client).await?;
    if after.node_of(u64::from(vmid)) != Some(to) {
        return Err(DeployError::VmMissing {
            vmid,
            node: to.to_owned(),
        });
    }
    report.moved = true;
    report.rewritten = outputs::rewrite_node(&layout, to)?
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    Ok(report)
}
