//! Everything `configure` can fail with, each naming what to look at.

use std::path::PathBuf;

use thiserror::Error;

use crate::ssh::{KeyError, SshError};

/// A failed configure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigureError {
    #[error("environment {environment} has no stage 2 outputs ({} not found)", path.display())]
    NoOutputs { environment: String, path: PathBuf },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{} has no {playbook} (from {from})", path.display())]
    TreeMissing {
        path: PathBuf,
        from: String,
        playbook: &'static str,
    },
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("cloud-init on VM {vm} did not finish within {seconds} s (its status: {status})")]
    CloudInitTimeout {
        vm: String,
        seconds: u64,
        status: String,
    },
    #[error("cloud-init on VM {vm} ended `{status}`: {detail}")]
    CloudInitFailed {
        vm: String,
        status: String,
        detail: String,
    },
    #[error("VM {vm} has no /usr/bin/python3, which Ansible needs on the managed host")]
    NoPython { vm: String },
    #[error("Ansible is not installable here: {step} failed: {reason}")]
    AnsibleNotInstallable { step: String, reason: String },
    #[error("task \"{task}\" failed on {host}{}: {message}", role.as_ref().map(|role| format!(" (role {role})")).unwrap_or_default())]
    TaskFailed {
        task: String,
        role: Option<String>,
        host: String,
        message: String,
        log: PathBuf,
    },
    #[error("Ansible could not reach {host}: {message}")]
    Unreachable {
        host: String,
        message: String,
        log: PathBuf,
    },
    #[error("ansible-playbook exited with code {code} before running a task: {detail}")]
    AnsibleExited {
        code: i32,
        detail: String,
        log: PathBuf,
    },
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigureError {
    /// Exit code 2 (bad input: fix the configuration or run an earlier stage) or 1.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::NoOutputs { .. } | Self::Key(_) | Self::TreeMissing { .. }
        )
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoOutputs { environment, .. } => Some(format!(
                "run `sombrero deploy --env {environment}` first; configure reads its outputs"
            )),
            Self::Key(error) => Some(error.hint().to_owned()),
            Self::TreeMissing { .. } => Some(
                "point SOMBRERO_ANSIBLE_DIR (or paths.ansible_dir) at the repository's ansible/ \
                 directory, or unset it to use the playbooks built into sombrero"
                    .to_owned(),
            ),
            Self::Ssh(error) => error.hint(),
            Self::CloudInitTimeout { .. } => Some(
                "cloud-init is still working (a slow package upgrade?); wait and run configure \
                 again, or raise SOMBRERO_CLOUD_INIT_WAIT"
                    .to_owned(),
            ),
            Self::CloudInitFailed { .. } => Some(
                "read /var/log/cloud-init.log on the VM (`sombrero diagnose` once available); \
                 the runbook's fix for a degraded cloud-init is `sudo cloud-init clean && sudo reboot`"
                    .to_owned(),
            ),
            Self::NoPython { .. } => Some(
                "install python3 in the template (`sombrero build` does), or on the VM with \
                 `sudo apt-get install python3`"
                    .to_owned(),
            ),
            Self::AnsibleNotInstallable { .. } => Some(format!(
                "install ansible-core {}.{} or newer yourself (`python3 -m pip install \
                 ansible-core`) and put ansible-playbook on PATH",
                super::ansible::MIN_VERSION.0,
                super::ansible::MIN_VERSION.1
            )),
            Self::TaskFailed { log, .. }
            | Self::Unreachable { log, .. }
            | Self::AnsibleExited { log, .. } => {
                Some(format!("the full Ansible log is {}", log.display()))
            }
            Self::Io { .. } => None,
        }
    }
}
