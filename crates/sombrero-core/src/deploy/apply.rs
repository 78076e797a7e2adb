//! `sombrero deploy`: executes a [`Plan`], then reaches the VM and writes the outputs.
//!
//! Why in this order: clone -> wait for the task AND the clone lock -> one config update
//! -> grow-only resize -> start -> agent address -> SSH answers -> host key pinned. Each
//! step is one of the places other PVE clients fail (configuring a still-locked clone,
//! losing the boot disk from the boot order, resizing down, hanging on the agent), and each
//! wait uses the client's adaptive polling with a deadline, never a fixed sleep. Steps are
//! reported as events; the binary renders them and records them as history phases.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use pve::endpoints::CloneOptions;
use pve::{Client, WaitEvent};
use serde::Serialize;

use super::desired::Desired;
use super::diff::{ChangeKind, config_update, diff};
use super::error::{DeployError, DeployResult};
use super::events::{DeployEvent, Events, Step, Timeouts};
use super::plan::{Action, Plan};
use super::reach::SshRoute;
use super::reach::{api_url, ask_lab, choose_route, wait_for_ssh};
use super::{finish, known_hosts};

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub plan: Plan,
    pub vm_ip: IpAddr,
    pub ssh: SshRoute,
    /// The banner SSH answered with.
    pub ssh_banner: Option<String>,
    /// Whether the pinned host key changed (new VM, or a VM that got new keys).
    pub host_key_changed: bool,
    pub outputs: super::outputs::StageOutputs,
}

struct Runner<'a> {
    client: &'a Client,
    desired: &'a Desired,
    events: Events<'a>,
    timeouts: Timeouts,
}

impl Runner<'_> {
    fn started(&self, step: Step, what: impl Into<String>) -> Instant {
        (self.events)(&DeployEvent::Started {
            step,
            what: what.into(),
        });
        Instant::now()
    }

    fn finished(&self, step: Step, detail: impl Into<String>) {
        (self.events)(&DeployEvent::Finished {
            step,
            detail: detail.into(),
        });
    }

    fn vmid(&self) -> u64 {
        u64::from(self.desired.vmid)
    }

    /// Clones `template` (on `template_node`; `None`: the VM's node) to the VM's node.
    async fn clone_template(
        &self,
        template: u32,
        template_node: Option<&str>,
        progress: pve::Progress<'_>,
    ) -> DeployResult<pve::VmConfig> {
        let desired = self.desired;
        let kind = if desired.linked_clone {
            "linked"
        } else {
            "full"
        };
        self.started(
            Step::Clone,
            format!("{kind} clone of template {template} to VM {}", desired.vmid),
        );
        let options = CloneOptions {
            newid: self.vmid(),
            name: Some(desired.name.clone()),
            description: Some(desired.description_text(Some(template))),
            full: Some(!desired.linked_clone),
            storage: (!desired.linked_clone).then(|| desired.disk_storage.clone()),
            target: template_node
                .filter(|node| *node != desired.node)
                .map(|_| desired.node.clone()),
            ..CloneOptions::default()
        };
        let source_node = template_node.unwrap_or(&desired.node);
        // Written before the request: an interrupted run's successor recognises the VM.
        let journal = super::journal::Journal::for_desired(desired);
        journal
            .record_clone(&super::journal::CloneEntry {
                node: desired.node.clone(),
                vmid: desired.vmid,
                template,
                started: crate::history::clock::rfc3339(crate::history::clock::now_ms()),
            })
            .map_err(|source| DeployError::Write {
                path: desired.outputs_dir.clone(),
                source,
            })?;
        let config = self
            .client
            .clone_vm_and_wait(
                source_node,
                u64::from(template),
                &options,
                self.timeouts.clone,
                progress,
            )
            .await
            .map_err(|error| DeployError::api(format!("cloning template {template}"), error))?;
        // The VM carries the marker now: it is recognised without the journal.
        journal.clear();
        self.finished(
            Step::Clone,
            format!("VM {} created, unlocked", desired.vmid),
        );
        Ok(config)
    }

    async fn configure(
        &self,
        changes: &[super::diff::FieldChange],
        digest: Option<&str>,
        progress: pve::Progress<'_>,
    ) -> DeployResult<()> {
        let desired = self.desired;
        let config_changes = changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Config)
            .count();
        if config_changes > 0 {
            self.started(
                Step::Configure,
                format!("one config update ({config_changes} keys)"),
            );
            let update = config_update(changes, digest);
            self.client
                .vm_config_set(&desired.node, self.vmid(), update)
                .await
                .map_err(|error| {
                    if error.mentions("checksum mismatch") {
                        DeployError::Changed {
                            vmid: desired.vmid,
                            source: Box::new(error),
                        }
                    } else {
                        DeployError::api(
                            format!("updating the config of VM {}", desired.vmid),
                            error,
                        )
                    }
                })?;
            let keys: Vec<&str> = changes
                .iter()
                .filter(|c| c.kind == ChangeKind::Config)
                .map(|c| c.key.as_str())
                .collect();
            self.finished(Step::Configure, keys.join(", "));
        }
        if changes.iter().any(|c| c.kind == ChangeKind::Resize) {
            self.started(
                Step::Resize,
                format!("grow {} to {}", desired.disk_slot, desired.disk_size),
            );
            let outcome = self
                .client
                .grow_disk(
                    &desired.node,
                    self.vmid(),
                    &desired.disk_slot,
                    desired.disk_size,
                    self.timeouts.power,
                    progress,
                )
                .await
                .map_err(|error| {
                    DeployError::api(format!("resizing {}", desired.disk_slot), error)
                })?;
            let detail = match outcome {
                pve::GrowOutcome::Grown(size) => format!("grown to {size}"),
                pve::GrowOutcome::AlreadyLarge(size) => format!("already {size}"),
            };
            self.finished(Step::Resize, detail);
        }
        Ok(())
    }

    async fn power(&self, restart: bool, progress: pve::Progress<'_>) -> DeployResult<()> {
        let (node, vmid) = (&self.desired.node, self.vmid());
        let step = if restart { Step::Restart } else { Step::Start };
        self.started(
            step,
            if restart {
                format!("restart VM {vmid}")
            } else {
                format!("start VM {vmid}")
            },
        );
        if restart {
            let shutdown = self
                .client
                .shutdown_vm_and_wait(
                    node,
                    vmid,
                    self.timeouts.shutdown_grace,
                    self.timeouts.power,
                    progress,
                )
                .await;
            if shutdown.is_err() {
                self.client
                    .stop_vm_and_wait(node, vmid, self.timeouts.power, progress)
                    .await
                    .map_err(|error| DeployError::api(format!("stopping VM {vmid}"), error))?;
            }
        }
        self.client
            .start_vm_and_wait(node, vmid, self.timeouts.power, progress)
            .await
            .map_err(|error| DeployError::api(format!("starting VM {vmid}"), error))?;
        self.finished(step, "running");
        Ok(())
    }

    /// Reads the host key through the agent; right after boot the file may not exist yet.
    async fn host_key(&self) -> DeployResult<String> {
        self.started(
            Step::HostKey,
            format!("read {} through the agent", known_hosts::HOST_KEY_FILE),
        );
        let forward = |event: &WaitEvent| {
            (self.events)(&DeployEvent::Waiting {
                event: event.clone(),
            });
        };
        read_host_key(
            self.client,
            &self.desired.node,
            self.desired.vmid,
            self.timeouts.agent,
            &forward,
        )
        .await
    }
}

/// Reads VM `vmid`'s SSH host key through the guest agent (right after boot the file may
/// not exist yet: retried until `timeout`), as a `known_hosts` key.
///
/// # Errors
/// [`DeployError::BadHostKey`] for a file that holds no key; API errors.
pub(crate) async fn read_host_key(
    client: &Client,
    node: &str,
    vmid: u32,
    timeout: Duration,
    progress: pve::Progress<'_>,
) -> DeployResult<String> {
    let started = Instant::now();
    let mut interval = Duration::from_millis(50);
    let text = loop {
        match client
            .agent_file_read(node, u64::from(vmid), known_hosts::HOST_KEY_FILE)
            .await
        {
            Ok(read) => break read.content,
            Err(error) if started.elapsed() < timeout && error.permission().is_none() => {
                progress(&WaitEvent::AgentNotReady {
                    vmid: u64::from(vmid),
                    reason: error.to_string(),
                    elapsed: started.elapsed(),
                });
            }
            Err(error) => return Err(DeployError::api("reading the VM's SSH host key", error)),
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(1));
    };
    known_hosts::parse_host_key(&text).map_err(|reason| DeployError::BadHostKey { vmid, reason })
}

/// Executes `plan` (made by [`super::plan::plan`] for `desired`), then waits for the
/// agent's address, checks SSH, pins the host key and writes the outputs.
///
/// # Errors
/// The first failing step's [`DeployError`]; what was done before stays done (rerunning
/// `deploy` continues from there).
pub async fn apply(
    client: &Client,
    desired: &Desired,
    plan: Plan,
    timeouts: Timeouts,
    events: Events<'_>,
) -> DeployResult<DeployReport> {
    let runner = Runner {
        client,
        desired,
        events,
        timeouts,
    };
    let forward = |event: &WaitEvent| {
        events(&DeployEvent::Waiting {
            event: event.clone(),
        });
    };
    let progress: pve::Progress<'_> = &forward;
    let running = plan.power.as_deref() == Some("running");
    match plan.action {
        Action::Create => {
            let template = plan.template.as_ref().map_or(0, |choice| choice.id);
            let template_node = plan.template.as_ref().and_then(|c| c.node.as_deref());
            let config = runner
                .clone_template(template, template_node, progress)
                .await?;
            let changes = diff(desired, &config, Some(template), false);
            runner
                .configure(&changes, config.digest().as_deref(), progress)
                .await?;
            runner.power(false, progress).await?;
        }
        Action::Update | Action::UpdateWithRestart => {
            let digest = plan.current.as_ref().and_then(pve::VmConfig::digest);
            runner
                .configure(&plan.changes, digest.as_deref(), progress)
                .await?;
            if plan.action == Action::UpdateWithRestart || !running {
                runner.power(running, progress).await?;
            }
        }
        Action::Start => runner.power(false, progress).await?,
        Action::NoChanges => {}
    }
    runner.started(Step::Address, "wait for the guest agent's address");
    let vm_ip = super::agent_wait::agent_address(
        client,
        &desired.node,
        desired.vmid,
        timeouts.agent,
        timeouts.power,
        progress,
    )
    .await?;
    runner.finished(Step::Address, vm_ip.to_string());
    let api = api_url(client)?;
    let answer = ask_lab(client, desired.vmid).await;
    let route = choose_route(&api, &answer, vm_ip);
    let (connect_host, connect_port) = route
        .target()
        .map_or((vm_ip, 22), |target| (target.ip(), target.port()));
    let ssh_banner = match (&route, route.target()) {
        (_, Some(target)) => {
            runner.started(Step::Ssh, format!("wait until SSH answers on {target}"));
            let banner = wait_for_ssh(&api, target, timeouts.ssh).await?;
            runner.finished(Step::Ssh, banner.clone());
            Some(banner)
        }
        (SshRoute::Skipped { reason }, None) => {
            events(&DeployEvent::Skipped {
                step: Step::Ssh,
                reason: reason.clone(),
            });
            None
        }
        (_, None) => None,
    };
    // Read after sshd answers: cloud-init replaces a template's stale host keys before
    // sshd starts, so an earlier read could pin a key the VM no longer has.
    let key = runner.host_key().await?;
    let layout = super::outputs::Layout::new(&desired.outputs_dir, &desired.environment);
    let pattern = known_hosts::host_pattern(connect_host, connect_port);
    let host_key_changed = known_hosts::pin(&layout.known_hosts(), &pattern, &key)?;
    runner.finished(Step::HostKey, format!("pinned for {pattern}"));
    runner.started(Step::Outputs, "write the stage outputs");
    let outputs =
        finish::write_outputs(desired, &plan, vm_ip, connect_host, connect_port, &layout)?;
    runner.finished(Step::Outputs, layout.outputs().display().to_string());
    Ok(DeployReport {
        plan,
        vm_ip,
        ssh: route,
        ssh_banner,
        host_key_changed,
        outputs,
    })
}
