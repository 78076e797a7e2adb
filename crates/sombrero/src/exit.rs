//! Exit codes and hints, decided in one place.
//!
//! Why: scripts and CI pipelines branch on sombrero's exit code, so the mapping from error
//! to code must be stable and documented (README.md, "Exit codes"), not scattered across
//! commands. Hints live next to the errors in the libraries (`DeployError::hint`,
//! `HistoryError::hint`, `SettingsError::hint`, `LockError::hint`); this module only
//! finds them in a chain.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the operation failed (API error, task failure, unreachable VM, ...) |
//! | 2    | bad input: command line, configuration or environment is invalid |
//! | 130  | interrupted (SIGINT) |

use std::process::ExitCode;

use sombrero_core::build::BuildError;
use sombrero_core::configure::ConfigureError;
use sombrero_core::deploy::DeployError;
use sombrero_core::history::HistoryError;
use sombrero_core::lock::LockError;
use sombrero_core::settings::{SettingsError, SettingsErrors};
use sombrero_core::verify::VerifyError;

/// The documented exit statuses of sombrero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success,
    /// The operation was valid but failed.
    Failure,
    /// The input (flags, configuration, environment) is invalid.
    BadInput,
    /// Interrupted by the user.
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::Interrupted => 130,
        })
    }
}

/// An error the binary itself raises about its input (exit code 2), with an optional hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BadInput {
    pub message: String,
    pub hint: Option<String>,
}

/// The exit status for an error: bad input anywhere in the chain means 2, otherwise 1.
pub fn status_for(error: &anyhow::Error) -> ExitStatus {
    let bad_input = error.chain().any(|cause| {
        cause.is::<BadInput>() || cause.is::<SettingsErrors>() || cause.is::<SettingsError>()
    }) || error.chain().any(|cause| {
        cause
            .downcast_ref::<HistoryError>()
            .is_some_and(HistoryError::is_bad_input)
    }) || error.chain().any(|cause| {
        cause
            .downcast_ref::<DeployError>()
            .is_some_and(DeployError::is_bad_input)
    }) || error.chain().any(|cause| {
        cause
            .downcast_ref::<ConfigureError>()
            .is_some_and(ConfigureError::is_bad_input)
    }) || error.chain().any(|cause| {
        cause
            .downcast_ref::<BuildError>()
            .is_some_and(BuildError::is_bad_input)
    }) || error.chain().any(|cause| {
        cause
            .downcast_ref::<VerifyError>()
            .is_some_and(VerifyError::is_bad_input)
    });
    if bad_input {
        ExitStatus::BadInput
    } else {
        ExitStatus::Failure
    }
}

/// The hint attached to an error chain, if any cause carries one. Configuration errors
/// may carry several (one per kind of problem); they are joined with `hint:` lines.
pub fn hint_for(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|cause| {
        if let Some(bad) = cause.downcast_ref::<BadInput>() {
            return bad.hint.clone();
        }
        if let Some(errors) = cause.downcast_ref::<SettingsErrors>() {
            let hints = errors.hints();
            return (!hints.is_empty()).then(|| hints.join("\nhint: "));
        }
        if let Some(history) = cause.downcast_ref::<HistoryError>() {
            return history.hint().map(ToOwned::to_owned);
        }
        if let Some(deploy) = cause.downcast_ref::<DeployError>() {
            return deploy.hint();
        }
        if let Some(configure) = cause.downcast_ref::<ConfigureError>() {
            return configure.hint();
        }
        if let Some(build) = cause.downcast_ref::<BuildError>() {
            return build.hint();
        }
        if let Some(verify) = cause.downcast_ref::<VerifyError>() {
            return verify.hint();
        }
        if let Some(lock) = cause.downcast_ref::<LockError>() {
            return lock.hint();
        }
        if let Some(client) = cause.downcast_ref::<pve::Error>()
            && let Some(hint) = sombrero_core::deploy::client_error_hint(client)
        {
            return Some(hint);
        }
        cause
            .downcast_ref::<SettingsError>()
            .and_then(SettingsError::hint)
    })
}

#[cfg(test)]
mod tests {
    use super::{ExitStatus, hint_for, status_for};
    use sombrero_core::deploy::DeployError;

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

    /// Issue 5's seven errors (the TLS one, which needs a real handshake, is tested
    /// through the binary in `tests/it/api.rs`): each exits 1 (the operation failed, the input was valid)
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
        ];
        for (error, fix) in cases {
            let message = error.to_string();
            let hint_text = error.hint();
            let chain = anyhow::Error::new(error);
            assert_eq!(status_for(&chain), ExitStatus::Failure, "{message}");
            assert_eq!(hint_for(&chain), hint_text, "{message}");
            assert!(
                hint_text.as_deref().is_some_and(|text| text.contains(fix)),
                "{message}: {hint_text:?} should name {fix:?}"
            );
        }
    }
}
