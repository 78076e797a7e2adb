//! Hints for stage-2 errors: the fix an operator can apply, next to the errors.
//!
//! Why here and not in the binary: a hint names what to change (a setting, a command to
//! run) and that knowledge belongs with the code that classified the failure; every
//! command that meets the error (plan, deploy, status, destroy, adopt, and later up and
//! rollback) then gives the same advice, and the binary only renders it (`hint:`).

use super::error::DeployError;

/// What to do about a failed TLS handshake, by what failed.
pub fn tls_hint(problem: &pve::TlsProblem) -> String {
    match problem {
        pve::TlsProblem::Untrusted { fingerprint, .. } => format!(
            "if this is your node (compare with `pvenode cert info` on it, or what `sombrero \
             lab serve` printed), pin its certificate: SOMBRERO_PVE_FINGERPRINT={fingerprint} \
             (or api.fingerprint in sombrero.toml); or trust its CA with SOMBRERO_PVE_CA_FILE"
        ),
        pve::TlsProblem::PinMismatch { .. } => "the node's certificate changed, or this is not \
             your node: compare the pinned fingerprint (SOMBRERO_PVE_FINGERPRINT, \
             api.fingerprint) with `pvenode cert info` on the node before pinning the new one"
            .to_owned(),
        pve::TlsProblem::NotTls => "check the API URL's scheme and port (Proxmox VE serves \
             https on 8006)"
            .to_owned(),
        _ => "check the API URL and the node's certificate (`pvenode cert info`)".to_owned(),
    }
}

/// The hint for a client error that carries one (a failed TLS handshake), for commands
/// that meet the client's errors directly (`sombrero api`).
pub fn client_error_hint(error: &pve::Error) -> Option<String> {
    match error {
        pve::Error::Tls { problem, .. } => Some(tls_hint(problem)),
        _ => None,
    }
}

impl DeployError {
    /// What the operator can do about this error, if sombrero knows (the binary prints it
    /// as `hint:`).
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            DeployError::TemplateMissing { node, tags, .. } => format!(
                "build one with `sombrero build` (it tags its templates {}), or name an existing \
             template on {node} with --template ID or TEMPLATE_ID",
                if tags.is_empty() {
                    super::TEMPLATE_TAGS.join(", ")
                } else {
                    tags.join(", ")
                }
            ),
            DeployError::Handoff { .. } => "fix or delete it (`sombrero build` writes it), or \
             name the template with --template ID or TEMPLATE_ID"
                .into(),
            DeployError::NotATemplate { .. } => {
                "pass the id of a template (qm list shows templates), or run `sombrero build`"
                    .into()
            }
            DeployError::ForeignVm {
                vmid,
                template: false,
                other: None,
                ..
            } => format!(
                "sombrero never changes a VM it did not create; take it over with `sombrero adopt \
             {vmid}`, or choose another vmid for this environment in sombrero.toml"
            ),
            DeployError::ForeignVm { .. } => {
                "choose another vmid for this environment in sombrero.toml".into()
            }
            DeployError::AddressInUse { vmid, .. } => format!(
                "give this environment another ip in sombrero.toml, or destroy VM {vmid}'s environment first"
            ),
            DeployError::StorageMissing { available, .. } => format!(
                "set disk_storage in sombrero.toml to one of: {}",
                available.join(", ")
            ),
            DeployError::BridgeMissing { available, .. } => format!(
                "set bridge in sombrero.toml to one of: {}",
                available.join(", ")
            ),
            DeployError::NodeUnknown { known, .. } => format!(
                "set node in sombrero.toml (or PKR_VAR_proxmox_node) to one of: {}",
                known.join(", ")
            ),
            DeployError::NodeOffline { node, .. } => format!(
                "bring {node} back online (pvecm status), or set node = \"auto\" in \
                 sombrero.toml so another node is chosen"
            ),
            DeployError::NoQuorum { .. } => "bring nodes back online until most of them are up \
                 (pvecm status shows the votes); then run the command again"
                .to_owned(),
            DeployError::TemplateNodeOffline { node, .. } => format!(
                "bring {node} back online (pvecm status), or build a template on an online \
                 node (sombrero build) and deploy from it"
            ),
            DeployError::NeedsOnline { .. } => "add --online for a live migration (the VM \
                 keeps running), or stop the VM first for an offline one"
                .to_owned(),
            DeployError::NoNodeFits { .. } => "free memory on a node, put the template on \
                 storage shared by the nodes (sombrero build with [build] storage on it), or \
                 widen the node list in sombrero.toml"
                .to_owned(),
            DeployError::PermissionDenied {
                privilege, path, ..
            } => format!(
                "grant the token's role {} on {} (pveum acl modify), or use a token without \
             privilege separation",
                privilege.as_deref().unwrap_or("the missing privilege"),
                path.as_deref().unwrap_or("/")
            ),
            DeployError::Tls { source, .. } => return client_error_hint(source),
            DeployError::WrongVmid { configured, .. } => {
                format!(
                    "adopt the environment's VM ({configured}), or change its vmid in sombrero.toml"
                )
            }
            DeployError::Changed { .. } => {
                "someone changed the VM meanwhile; run `sombrero plan` again".into()
            }
            DeployError::AgentSilent { vmid, .. } => format!(
                "is qemu-guest-agent installed and enabled in the template (apt install \
                 qemu-guest-agent; systemctl enable qemu-guest-agent), and the VM's agent \
                 option on (qm set {vmid} --agent enabled=1)? `qm agent {vmid} ping` on the \
                 node tells; the VM's console shows a boot that hangs"
            ),
            DeployError::SshTimeout { .. } => {
                "check the VM's console (cloud-init, sshd) and the network path to it".into()
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DeployError;

    #[test]
    fn stage_two_errors_carry_hints_that_name_the_fix() {
        let foreign = DeployError::ForeignVm {
            vmid: 152,
            node: "lloyd".into(),
            name: Some("legacy".into()),
            environment: "staging".into(),
            other: None,
            template: false,
        };
        assert!(
            DeployError::hint(&foreign).is_some_and(|text| text.contains("sombrero adopt 152"))
        );
        let other = DeployError::ForeignVm {
            vmid: 152,
            node: "lloyd".into(),
            name: None,
            environment: "staging".into(),
            other: Some("production".into()),
            template: false,
        };
        assert!(DeployError::hint(&other).is_some_and(|text| !text.contains("adopt")));
        let bridge = DeployError::BridgeMissing {
            bridge: "vmbr9".into(),
            node: "lloyd".into(),
            available: vec!["vmbr0".into()],
        };
        assert!(DeployError::hint(&bridge).is_some_and(|text| text.contains("vmbr0")));
        let missing = DeployError::TemplateMissing {
            id: None,
            node: "lloyd".into(),
            chosen_by: None,
            tags: vec!["packer-built".into()],
        };
        assert!(DeployError::hint(&missing).is_some_and(|text| text.contains("sombrero build")));
        let offline = DeployError::NodeOffline {
            node: "lloyd".into(),
            status: "offline".into(),
        };
        assert!(DeployError::hint(&offline).is_some_and(|text| text.contains("lloyd")));
    }
}
