//! What every stage-2 command shares: settings, the optional in-process lab, the client,
//! the desired VM, the runtime, and the hints for stage-2 errors.
//!
//! Why shared: `plan`, `deploy`, `status`, `destroy` and `adopt` must see the same desired
//! VM and the same cluster (`--lab` included); one setup function guarantees it, and one
//! hint table gives every command the same advice for the same error.

use anyhow::Context as _;
use pve_lab::LabHandle;
use sombrero_core::deploy::{self, DeployError, Desired, TemplateRequest};
use sombrero_core::settings::Settings;

use crate::cli::GlobalArgs;
use crate::context::resolve_settings;
use crate::printer::Printer;

/// Whether a stage-2 command needs the VM's SSH public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// It writes the key into the VM's config (plan, deploy, adopt) or compares it (status).
    Required,
    /// It never looks at the key (destroy): an operator tearing an environment down
    /// should not have to provide one.
    Optional,
}

/// Everything a stage-2 command works with.
pub struct Stage2 {
    pub settings: Settings,
    pub desired: Desired,
    pub client: pve::Client,
    pub request: TemplateRequest,
    /// The in-process lab of `--lab`, kept alive for the command.
    #[expect(
        dead_code,
        reason = "held so the in-process lab runs until the command ends"
    )]
    pub lab: Option<LabHandle>,
}

impl Stage2 {
    /// Resolves settings (starting the lab for `--lab`), reads the SSH key, builds the
    /// client. Call inside the command's runtime.
    ///
    /// # Errors
    /// Configuration problems (exit 2), a lab that does not start, client setup errors.
    pub async fn prepare(
        global: &GlobalArgs,
        template: Option<u32>,
        linked: bool,
        printer: &Printer,
    ) -> anyhow::Result<Self> {
        Self::prepare_with(global, template, linked, KeyUse::Required, printer).await
    }

    /// [`Self::prepare`] for a command that may not need the VM's SSH public key.
    ///
    /// # Errors
    /// As [`Self::prepare`]; with [`KeyUse::Optional`] a missing or unreadable key is not one.
    pub async fn prepare_with(
        global: &GlobalArgs,
        template: Option<u32>,
        linked: bool,
        key_use: KeyUse,
        printer: &Printer,
    ) -> anyhow::Result<Self> {
        let mut settings = resolve_settings(global, template, printer)?;
        let lab = if global.lab {
            Some(crate::lab_mode::start(&mut settings, printer).await?)
        } else {
            None
        };
        let key = settings.ssh_public_key(|path| std::fs::read_to_string(path));
        let key = match key_use {
            KeyUse::Required => Some(key?),
            KeyUse::Optional => key.ok(),
        };
        let desired = Desired::from_settings(&settings, key.as_ref(), linked);
        let client = super::api::client_from_settings(&settings, printer)?;
        let request = deploy::template::request(&settings)?;
        Ok(Self {
            settings,
            desired,
            client,
            request,
            lab,
        })
    }
}

/// A multi-threaded runtime for stage-2 commands (the in-process lab runs on it too).
///
/// # Errors
/// The runtime cannot start.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The hint for a stage-2 error, if it has one.
pub fn hint(error: &DeployError) -> Option<String> {
    Some(match error {
        DeployError::TemplateMissing { node, tags, .. } => format!(
            "build one with `sombrero build` (it tags its templates {}), or name an existing \
             template on {node} with --template ID or TEMPLATE_ID",
            if tags.is_empty() {
                deploy::TEMPLATE_TAGS.join(", ")
            } else {
                tags.join(", ")
            }
        ),
        DeployError::Handoff { .. } => "fix or delete it (`sombrero build` writes it), or \
             name the template with --template ID or TEMPLATE_ID"
            .into(),
        DeployError::NotATemplate { .. } => {
            "pass the id of a template (qm list shows templates), or run `sombrero build`".into()
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
        DeployError::NodeOffline { node, .. } => {
            format!("bring {node} back online (pvecm status), or deploy to another node")
        }
        DeployError::PermissionDenied {
            privilege, path, ..
        } => format!(
            "grant the token's role {} on {} (pveum acl modify), or use a token without \
             privilege separation",
            privilege.as_deref().unwrap_or("the missing privilege"),
            path.as_deref().unwrap_or("/")
        ),
        DeployError::Tls { .. } => "compare the pinned fingerprint (SOMBRERO_PVE_FINGERPRINT) \
             with `pvenode cert info` on the node (or what `sombrero lab serve` printed)"
            .into(),
        DeployError::WrongVmid { configured, .. } => {
            format!(
                "adopt the environment's VM ({configured}), or change its vmid in sombrero.toml"
            )
        }
        DeployError::Changed { .. } => {
            "someone changed the VM meanwhile; run `sombrero plan` again".into()
        }
        DeployError::SshTimeout { .. } => {
            "check the VM's console (cloud-init, sshd) and the network path to it".into()
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::hint;
    use sombrero_core::deploy::DeployError;

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
        assert!(hint(&foreign).is_some_and(|text| text.contains("sombrero adopt 152")));
        let other = DeployError::ForeignVm {
            vmid: 152,
            node: "lloyd".into(),
            name: None,
            environment: "staging".into(),
            other: Some("production".into()),
            template: false,
        };
        assert!(hint(&other).is_some_and(|text| !text.contains("adopt")));
        let bridge = DeployError::BridgeMissing {
            bridge: "vmbr9".into(),
            node: "lloyd".into(),
            available: vec!["vmbr0".into()],
        };
        assert!(hint(&bridge).is_some_and(|text| text.contains("vmbr0")));
        let missing = DeployError::TemplateMissing {
            id: None,
            node: "lloyd".into(),
            chosen_by: None,
            tags: vec!["packer-built".into()],
        };
        assert!(hint(&missing).is_some_and(|text| text.contains("sombrero build")));
        let offline = DeployError::NodeOffline {
            node: "lloyd".into(),
            status: "offline".into(),
        };
        assert!(hint(&offline).is_some_and(|text| text.contains("lloyd")));
    }

    fn api_error(status: u16, reason: &str) -> pve::Error {
        pve::Error::Api(Box::new(pve::ApiError {
            method: pve::Method::Post,
            path: "/nodes/lloyd/qemu/1001/clone".into(),
            status,
            reason: reason.into(),
            message: None,
            errors: std::collections::BTreeMap::new(),
        }))
    }

    /// Issue 5's seven errors: each exits 1 (the operation failed, the input was valid)
    /// and carries a hint naming the fix.
    #[test]
    fn each_stage_two_error_exits_one_with_a_hint() {
        let cases = [
            (
                DeployError::TemplateMissing {
                    id: Some(1001),
                    node: "lloyd".into(),
                    chosen_by: None,
                    tags: vec![],
                },
                "sombrero build",
            ),
            (
                DeployError::ForeignVm {
                    vmid: 152,
                    node: "lloyd".into(),
                    name: None,
                    environment: "staging".into(),
                    other: None,
                    template: false,
                },
                "sombrero adopt 152",
            ),
            (
                DeployError::AddressInUse {
                    address: [192, 168, 10, 250].into(),
                    vmid: 150,
                    name: "jump-man".into(),
                    node: "lloyd".into(),
                },
                "destroy VM 150",
            ),
            (
                DeployError::StorageMissing {
                    storage: "ceph-pool".into(),
                    problem: "does not exist".into(),
                    node: "lloyd".into(),
                    available: vec!["local-lvm".into()],
                },
                "local-lvm",
            ),
            (
                DeployError::BridgeMissing {
                    bridge: "vmbr9".into(),
                    node: "lloyd".into(),
                    available: vec!["vmbr0".into()],
                },
                "vmbr0",
            ),
            (
                DeployError::NodeOffline {
                    node: "lloyd".into(),
                    status: "offline".into(),
                },
                "online",
            ),
            (
                DeployError::PermissionDenied {
                    doing: "clone".into(),
                    privilege: Some("VM.Clone".into()),
                    path: Some("/vms/1001".into()),
                    source: Box::new(api_error(
                        403,
                        "Permission check failed (/vms/1001, VM.Clone)",
                    )),
                },
                "VM.Clone on /vms/1001",
            ),
            (
                DeployError::Tls {
                    url: "https://127.0.0.1:8006".into(),
                    source: Box::new(api_error(596, "tls")),
                },
                "fingerprint",
            ),
        ];
        for (error, fix) in cases {
            let message = error.to_string();
            let hint_text = hint(&error);
            let chain = anyhow::Error::new(error);
            assert_eq!(
                crate::exit::status_for(&chain),
                crate::exit::ExitStatus::Failure,
                "{message}"
            );
            assert_eq!(crate::exit::hint_for(&chain), hint_text, "{message}");
            assert!(
                hint_text.as_deref().is_some_and(|text| text.contains(fix)),
                "{message}: {hint_text:?} should name {fix:?}"
            );
        }
    }
}
