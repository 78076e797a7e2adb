//! sombrero's settings: the model, where each value came from, and the one resolver.
//!
//! Why (uv and ripgrep style): raw inputs (flags, environment variables, `.mise.local.toml`,
//! `sombrero.toml`) are turned into validated, typed [`Settings`] exactly once, before any
//! command runs; commands never read a variable or a file themselves. Every value records
//! its [`Source`] so `sombrero config show` can say where it came from, and every problem is
//! a [`SettingsError`] that names its location.
//!
//! Precedence, highest first: CLI flags > environment variables > `.mise.local.toml`
//! `[env]` > `sombrero.toml` > built-in defaults. See docs/configuration.md.

pub mod build;
pub mod document;
pub mod env_vars;
pub mod error;
pub mod mise;
mod resolve;
pub mod source;
pub mod values;
pub mod verify;
mod vm;
mod vm_access;
mod vm_lookup;

use std::path::{Path, PathBuf};

use serde::Serialize;
use url::Url;

pub use build::BuildSettings;
pub use document::ConfigFile;
pub use error::{SettingsError, SettingsErrors};
pub use mise::MiseEnv;
pub use resolve::{
    CliOverrides, DEFAULT_ENVIRONMENT, DEFAULT_HISTORY, DEFAULT_OUTPUTS_DIR, Inputs, LAB_SOURCE,
    LabLayer, missing_pipeline_values, resolve,
};
pub use source::{Origin, Position, Resolved, Source};
pub use values::{Fingerprint, NodeChoice, SshPublicKey};
pub use vm::{SshKeySetting, VmSpec};

/// Everything a command needs to know, resolved and validated.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// The configuration file, as given.
    pub config_file: PathBuf,
    /// The selected environment.
    pub environment: Resolved<String>,
    /// Every environment the file defines.
    pub known_environments: Vec<String>,
    /// The selected environment's VM.
    pub vm: VmSpec,
    pub api: ApiSettings,
    pub paths: PathSettings,
    /// What `build` makes the golden template from.
    pub build: build::BuildSettings,
    /// The limits of `verify`'s headroom checks.
    pub verify: verify::VerifySettings,
    /// Things worth telling the user that are not errors.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// How to reach and authenticate to the Proxmox VE API. Secrets stay redacted.
#[derive(Debug, Clone, Serialize)]
pub struct ApiSettings {
    /// Always ends in `/api2/json`.
    pub url: Option<Resolved<Url>>,
    #[serde(serialize_with = "serialize_token")]
    pub token: Option<Resolved<pve::ApiToken>>,
    /// Skip certificate verification (`TF_VAR_proxmox_insecure`).
    pub insecure: Resolved<bool>,
    /// Pinned SHA-256 fingerprint of the API certificate.
    pub fingerprint: Option<Resolved<Fingerprint>>,
    /// CA certificate (PEM) to trust for the API.
    pub ca_file: Option<Resolved<PathBuf>>,
    /// User for password authentication (`PKR_VAR_proxmox_username`).
    pub username: Option<Resolved<String>>,
    /// Password for `username` (`PKR_VAR_proxmox_password`).
    pub password: Option<Resolved<pve::Secret>>,
}

/// Where sombrero keeps its own files.
#[derive(Debug, Clone, Serialize)]
pub struct PathSettings {
    /// The deployment history: a local `SQLite` file or a `PostgreSQL` URL (shown and
    /// serialized without its password).
    pub history: Resolved<crate::history::HistoryLocation>,
    /// Where stage outputs (`packer-outputs.json`, ...) are written.
    pub outputs_dir: Resolved<PathBuf>,
    /// The Ansible tree `configure` runs, when set; `None`: `configure` takes the
    /// project's `ansible/`, else the copy embedded in the binary.
    pub ansible_dir: Option<Resolved<PathBuf>>,
}

#[expect(clippy::ref_option, reason = "serde's serialize_with passes &Option")]
/// Serializes the token through its redacting `Display` (`user@realm!id=[redacted]`).
fn serialize_token<S: serde::Serializer>(
    token: &Option<Resolved<pve::ApiToken>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    token
        .as_ref()
        .map(|resolved| Resolved::new(resolved.value.to_string(), resolved.source.clone()))
        .serialize(serializer)
}

impl Settings {
    /// The API URL, or the problem saying how to set it.
    ///
    /// # Errors
    /// [`SettingsError::Missing`] naming `TF_VAR_pve_api_url`.
    #[expect(
        clippy::result_large_err,
        reason = "configuration errors are cold and reported once; boxing buys nothing"
    )]
    pub fn require_api_url(&self) -> Result<&Url, SettingsError> {
        self.api
            .url
            .as_ref()
            .map(|url| &url.value)
            .ok_or_else(missing_api_url)
    }

    /// The API token, or the problem saying how to set it.
    ///
    /// # Errors
    /// [`SettingsError::Missing`] naming `TF_VAR_pve_api_token`.
    #[expect(
        clippy::result_large_err,
        reason = "configuration errors are cold and reported once; boxing buys nothing"
    )]
    pub fn require_api_token(&self) -> Result<&pve::ApiToken, SettingsError> {
        self.api
            .token
            .as_ref()
            .map(|token| &token.value)
            .ok_or_else(missing_api_token)
    }

    /// The VM's SSH public key, reading the key file if the setting names one.
    /// `read` reads a file (injected so tests need no real files).
    ///
    /// # Errors
    /// Missing setting (naming `TF_VAR_ci_ssh_key`), unreadable file, or not a public key.
    #[expect(
        clippy::result_large_err,
        reason = "configuration errors are cold and reported once; boxing buys nothing"
    )]
    pub fn ssh_public_key(
        &self,
        read: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<SshPublicKey, SettingsError> {
        let setting = self
            .vm
            .ssh_public_key
            .as_ref()
            .ok_or_else(missing_ssh_key)?;
        match &setting.value {
            SshKeySetting::Inline(key) => Ok(key.clone()),
            SshKeySetting::File { file } => {
                let text = read(file).map_err(|source| SettingsError::ReadFile {
                    what: "SSH public key file",
                    path: file.clone(),
                    source,
                })?;
                values::parse_ssh_public_key(&text).map_err(|reason| SettingsError::InvalidValue {
                    at: Origin::new(setting.source.clone()),
                    message: format!("{} is not an SSH public key: {reason}", file.display()),
                })
            }
        }
    }

    /// How to trust the API's certificate, most specific first: a pinned fingerprint, then
    /// a CA file, then `insecure`, else the system's trust store.
    /// Who the API calls are made as: `user@realm!tokenid` for a token (never its
    /// secret), else the ticket's user name.
    pub fn api_identity(&self) -> Option<String> {
        self.api
            .token
            .as_ref()
            .map(|token| token.value.full_token_id())
            .or_else(|| self.api.username.as_ref().map(|user| user.value.clone()))
    }

    pub fn tls_mode(&self) -> pve::TlsMode {
        if let Some(fingerprint) = &self.api.fingerprint {
            pve::TlsMode::Fingerprint(pve::Fingerprint::from_bytes(fingerprint.value.0))
        } else if let Some(ca_file) = &self.api.ca_file {
            pve::TlsMode::CaFile(ca_file.value.clone())
        } else if self.api.insecure.value {
            pve::TlsMode::Insecure
        } else {
            pve::TlsMode::SystemRoots
        }
    }

    /// What the pipeline needs beyond a valid configuration: API URL, credentials, and the
    /// SSH public key (read through `read`). Empty when everything is present.
    pub fn pipeline_problems(
        &self,
        read: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Vec<SettingsError> {
        let mut problems = Vec::new();
        if let Err(problem) = self.require_api_url() {
            problems.push(problem);
        }
        let password_login = self.api.username.is_some() && self.api.password.is_some();
        if self.api.token.is_none() && !password_login {
            problems.push(missing_api_token());
        }
        if let Err(problem) = self.ssh_public_key(read) {
            problems.push(problem);
        }
        problems
    }
}

pub(crate) fn missing_api_url() -> SettingsError {
    SettingsError::Missing {
        what: "the Proxmox API URL".to_owned(),
        how: format!(
            "{} (environment or .mise.local.toml), or api.url in sombrero.toml",
            env_vars::PVE_API_URL
        ),
    }
}

pub(crate) fn missing_api_token() -> SettingsError {
    SettingsError::Missing {
        what: "the Proxmox API token".to_owned(),
        how: format!(
            "{} (environment or .mise.local.toml) to USER@REALM!TOKENID=SECRET",
            env_vars::PVE_API_TOKEN
        ),
    }
}

pub(crate) fn missing_ssh_key() -> SettingsError {
    SettingsError::Missing {
        what: "the VM's SSH public key".to_owned(),
        how: format!(
            "{} to the key, or {} (or ssh_public_key_file in sombrero.toml) to a .pub file",
            env_vars::CI_SSH_KEY,
            env_vars::SOMBRERO_SSH_PUBLIC_KEY_FILE
        ),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "precedence_tests.rs"]
mod precedence_tests;

#[cfg(test)]
#[path = "lab_layer_tests.rs"]
mod lab_layer_tests;

#[cfg(test)]
#[path = "configure_tests.rs"]
mod configure_tests;
