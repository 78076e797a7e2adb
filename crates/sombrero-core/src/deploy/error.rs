//! What can stop stage 2, as values the binary turns into a message, a hint and an exit
//! code.
//!
//! Why typed: the issue asks for a clear message *and* a hint for each failure an operator
//! meets (template missing, VM id taken, address in use, storage or bridge missing, node
//! offline, a token without a privilege, a TLS pin that does not match). Classifying here,
//! next to the code that knows what it was doing, keeps the binary's hints exact and keeps
//! PVE's own text (the `#[source]`) for the `Caused by:` lines.

use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that stops `plan`, `deploy`, `status`, `destroy` or `adopt`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// No usable template: an explicit id that does not exist, or no tagged template.
    #[error("template {} does not exist on node {node}{}", id.map_or_else(|| "(none tagged)".to_owned(), |id| id.to_string()), source_text(.chosen_by.as_ref()))]
    TemplateMissing {
        id: Option<u32>,
        node: String,
        /// Where the id came from (`--template`, `TEMPLATE_ID`, packer-outputs.json, ...).
        chosen_by: Option<String>,
        /// The tags searched for when no explicit id was found.
        tags: Vec<String>,
    },
    /// The chosen id exists but is a VM, not a template.
    #[error("VM {id} on node {node} is not a template{}", source_text(.chosen_by.as_ref()))]
    NotATemplate {
        id: u32,
        node: String,
        chosen_by: Option<String>,
    },
    /// The environment's VM id holds a VM sombrero does not manage (for this environment).
    #[error("VM {vmid} on node {node} ({}) is not managed by sombrero for environment {environment}{}", name.as_deref().unwrap_or("unnamed"), other.as_ref().map(|o| format!(" (it belongs to environment {o})")).unwrap_or_default())]
    ForeignVm {
        vmid: u32,
        node: String,
        name: Option<String>,
        environment: String,
        /// The environment named in its marker, when another environment manages it.
        other: Option<String>,
        /// Whether the VM is a template (never adoptable).
        template: bool,
    },
    /// Another VM that sombrero manages already uses the address.
    #[error("address {address} is already used by VM {vmid} ({name}) on node {node}")]
    AddressInUse {
        address: IpAddr,
        vmid: u64,
        name: String,
        node: String,
    },
    /// The configured storage is not on the node, or cannot hold disk images.
    #[error("storage {storage} {problem} on node {node}")]
    StorageMissing {
        storage: String,
        node: String,
        problem: String,
        available: Vec<String>,
    },
    /// The configured bridge is not on the node.
    #[error("bridge {bridge} does not exist on node {node}")]
    BridgeMissing {
        bridge: String,
        node: String,
        available: Vec<String>,
    },
    /// The node is not in the cluster.
    #[error("node {node} is not part of the cluster (nodes: {})", known.join(", "))]
    NodeUnknown { node: String, known: Vec<String> },
    /// The node is in the cluster but not online.
    #[error("node {node} is {status}")]
    NodeOffline { node: String, status: String },
    /// The cluster has no quorum: PVE refuses every change until most nodes are back.
    #[error(
        "the cluster has no quorum ({detail}): Proxmox VE refuses every change until a majority of its nodes is online"
    )]
    NoQuorum { detail: String },
    /// The template's node is down: PVE clones a template on the node that holds it, even
    /// when its disks are on shared storage.
    #[error(
        "template {id} is on node {node}, which is {status}: a template is cloned on its own node"
    )]
    TemplateNodeOffline {
        id: u32,
        node: String,
        status: String,
    },
    /// A running VM can only move with a live migration.
    #[error("VM {vmid} on node {node} is running: a running VM moves only with a live migration")]
    NeedsOnline { vmid: u32, node: String },
    /// No node of the placement's candidates can host the VM.
    #[error("no node can host the VM (node = {choice}): {}", reasons.join("; "))]
    NoNodeFits {
        choice: String,
        reasons: Vec<String>,
    },
    /// The token lacks a privilege (PVE answered 403).
    #[error("permission denied {doing}: the API token lacks privilege {} on {}", privilege.as_deref().unwrap_or("(not named)"), path.as_deref().unwrap_or("(not named)"))]
    PermissionDenied {
        doing: String,
        privilege: Option<String>,
        path: Option<String>,
        #[source]
        source: Box<pve::Error>,
    },
    /// The TLS handshake with the API failed: an untrusted or unpinned certificate, a
    /// pin that does not match, or a server that does not speak TLS (the cause says which).
    #[error("no secure connection to {url}")]
    Tls {
        url: String,
        #[source]
        source: Box<pve::Error>,
    },
    /// `adopt` was given an id that is not the environment's.
    #[error("VM {given} is not environment {environment}'s VM id ({configured})")]
    WrongVmid {
        given: u32,
        configured: u32,
        environment: String,
    },
    /// A VM that should exist does not.
    #[error("VM {vmid} does not exist on node {node}")]
    VmMissing { vmid: u32, node: String },
    /// The VM changed between `plan` and the update (PVE's digest check).
    #[error("VM {vmid} changed while sombrero was updating it; run the command again")]
    Changed {
        vmid: u32,
        #[source]
        source: Box<pve::Error>,
    },
    /// Writing outputs, `known_hosts` or the inventory failed.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Stage 1's handoff (`packer-outputs.json`) exists but does not name a template id.
    #[error("{} is not a usable stage-1 handoff: {reason}", path.display())]
    Handoff { path: PathBuf, reason: String },
    /// The VM's SSH host key read through the agent is not a public key line.
    #[error("the host key VM {vmid} reported is not an SSH public key: {reason}")]
    BadHostKey { vmid: u32, reason: String },
    /// The VM is being cloned by a run of this project that was interrupted.
    #[error(
        "VM {vmid} on node {node} is being cloned by an earlier sombrero run that was interrupted; `sombrero deploy` waits for the clone and finishes it"
    )]
    CloneInProgress { vmid: u32, node: String },
    /// The guest agent never reported an address, through one reboot.
    #[error("the guest agent of VM {vmid} on node {node} did not report an address in {} s, through one reboot{}", waited.as_secs(), last.as_ref().map(|last| format!(" (last: {last})")).unwrap_or_default())]
    AgentSilent {
        vmid: u32,
        node: String,
        waited: std::time::Duration,
        last: Option<String>,
    },
    /// SSH did not answer in time.
    #[error("SSH on {address} did not answer within {waited:?}{}", last.as_ref().map(|l| format!(" (last: {l})")).unwrap_or_default())]
    SshTimeout {
        address: String,
        waited: std::time::Duration,
        last: Option<String>,
    },
    /// The safety rule refused a connection (never happens unless a bug builds the route).
    #[error(
        "refusing to connect to {target}: the API is on a loopback address, so the VM is only reachable through a lab forward"
    )]
    UnsafeTarget { target: String },
    /// Any other API or task failure, with what sombrero was doing.
    #[error("{doing} failed")]
    Api {
        doing: String,
        #[source]
        source: Box<pve::Error>,
    },
}

fn source_text(chosen_by: Option<&String>) -> String {
    chosen_by
        .map(|by| format!(" (chosen by {by})"))
        .unwrap_or_default()
}

impl DeployError {
    /// Wraps a client error with what was being done, classifying 403 and TLS failures.
    pub fn api(doing: impl Into<String>, source: pve::Error) -> Self {
        let doing = doing.into();
        if let Some(permission) = source.permission() {
            return Self::PermissionDenied {
                doing,
                privilege: permission.privilege,
                path: permission.path,
                source: Box::new(source),
            };
        }
        if source.is_no_quorum() {
            return Self::NoQuorum {
                detail: format!("{doing}: {source}"),
            };
        }
        if let pve::Error::Tls { base, .. } = &source {
            return Self::Tls {
                url: base.clone(),
                source: Box::new(source),
            };
        }
        Self::Api {
            doing,
            source: Box::new(source),
        }
    }

    /// Whether running the same command again may well succeed: a task that failed or
    /// timed out on a lock, an answer that was lost, a server error that passes, a VM
    /// changed under us. Not: refusals (permissions, foreign VMs, TLS), bad input, a
    /// silent agent (already retried with a reboot).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Changed { .. } => true,
            Self::Api { source, .. } => {
                matches!(
                    source.as_ref(),
                    pve::Error::TaskFailed(_)
                        | pve::Error::MaybeSent { .. }
                        | pve::Error::NotSent { .. }
                ) || source.is_lock_timeout()
                    || source.is_locked()
                    || source.is_transient_server_error()
                    || source.is_timeout()
            }
            _ => false,
        }
    }

    /// Whether the problem is in the input (configuration, arguments) rather than a failed
    /// operation: the binary exits 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::WrongVmid { .. } | Self::Handoff { .. })
    }
}

/// `Result` with [`DeployError`].
pub type DeployResult<T> = Result<T, DeployError>;

#[cfg(test)]
mod tests {
    use super::DeployError;
    use pve::{ApiError, Method};
    use std::collections::BTreeMap;

    #[test]
    fn a_403_names_the_privilege() {
        let source = pve::Error::Api(Box::new(ApiError {
            method: Method::Post,
            path: "/nodes/lloyd/qemu/1001/clone".into(),
            status: 403,
            reason: "Permission check failed (/vms/1001, VM.Clone)".into(),
            message: None,
            errors: BTreeMap::new(),
        }));
        let error = DeployError::api("cloning template 1001", source);
        let text = error.to_string();
        // Reads as a sentence with the gerunds every caller passes ("cloning template",
        // "reading VM 150"), not "may not cloning template".
        assert_eq!(
            text,
            "permission denied cloning template 1001: the API token lacks privilege VM.Clone on /vms/1001"
        );
        assert!(matches!(error, DeployError::PermissionDenied { .. }));
    }

    #[test]
    fn template_missing_names_the_node() {
        let error = DeployError::TemplateMissing {
            id: Some(1001),
            node: "lloyd".into(),
            chosen_by: Some("sombrero.toml".into()),
            tags: vec![],
        };
        let text = error.to_string();
        assert!(text.contains("1001") && text.contains("lloyd"), "{text}");
    }
}
