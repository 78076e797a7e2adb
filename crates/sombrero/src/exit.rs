//! Exit codes, decided in one place.
//!
//! Why: scripts and CI pipelines branch on sombrero's exit code, so the mapping from error
//! to code must be stable and documented (README.md, "Exit codes"), not scattered across
//! commands.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the operation failed (API error, task failure, unreachable VM, ...) |
//! | 2    | bad input: command line, configuration or environment is invalid |
//! | 130  | interrupted (SIGINT) |

use std::process::ExitCode;

use sombrero_core::history::HistoryError;
use sombrero_core::settings::{SettingsError, SettingsErrors};

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
            .downcast_ref::<sombrero_core::deploy::DeployError>()
            .is_some_and(sombrero_core::deploy::DeployError::is_bad_input)
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
        if let Some(deploy) = cause.downcast_ref::<sombrero_core::deploy::DeployError>() {
            return crate::commands::stage_two_hint(deploy);
        }
        cause
            .downcast_ref::<SettingsError>()
            .and_then(SettingsError::hint)
    })
}
