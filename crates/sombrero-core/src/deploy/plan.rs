//! `sombrero plan`: what deploying would do, from reads only.
//!
//! Why a value: `plan` prints it, `deploy` executes exactly it (no second opinion between
//! what was shown and what is done), `status` reports its changes as drift, and `--json`
//! serializes the same struct the text view renders. Reading costs a handful of GETs and
//! never writes.

use pve::{Client, VmConfig, VmState};
use serde::Serialize;

use super::desired::{Desired, Marker};
use super::diff::{ChangeKind, FieldChange, diff};
use super::error::{DeployError, DeployResult};
use super::placement::Cluster;
use super::preflight;
use super::template::{self, TemplateChoice, TemplateRequest};

/// What deploying would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Clone the template into a new VM.
    Create,
    /// Change settings in place; no restart needed.
    Update,
    /// Change settings in place, then restart the VM.
    UpdateWithRestart,
    /// Nothing to change, but the VM is stopped: start it.
    Start,
    /// Nothing to do.
    NoChanges,
}

impl Action {
    /// The text view's verb.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update in place",
            Self::UpdateWithRestart => "update in place, then restart",
            Self::Start => "start (no changes)",
            Self::NoChanges => "no changes",
        }
    }
}

/// The plan for one environment.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub environment: String,
    pub node: String,
    pub vmid: u32,
    pub name: String,
    pub action: Action,
    /// The template to clone (create), or the one the VM was cloned from.
    pub template: Option<TemplateChoice>,
    /// The VM's power state now (`None`: it does not exist).
    pub power: Option<String>,
    /// Field by field; for a create, every value the config update will set.
    pub changes: Vec<FieldChange>,
    /// Things worth knowing that change nothing.
    pub notes: Vec<String>,
    /// Why the VM is on (or goes to) `node`, when the command asked the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<super::placement::Placement>,
    /// The config the plan was made from (its digest guards the update).
    #[serde(skip)]
    pub(crate) current: Option<VmConfig>,
}

impl Plan {
    /// Whether `deploy` would send any write.
    pub fn writes(&self) -> bool {
        self.action != Action::NoChanges
    }

    /// Changes that need the VM restarted.
    pub fn restart_changes(&self) -> impl Iterator<Item = &FieldChange> {
        self.changes.iter().filter(|change| change.restart)
    }
}

/// What the VM with the environment's id is.
pub(crate) enum Existing {
    Absent,
    Managed {
        config: VmConfig,
        marker: Marker,
        running: bool,
    },
}

/// Reads the VM with the environment's id and refuses one sombrero does not manage.
/// How long a run waits for the clone an interrupted run started (as long as a deploy
/// waits for its own clone).
const RESUMED_CLONE_WAIT: std::time::Duration = std::time::Duration::from_secs(900);

/// Whether [`existing`] waits for a clone an interrupted run of this project started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Writers (`deploy`, `destroy`): wait for it, then treat the VM as ours.
    Wait,
    /// Readers (`status`): never wait; report it.
    Report,
}

pub(crate) async fn existing(
    client: &Client,
    desired: &Desired,
    resume: Resume,
) -> DeployResult<Existing> {
    let vmid = u64::from(desired.vmid);
    let config = client
        .vm_config_opt(&desired.node, vmid)
        .await
        .map_err(|error| DeployError::api(format!("reading VM {vmid}"), error))?;
    let journal = super::journal::Journal::for_desired(desired);
    let Some(mut config) = config else {
        journal.clear();
        return Ok(Existing::Absent);
    };
    if Marker::find(config.description().as_deref().unwrap_or_default()).is_none()
        && journal.clone_of(&desired.node, desired.vmid).is_some()
    {
        if resume == Resume::Report {
            return Err(DeployError::CloneInProgress {
                vmid: desired.vmid,
                node: desired.node.clone(),
            });
        }
        // Our own clone, started by a run that was interrupted: wait for its task to
        // release the VM (the marker arrives with the end of the clone).
        match client
            .wait_unlocked(&desired.node, vmid, RESUMED_CLONE_WAIT, &pve::no_progress)
            .await
        {
            Ok(unlocked) => {
                config = unlocked;
                if config
                    .description()
                    .as_deref()
                    .and_then(Marker::find)
                    .is_none()
                {
                    // The clone ended without its marker: it failed, leaving a half-made
                    // VM that only this project's journal knows. Remove it; the deploy
                    // clones again.
                    client
                        .delete_vm_and_wait(
                            &desired.node,
                            vmid,
                            RESUMED_CLONE_WAIT,
                            &pve::no_progress,
                        )
                        .await
                        .map_err(|error| {
                            DeployError::api(
                                format!("removing VM {vmid}, left by a clone that failed"),
                                error,
                            )
                        })?;
                    journal.clear();
                    return Ok(Existing::Absent);
                }
                // Finished: the VM is recognised by its marker from now on.
                journal.clear();
            }
            Err(error) if error.is_not_found() => {
                // The clone failed and PVE removed its VM.
                journal.clear();
                return Ok(Existing::Absent);
            }
            Err(error) => {
                return Err(DeployError::api(
                    format!("waiting for the clone of VM {vmid} an earlier run started"),
                    error,
                ));
            }
        }
    }
    let marker = config.description().as_deref().and_then(Marker::find);
    let ours = marker
        .as_ref()
        .is_some_and(|marker| marker.environment == desired.environment);
    let (true, Some(marker)) = (ours && !config.is_template(), marker.clone()) else {
        return Err(DeployError::ForeignVm {
            vmid: desired.vmid,
            node: desired.node.clone(),
            name: config.name(),
            environment: desired.environment.clone(),
            other: marker.map(|marker| marker.environment),
            template: config.is_template(),
        });
    };
    let status = client
        .vm_status(&desired.node, vmid)
        .await
        .map_err(|error| DeployError::api(format!("reading the status of VM {vmid}"), error))?;
    Ok(Existing::Managed {
        config,
        marker,
        running: status.status == VmState::Running,
    })
}

/// Makes the plan: reads node, VM, template and preflight facts; writes nothing.
///
/// # Errors
/// Any [`DeployError`] a deploy would hit before its first write.
pub async fn plan(
    client: &Client,
    desired: &Desired,
    request: &TemplateRequest,
) -> DeployResult<Plan> {
    plan_in(client, None, desired, request).await
}

/// [`plan`] on the cluster a command already read (placement reads it first), so a plan
/// costs no second `GET /cluster/resources`; `None` reads it when the plan needs it (a
/// new VM, or an address to check).
///
/// # Errors
/// As [`plan`].
pub async fn plan_in(
    client: &Client,
    cluster: Option<&Cluster>,
    desired: &Desired,
    request: &TemplateRequest,
) -> DeployResult<Plan> {
    let mut read = None;
    preflight::check_node(client, &desired.node).await?;
    let mut plan = Plan {
        environment: desired.environment.clone(),
        node: desired.node.clone(),
        vmid: desired.vmid,
        name: desired.name.clone(),
        action: Action::NoChanges,
        template: None,
        power: None,
        changes: Vec::new(),
        notes: Vec::new(),
        placement: None,
        current: None,
    };
    match existing(client, desired, Resume::Wait).await? {
        Existing::Absent => {
            let cluster = cluster_or_read(client, cluster, &mut read).await?;
            let (choice, source) =
                template::resolve_in(client, cluster, Some(&desired.node), request).await?;
            preflight::check_storage(client, &desired.node, &desired.disk_storage).await?;
            preflight::check_bridge(client, &desired.node, &desired.bridge).await?;
            preflight::check_address_in(client, cluster, desired).await?;
            // What the update after the clone sets, shown against the template's values.
            plan.changes = diff(desired, &source, Some(choice.id), false);
            plan.notes
                .extend(super::diff::shrink_note(desired, &source, "the template"));
            plan.action = Action::Create;
            plan.template = Some(choice);
        }
        Existing::Managed {
            config,
            marker,
            running,
        } => {
            plan.power = Some(if running { "running" } else { "stopped" }.to_owned());
            plan.changes = diff(desired, &config, marker.template, running);
            if plan.changes.iter().any(|c| c.key == "net0") {
                preflight::check_bridge(client, &desired.node, &desired.bridge).await?;
            }
            if plan.changes.iter().any(|c| c.key == "ipconfig0") {
                let cluster = cluster_or_read(client, cluster, &mut read).await?;
                preflight::check_address_in(client, cluster, desired).await?;
            }
            plan.template = marker.template.map(|id| TemplateChoice {
                id,
                name: None,
                chosen_by: "the VM's marker (it was cloned from it)".to_owned(),
                node: None,
            });
            if let (TemplateRequest::Explicit { id, chosen_by }, Some(from)) =
                (request, marker.template)
                && *id != from
            {
                plan.notes.push(format!(
                    "the VM was cloned from template {from}; {chosen_by} asks for {id}: a new \
                     template needs a new VM (sombrero destroy, then sombrero deploy)"
                ));
            }
            plan.action = if plan.changes.iter().any(|c| c.restart) {
                Action::UpdateWithRestart
            } else if !plan.changes.is_empty() {
                Action::Update
            } else if running {
                Action::NoChanges
            } else {
                Action::Start
            };
            if !running && !plan.changes.is_empty() {
                plan.notes
                    .push("the VM is stopped; it will be started".to_owned());
            }
            plan.notes
                .extend(super::diff::shrink_note(desired, &config, "the VM"));
            if plan.changes.iter().any(|c| c.kind == ChangeKind::Resize) {
                plan.notes
                    .push("disks only grow; a larger disk than configured is kept".to_owned());
            }
            plan.current = Some(config);
        }
    }
    if plan.writes() {
        preflight::check_quorum(client).await?;
    }
    Ok(plan)
}

/// `given`, else the cluster read now into `read`.
async fn cluster_or_read<'a>(
    client: &Client,
    given: Option<&'a Cluster>,
    read: &'a mut Option<Cluster>,
) -> DeployResult<&'a Cluster> {
    match given {
        Some(cluster) => Ok(cluster),
        None => Ok(&*read.insert(Cluster::read(client).await?)),
    }
}
