//! The builder VM: created from the cloud image with the runbook's hardware, booted,
//! reached over SSH with its host key pinned through the agent, provisioned and
//! generalized by the playbooks, then powered off.
//!
//! Why the same reach rules as deploy: the builder's address (192.168.10.x in a lab) is
//! only meaningful inside its own network, so the lab's loopback forward is used and the
//! safety rule in `deploy::reach` decides what may be connected to. The host key comes
//! from the guest agent before SSH is trusted, as for every VM sombrero deploys.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pve::{Client, ConfigUpdate, DiskSize};
use serde_json::json;

use super::error::BuildError;
use super::{BUILDER_TAG, BuildRequest, Note};
use crate::configure::events::AnsibleEvent;
use crate::configure::playbook::{self, PlaybookOutcome, PlaybookRun};
use crate::configure::{ConfigureError, TaskStatus};
use crate::deploy::reach::{api_url, ask_lab, choose_route, wait_for_ssh};
use crate::deploy::{MANAGED_TAG, known_hosts};
use crate::ssh::{Session, SshTarget};

/// The builder's name: recognisable in `qm list` and by its tag.
pub(crate) fn builder_name(vmid: u32) -> String {
    format!("sombrero-builder-{vmid}")
}

/// The builder's configuration: the runbook's VM hardware (2 cores, 2 GiB), UEFI with a
/// 4M EFI disk, q35, virtio-scsi with the disk imported from the cloud image
/// (writeback cache, discard), cloud-init on `ide2`, the guest agent, DHCP.
pub(crate) fn builder_config(request: &BuildRequest, vmid: u32, image: &str) -> ConfigUpdate {
    let storage = &request.storage;
    ConfigUpdate::new()
        .set("name", builder_name(vmid))
        .tags([MANAGED_TAG, BUILDER_TAG])
        .set(
            "description",
            "sombrero build's builder VM (stage 1). A build that stops half-way leaves it; \
             the next `sombrero build` removes it.",
        )
        .set("ostype", "l26")
        .set("bios", "ovmf")
        .set("machine", "q35")
        .set(
            "efidisk0",
            format!("{storage}:1,efitype=4m,pre-enrolled-keys=0"),
        )
        .set("scsihw", "virtio-scsi-pci")
        .set(
            "scsi0",
            format!("{storage}:0,import-from={image},cache=writeback,discard=on"),
        )
        .set("boot", "order=scsi0")
        .set("ide2", format!("{storage}:cloudinit"))
        .set("agent", "enabled=1")
        .cores(2)
        .memory(2048)
        .set("net0", format!("virtio,bridge={}", request.bridge))
        .set("ipconfig0", "ip=dhcp")
        .set("ciuser", request.user.clone())
        .sshkeys([request.public_key.as_str()])
        .set("serial0", "socket")
}

/// Creates the builder and grows its disk.
pub(crate) async fn create(
    client: &Client,
    request: &BuildRequest,
    vmid: u32,
    image: &str,
) -> Result<(), BuildError> {
    let quiet = |_: &pve::WaitEvent| {};
    let node = &request.node;
    client
        .create_vm_and_wait(
            node,
            u64::from(vmid),
            builder_config(request, vmid, image),
            request.timeouts.clone,
            &quiet,
        )
        .await
        .map_err(|error| BuildError::api(format!("creating builder VM {vmid}"), error))?;
    let size = DiskSize::from_bytes(u64::from(request.disk_size_gib) << 30);
    client
        .grow_disk(
            node,
            u64::from(vmid),
            "scsi0",
            size,
            request.timeouts.clone,
            &quiet,
        )
        .await
        .map_err(|error| BuildError::api(format!("growing builder VM {vmid}'s disk"), error))?;
    Ok(())
}

/// Where Ansible and SSH reach the running builder.
#[derive(Debug, Clone)]
pub(crate) struct Reached {
    pub vm_ip: IpAddr,
    pub target: SshTarget,
    pub inventory: PathBuf,
    pub boot_seconds: f64,
}

/// Starts the builder, waits for its address and SSH, pins its host key and writes the
/// builder inventory (group `golden_builders`, host `builder`).
pub(crate) async fn boot(
    client: &Client,
    request: &BuildRequest,
    vmid: u32,
    say: Note<'_>,
) -> Result<Reached, BuildError> {
    let quiet = |_: &pve::WaitEvent| {};
    let node = &request.node;
    let started = Instant::now();
    client
        .start_vm_and_wait(node, u64::from(vmid), request.timeouts.power, &quiet)
        .await
        .map_err(|error| BuildError::api(format!("starting builder VM {vmid}"), error))?;
    let vm_ip = crate::deploy::agent_wait::agent_address(
        client,
        node,
        vmid,
        request.timeouts.agent,
        request.timeouts.power,
        &quiet,
    )
    .await?;
    say(&format!("builder VM {vmid} has address {vm_ip}"));
    let api = api_url(client)?;
    let route = choose_route(&api, &ask_lab(client, vmid).await, vm_ip);
    let target = route.target().ok_or_else(|| {
        BuildError::from(crate::deploy::DeployError::UnsafeTarget {
            target: format!("{vm_ip}:22 (no loopback forward for builder VM {vmid})"),
        })
    })?;
    wait_for_ssh(&api, target, request.timeouts.ssh).await?;
    let boot_seconds = started.elapsed().as_secs_f64();
    let key =
        crate::deploy::apply::read_host_key(client, node, vmid, request.timeouts.agent, &quiet)
            .await?;
    let dir = request.outputs_dir.join("builder");
    let known = dir.join("known_hosts");
    // A builder id is reused by every build: its old key must go.
    let _ = std::fs::remove_file(&known);
    let pattern = known_hosts::host_pattern(target.ip(), target.port());
    known_hosts::pin(&known, &pattern, &key)?;
    let ssh_target = SshTarget {
        host: target.ip().to_string(),
        port: target.port(),
        user: request.user.clone(),
        key: request.key.clone(),
        known_hosts: crate::deploy::outputs::absolute(&known),
    };
    let inventory = write_inventory(&dir, &ssh_target)?;
    Ok(Reached {
        vm_ip,
        target: ssh_target,
        inventory,
        boot_seconds,
    })
}

/// `builder/inventory.json` (JSON is YAML, which Ansible's yaml inventory plugin reads).
fn write_inventory(dir: &Path, target: &SshTarget) -> Result<PathBuf, BuildError> {
    let known = target.known_hosts.display().to_string();
    let mut host = json!({
        "ansible_host": target.host,
        "ansible_port": target.port,
        "ansible_user": target.user,
        "ansible_ssh_common_args": format!(
            "-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
        ),
    });
    if let Some(path) = target.key.path() {
        host["ansible_ssh_private_key_file"] = json!(crate::deploy::outputs::absolute(path));
    }
    let inventory = json!({
        "all": {"children": {"golden_builders": {"hosts": {"builder": host}}}}
    });
    let path = crate::deploy::outputs::absolute(&dir.join("inventory.json"));
    let text = serde_json::to_string_pretty(&inventory).unwrap_or_default() + "\n";
    crate::deploy::outputs::write_atomically(&path, &text)?;
    Ok(path)
}

/// Runs one playbook on the builder; a failed task is [`BuildError::ProvisionFailed`].
pub(crate) async fn run_playbook(
    request: &BuildRequest,
    reached: &Reached,
    session: &Session,
    vmid: u32,
    (playbook_file, label): (&str, &'static str),
    extra_vars: &serde_json::Value,
    on_event: &(dyn Fn(&AnsibleEvent) + Send + Sync),
) -> Result<PlaybookOutcome, BuildError> {
    let logs = crate::deploy::outputs::absolute(&request.logs_dir);
    let base = format!("build-{label}-{}", request.stamp);
    let log = logs.join(format!("{base}.log"));
    let events_file = logs.join(format!("{base}.events.jsonl"));
    let run = PlaybookRun {
        ansible: &request.ansible,
        tree: &request.tree,
        playbook: playbook_file,
        inventory: &reached.inventory,
        extra_vars,
        control_dir: Some(session.control_dir()),
        log: &log,
        events_file: &events_file,
    };
    let outcome = playbook::run(&run, on_event)
        .await
        .map_err(|source| BuildError::Playbook {
            builder: vmid,
            what: label,
            source: Box::new(source),
        })?;
    for event in &outcome.events {
        if let AnsibleEvent::TaskResult {
            task,
            role,
            status,
            ignored,
            message,
            ..
        } = event
            && (matches!(status, TaskStatus::Unreachable)
                || (matches!(status, TaskStatus::Failed) && !ignored))
        {
            return Err(BuildError::ProvisionFailed {
                builder: vmid,
                task: task.clone(),
                role: role.clone(),
                message: message.clone(),
                log,
            });
        }
    }
    if outcome.code != Some(0) {
        return Err(BuildError::Playbook {
            builder: vmid,
            what: label,
            source: Box::new(ConfigureError::AnsibleExited {
                code: outcome.code.unwrap_or(-1),
                detail: playbook::tail(&log, 3),
                log,
            }),
        });
    }
    Ok(outcome)
}

/// What the provisioned builder reports: Docker's version and the OS tag.
#[derive(Debug, Clone)]
pub(crate) struct BuilderFacts {
    pub docker_version: Option<String>,
    pub os_tag: Option<String>,
}

/// Reads the facts over the session's connection.
pub(crate) async fn facts(session: &Session) -> Result<BuilderFacts, BuildError> {
    let script = "sudo -n docker version --format '{{.Server.Version}}' 2>/dev/null || echo; \
                  . /etc/os-release && echo \"$ID-$VERSION_ID\"";
    let output = session
        .run(script, std::time::Duration::from_secs(60))
        .await?;
    let mut lines = output.stdout.lines().map(str::trim);
    let docker_version = lines
        .next()
        .filter(|line| !line.is_empty())
        .map(ToOwned::to_owned);
    let os_tag = lines
        .next()
        .map(|line| line.to_ascii_lowercase().replace(['.', '_'], "-"))
        .filter(|tag| !tag.is_empty() && tag != "-");
    Ok(BuilderFacts {
        docker_version,
        os_tag,
    })
}

/// Powers the builder off through ACPI, with a hard stop when it does not go.
pub(crate) async fn power_off(
    client: &Client,
    request: &BuildRequest,
    vmid: u32,
) -> Result<f64, BuildError> {
    let quiet = |_: &pve::WaitEvent| {};
    let started = Instant::now();
    let node = &request.node;
    let shutdown = client
        .shutdown_vm_and_wait(
            node,
            u64::from(vmid),
            request.timeouts.shutdown_grace,
            request.timeouts.power,
            &quiet,
        )
        .await;
    if shutdown.is_err() {
        client
            .stop_vm_and_wait(node, u64::from(vmid), request.timeouts.power, &quiet)
            .await
            .map_err(|error| BuildError::api(format!("stopping builder VM {vmid}"), error))?;
    }
    Ok(started.elapsed().as_secs_f64())
}
