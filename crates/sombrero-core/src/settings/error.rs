//! Everything that can be wrong with sombrero's configuration.
//!
//! Why a typed enum: each problem names what is wrong and where (`file:line:column` and key
//! path, or the environment variable to change), carries a hint that says how to fix it,
//! and the binary maps the whole type to exit code 2. Resolution collects problems into
//! [`SettingsErrors`] so a user fixes a file in one pass instead of one error per run.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::source::Origin;

/// One problem with the configuration or the environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("{path}:{line}:{column}: invalid TOML: {message}", path = path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{at}: unknown key `{key}`{}", suggestion_text(suggestion.as_deref()))]
    UnknownKey {
        at: Origin,
        key: String,
        suggestion: Option<String>,
    },
    #[error("{at}: {message}")]
    WrongType { at: Origin, message: String },
    #[error("{at}: {value:?} is not an IP address with a prefix length (CIDR): {reason}")]
    InvalidCidr {
        at: Origin,
        value: String,
        reason: String,
    },
    #[error("{at}: {value:?} is not an IP address: {reason}")]
    InvalidIp {
        at: Origin,
        value: String,
        reason: String,
    },
    #[error("{at}: gateway {gateway} is outside the VM's subnet {subnet}")]
    GatewayOutsideSubnet {
        at: Origin,
        gateway: IpAddr,
        subnet: IpNet,
    },
    #[error("{at}: gateway {gateway} is the VM's own address")]
    GatewayIsTheVm { at: Origin, gateway: IpAddr },
    #[error("{at}: VM id {value} is outside 100..=999999999")]
    VmIdOutOfRange { at: Origin, value: i64 },
    #[error("{at}: balloon minimum {balloon} MiB is greater than memory {memory} MiB")]
    BalloonExceedsMemory {
        at: Origin,
        balloon: u64,
        memory: u64,
    },
    #[error("{at}: environments {first} and {second} both use VM id {vmid}")]
    DuplicateVmId {
        at: Origin,
        vmid: u32,
        first: String,
        second: String,
    },
    #[error("{at}: environments {first} and {second} both use IP address {ip}")]
    DuplicateIp {
        at: Origin,
        ip: IpAddr,
        first: String,
        second: String,
    },
    #[error("{at}: malformed API token: {source}")]
    MalformedToken {
        at: Origin,
        #[source]
        source: pve::TokenParseError,
    },
    #[error("{at}: malformed URL {value:?}: {reason}")]
    MalformedUrl {
        at: Origin,
        value: String,
        reason: String,
    },
    #[error("{at}: unknown environment {name:?}; {}", if known.is_empty() { "the configuration file defines no environment".to_owned() } else { format!("known environments: {}", known.join(", ")) })]
    UnknownEnvironment {
        at: Origin,
        name: String,
        known: Vec<String>,
    },
    #[error("missing {what}: set {how}")]
    Missing { what: String, how: String },
    #[error("{at}: {message}")]
    InvalidValue { at: Origin, message: String },
    #[error("cannot read {what} {path}: {source}", path = path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn suggestion_text(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |known| format!(" (did you mean `{known}`?)"))
}

impl SettingsError {
    /// How to fix the problem, shown as `hint:` by the binary.
    pub fn hint(&self) -> Option<String> {
        let text = match self {
            Self::Syntax { .. } => "fix the TOML syntax at the position shown".to_owned(),
            Self::UnknownKey { key, .. } if is_secret_key(key) => {
                "secrets are never read from sombrero.toml: set TF_VAR_pve_api_token or \
                 PKR_VAR_proxmox_password in the environment or .mise.local.toml"
                    .to_owned()
            }
            Self::UnknownKey {
                suggestion: Some(known),
                ..
            } => format!("rename the key to `{known}` (docs/configuration.md lists every key)"),
            Self::UnknownKey { .. } => "docs/configuration.md lists every key".to_owned(),
            Self::InvalidCidr { .. } => {
                "write the address with its prefix, e.g. 192.168.10.252/24".to_owned()
            }
            Self::GatewayOutsideSubnet { .. } => {
                "the gateway must be inside the VM's subnet; check the ip prefix and gateway"
                    .to_owned()
            }
            Self::GatewayIsTheVm { .. } => {
                "the gateway is the router of the VM's subnet (e.g. 192.168.10.1), another \
                 address than the VM's ip"
                    .to_owned()
            }
            Self::VmIdOutOfRange { .. } => "Proxmox VM ids are 100..=999999999".to_owned(),
            Self::BalloonExceedsMemory { .. } => {
                "balloon_mib is the minimum memory; it must not exceed memory_mib".to_owned()
            }
            Self::DuplicateVmId { .. } | Self::DuplicateIp { .. } => {
                "each environment needs its own VM id and IP address".to_owned()
            }
            Self::MalformedToken { .. } => {
                "the token looks like terraform@pve!token=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
                    .to_owned()
            }
            Self::MalformedUrl { .. } => {
                "the API URL looks like https://pve.example:8006/api2/json".to_owned()
            }
            Self::UnknownEnvironment { known, .. } if known.is_empty() => {
                "add an [environments.NAME] table (vmid, ip, gateway) to the configuration \
                 file; the repository's sombrero.toml has the runbook's three"
                    .to_owned()
            }
            Self::UnknownEnvironment { known, .. } => {
                format!(
                    "use one of: {} (or add [environments.NAME] to sombrero.toml)",
                    known.join(", ")
                )
            }
            Self::Missing { .. } => "docs/configuration.md lists every setting".to_owned(),
            Self::ReadFile {
                what: "configuration file",
                ..
            } => "run sombrero where sombrero.toml is, or pass --config FILE (or set \
                  SOMBRERO_CONFIG)"
                .to_owned(),
            Self::InvalidIp { .. } => "write a plain address, e.g. 192.168.10.1".to_owned(),
            Self::WrongType { .. } | Self::InvalidValue { .. } => {
                "docs/configuration.md gives each setting's type and an example".to_owned()
            }
            Self::ReadFile { .. } => return None,
        };
        Some(text)
    }
}

/// Whether `key` names a secret (which sombrero.toml must never hold).
pub(super) fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    ["token", "api_token", "password", "secret"].contains(&last)
}

/// One or more problems, reported together.
#[derive(Debug)]
pub struct SettingsErrors(pub Vec<SettingsError>);

impl SettingsErrors {
    /// The individual problems.
    pub fn problems(&self) -> &[SettingsError] {
        &self.0
    }

    /// The distinct hints of all problems, in order.
    pub fn hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = Vec::new();
        for hint in self.0.iter().filter_map(SettingsError::hint) {
            if !hints.contains(&hint) {
                hints.push(hint);
            }
        }
        hints
    }
}

impl From<SettingsError> for SettingsErrors {
    fn from(error: SettingsError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for SettingsErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [only] => write!(f, "{only}"),
            problems => {
                write!(f, "{} problems in the configuration:", problems.len())?;
                for problem in problems {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// No `source()`: each problem's message already includes its cause, and a chain would
/// print it twice.
impl std::error::Error for SettingsErrors {}
