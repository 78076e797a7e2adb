//! Everything `build` can fail with, each naming what to look at and what to do.

use std::path::PathBuf;

use thiserror::Error;

use crate::configure::ConfigureError;
use crate::deploy::DeployError;
use crate::ssh::SshError;

/// A failed build.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error(
        "the lab's guests are state-only: building a template needs a real guest to boot and provision"
    )]
    NeedsRealGuest,
    #[error(
        "VM {vmid} ({name}) holds the template id and is not a sombrero golden template; refusing to touch it"
    )]
    SlotTaken { vmid: u32, name: String },
    #[error(
        "the base image {volume} is not in storage {storage} and no {setting} is configured to fetch it"
    )]
    BaseImageMissing {
        volume: String,
        storage: String,
        setting: &'static str,
    },
    #[error("downloading {url} to {volume} failed: {message}")]
    DownloadFailed {
        url: String,
        volume: String,
        message: String,
    },
    #[error(
        "provisioning failed: task \"{task}\"{} on builder VM {builder}: {message}",
        role.as_ref().map(|role| format!(" (role {role})")).unwrap_or_default()
    )]
    ProvisionFailed {
        builder: u32,
        task: String,
        role: Option<String>,
        message: String,
        log: PathBuf,
    },
    #[error("{what} on builder VM {builder} failed: {source}")]
    Playbook {
        builder: u32,
        what: &'static str,
        #[source]
        source: Box<ConfigureError>,
    },
    #[error("{doing}: {source}")]
    Api {
        doing: String,
        #[source]
        source: Box<pve::Error>,
    },
    #[error(transparent)]
    Deploy(Box<DeployError>),
    #[error(transparent)]
    Ssh(Box<SshError>),
    #[error(transparent)]
    Configure(Box<ConfigureError>),
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<DeployError> for BuildError {
    fn from(error: DeployError) -> Self {
        Self::Deploy(Box::new(error))
    }
}

impl From<SshError> for BuildError {
    fn from(error: SshError) -> Self {
        Self::Ssh(Box::new(error))
    }
}

impl From<ConfigureError> for BuildError {
    fn from(error: ConfigureError) -> Self {
        Self::Configure(Box::new(error))
    }
}

impl BuildError {
    pub(crate) fn api(doing: impl Into<String>, source: pve::Error) -> Self {
        Self::Api {
            doing: doing.into(),
            source: Box::new(source),
        }
    }

    /// Exit code 2 (fix the configuration or the setup) or 1.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::NeedsRealGuest | Self::BaseImageMissing { .. } => true,
            Self::Configure(error) => error.is_bad_input(),
            Self::Deploy(error) => error.is_bad_input(),
            _ => false,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NeedsRealGuest => Some(
                "start a lab with real QEMU guests (`sombrero lab doctor` says whether this \
                 machine can): `sombrero lab serve --guests qemu`, point TF_VAR_pve_api_url at \
                 it, then `sombrero build`"
                    .to_owned(),
            ),
            Self::SlotTaken { vmid, .. } => Some(format!(
                "pick a free template id (`--template-id N` or template_id in sombrero.toml), or \
                 move VM {vmid} away; sombrero only replaces templates tagged sombrero and golden"
            )),
            Self::BaseImageMissing { setting, .. } => Some(format!(
                "set {setting} (and build.base_image_sha256) in sombrero.toml so the node \
                 downloads it, or upload the image to the storage's import content yourself"
            )),
            Self::DownloadFailed { message, .. } if message.contains("checksum mismatch") => Some(
                "the file at the URL is not the one build.base_image_sha256 names: check \
                     both against the distribution's SHA256SUMS"
                    .to_owned(),
            ),
            Self::ProvisionFailed { builder, log, .. } => Some(format!(
                "builder VM {builder} is kept, stopped, for inspection (`qm start {builder}`); \
                 the next `sombrero build` removes it. The full Ansible log is {}",
                log.display()
            )),
            Self::Playbook { source, .. } | Self::Configure(source) => source.hint(),
            Self::Deploy(error) => error.hint(),
            Self::Ssh(error) => error.hint(),
            Self::DownloadFailed { .. } | Self::Api { .. } | Self::Io { .. } => None,
        }
    }
}
