//! Stage 3: the runbook's post-deploy configuration, through real Ansible.
//!
//! Why Ansible stays the engine: operators know it and extend it, and the playbooks in
//! `ansible/` run the same by hand (`ansible-playbook -i .../inventory.yml
//! playbooks/post-deploy.yml`). sombrero does what the runbook's glue did badly: it reads
//! stage 2's outputs (never a hard-coded address), finds the private key, waits for
//! cloud-init, runs the playbook with the pinned `known_hosts` over one shared SSH
//! connection, follows its events (progress, per-role phases), and writes
//! `ansible-results.json` from what the VM reports afterwards. Nothing here prints.

pub mod ansible;
pub mod cloud_init;
mod error;
pub mod events;
pub mod playbook;
pub mod results;
pub mod tree;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use ansible::{AnsibleInstall, AnsibleOrigin};
pub use error::ConfigureError;
pub use events::{AnsibleEvent, Recap, TaskStatus};
pub use results::{AnsibleResults, GuestFacts, RESULTS_FILE};
pub use tree::{AnsibleTree, POST_DEPLOY, TreeOrigin};

use crate::deploy::outputs::write_atomically;
use crate::deploy::{Layout, StageOutputs};
use crate::ssh::{Session, SshError, SshTarget};

/// Variables sombrero hands the playbook (`-e @file`); no secrets.
#[derive(Debug, Clone, Serialize)]
pub struct PlaybookVars {
    pub sombrero_version: String,
    /// The VM's user (`ciuser`), who gets the groups and sudo.
    pub jump_man_user: String,
    /// `AllowUsers` (the playbook always adds `jump_man_user`).
    pub ssh_allow_users: Vec<String>,
    pub extra_authorized_keys: Vec<String>,
    /// Only when the key is a file (with an agent, ssh finds it itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ansible_ssh_private_key_file: Option<String>,
}

/// Everything one configure needs, resolved by the caller.
#[derive(Debug, Clone)]
pub struct ConfigureRequest {
    pub outputs: StageOutputs,
    pub target: SshTarget,
    pub ansible: AnsibleInstall,
    pub tree: AnsibleTree,
    pub vars: PlaybookVars,
    pub layout: Layout,
    /// `deployments/logs`.
    pub logs_dir: PathBuf,
    /// Distinguishes this run's log files (e.g. the run id).
    pub stamp: String,
    pub cloud_init_wait: Duration,
}

/// Something configure reports while it runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigureEvent {
    /// A step of sombrero's own began (`phase`: the history phase name).
    Started { phase: &'static str, what: String },
    /// That step ended well.
    Finished { detail: String },
    /// Ansible reported something.
    Ansible(AnsibleEvent),
    /// Something worth a line of its own (a builder removed, an image standing in).
    Note { text: String },
    /// The playbook failed (said before the results are read, so the failure is recorded
    /// against the role that failed, not against reading the results).
    Failed { error: String },
}

/// The callback receiving events.
pub type ConfigureEvents<'a> = &'a (dyn Fn(&ConfigureEvent) + Send + Sync);

/// What a configure did.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigureReport {
    pub results: AnsibleResults,
    pub results_file: PathBuf,
    /// Task results that changed something, in order (`role: task`).
    pub changed_tasks: Vec<String>,
}

fn vm_label(outputs: &StageOutputs) -> String {
    format!("{} ({})", outputs.vm_id, outputs.vm_hostname)
}

/// Runs stage 3 for the request's environment.
///
/// # Errors
/// [`ConfigureError`]; `ansible-results.json` is written (status `failed`) whenever the
/// playbook ran.
pub async fn run(
    request: &ConfigureRequest,
    events: ConfigureEvents<'_>,
) -> Result<ConfigureReport, ConfigureError> {
    let outputs = &request.outputs;
    let vm = vm_label(outputs);
    let session = Session::new(request.target.clone()).map_err(|source| ConfigureError::Io {
        what: "create",
        path: std::env::temp_dir(),
        source,
    })?;
    events(&ConfigureEvent::Started {
        phase: "cloud-init",
        what: format!("cloud-init on VM {vm} via {}", request.target.display()),
    });
    let status = cloud_init::wait(&session, &vm, request.cloud_init_wait).await?;
    events(&ConfigureEvent::Finished {
        detail: format!("cloud-init {}", status.status),
    });

    let base = format!("configure-{}-{}", outputs.environment, request.stamp);
    // Absolute: Ansible runs in the tree's directory.
    let logs_dir = crate::deploy::outputs::absolute(&request.logs_dir);
    let log = logs_dir.join(format!("{base}.log"));
    let events_file = logs_dir.join(format!("{base}.events.jsonl"));
    let extra_vars = serde_json::to_value(&request.vars).unwrap_or_default();
    let inventory = PathBuf::from(&outputs.inventory_file);
    let run = playbook::PlaybookRun {
        ansible: &request.ansible,
        tree: &request.tree,
        playbook: POST_DEPLOY,
        inventory: &inventory,
        extra_vars: &extra_vars,
        control_dir: Some(session.control_dir()),
        log: &log,
        events_file: &events_file,
    };
    let forward = |event: &AnsibleEvent| events(&ConfigureEvent::Ansible(event.clone()));
    let outcome = playbook::run(&run, &forward).await?;
    let failure = failure_of(&outcome, request, &log);
    if let Some(failure) = &failure {
        events(&ConfigureEvent::Failed {
            error: failure.to_string(),
        });
    }

    events(&ConfigureEvent::Started {
        phase: "results",
        what: format!("reading the results on VM {vm}"),
    });
    let facts = GuestFacts::gather(&session, &outputs.ssh_user).await;
    let host = outputs.vm_hostname.as_str();
    let results = AnsibleResults {
        deployment_status: if failure.is_none() {
            "success"
        } else {
            "failed"
        }
        .to_owned(),
        configured_services: facts
            .as_ref()
            .map(GuestFacts::configured_services)
            .unwrap_or_default(),
        docker_status: facts
            .as_ref()
            .map_or_else(|_| "unknown".to_owned(), GuestFacts::docker_status),
        user_groups: facts.as_ref().map(|f| f.groups.clone()).unwrap_or_default(),
        firewall_rules: facts.as_ref().ok().and_then(|f| f.firewall_rules),
        completion_time: crate::history::clock::rfc3339(crate::history::clock::now_ms()),
        environment: outputs.environment.clone(),
        vm_id: outputs.vm_id.clone(),
        docker_version: facts.as_ref().ok().and_then(|f| f.docker_version.clone()),
        mise_version: facts.as_ref().ok().and_then(|f| f.mise_version.clone()),
        uv_version: facts.as_ref().ok().and_then(|f| f.uv_version.clone()),
        recap: outcome.recap(host).unwrap_or_default(),
        ansible: request.ansible.clone(),
        ansible_seconds: outcome.ansible_seconds(),
        log_file: log.display().to_string(),
        events_file: events_file.display().to_string(),
        error: failure.as_ref().map(ToString::to_string),
    };
    let results_file = write_results(&request.layout, &results)?;
    if let Some(failure) = failure {
        return Err(failure);
    }
    let facts = facts?;
    events(&ConfigureEvent::Finished {
        detail: format!(
            "{} services, {} firewall rules",
            results.configured_services.len(),
            facts.firewall_rules.unwrap_or(0)
        ),
    });
    let changed_tasks = outcome
        .events
        .iter()
        .filter_map(|event| match event {
            AnsibleEvent::TaskResult {
                task,
                role,
                status: TaskStatus::Changed,
                ..
            } => Some(format!("{}: {task}", role.as_deref().unwrap_or("play"))),
            _ => None,
        })
        .collect();
    Ok(ConfigureReport {
        results,
        results_file,
        changed_tasks,
    })
}

/// The first thing that went wrong in the playbook run, if anything did.
fn failure_of(
    outcome: &playbook::PlaybookOutcome,
    request: &ConfigureRequest,
    log: &std::path::Path,
) -> Option<ConfigureError> {
    for event in &outcome.events {
        let AnsibleEvent::TaskResult {
            task,
            role,
            host,
            status,
            ignored,
            message,
            ..
        } = event
        else {
            continue;
        };
        match status {
            TaskStatus::Failed if !ignored => {
                if message.contains("/usr/bin/python3: not found")
                    || message.contains("No such file or directory: '/usr/bin/python3'")
                {
                    return Some(ConfigureError::NoPython {
                        vm: vm_label(&request.outputs),
                    });
                }
                return Some(ConfigureError::TaskFailed {
                    task: task.clone(),
                    role: role.clone(),
                    host: host.clone(),
                    message: message.clone(),
                    log: log.to_path_buf(),
                });
            }
            TaskStatus::Unreachable => {
                if message.contains("Host key verification failed")
                    || message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                {
                    return Some(ConfigureError::Ssh(SshError::HostKeyMismatch {
                        target: request.target.display(),
                        known_hosts: request.target.known_hosts.clone(),
                    }));
                }
                return Some(ConfigureError::Unreachable {
                    host: host.clone(),
                    message: message.clone(),
                    log: log.to_path_buf(),
                });
            }
            _ => {}
        }
    }
    match outcome.code {
        Some(0) => None,
        code => Some(ConfigureError::AnsibleExited {
            code: code.unwrap_or(-1),
            detail: playbook::tail(&log.to_path_buf(), 3),
            log: log.to_path_buf(),
        }),
    }
}

/// Writes `ansible-results.json` for the environment and as the top-level copy.
fn write_results(layout: &Layout, results: &AnsibleResults) -> Result<PathBuf, ConfigureError> {
    let text = serde_json::to_string_pretty(results).unwrap_or_default() + "\n";
    let file = layout.environment_dir().join(RESULTS_FILE);
    for path in [file.clone(), layout.outputs_dir.join(RESULTS_FILE)] {
        write_atomically(&path, &text).map_err(|error| ConfigureError::Io {
            what: "write",
            path: path.clone(),
            source: std::io::Error::other(error.to_string()),
        })?;
    }
    Ok(file)
}
