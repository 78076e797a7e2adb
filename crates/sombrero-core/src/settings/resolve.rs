//! The one function that turns every configuration layer into [`Settings`].
//!
//! Why one pure function: precedence is easy to state (flags > environment variables >
//! `.mise.local.toml` > `sombrero.toml` > defaults) and easy to get subtly wrong when each
//! command reads a variable itself. Everything that varies (flags, the process environment,
//! both files) comes in as an argument, so tests are hermetic and a developer's own
//! `TF_VAR_*` never leaks into them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::document::ConfigFile;
use super::env_vars;
use super::error::{SettingsError, SettingsErrors};
use super::mise::MiseEnv;
use super::source::{Origin, Resolved, Source};
use super::values;
use super::vm::{self, BuiltVm};
use super::{ApiSettings, PathSettings, Settings};
use crate::history::HistoryLocation;

/// The environment used when neither `--env` nor `ENV` chooses one.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// Default history database, relative to the configuration file's directory.
pub const DEFAULT_HISTORY: &str = "deployments/sombrero.db";
/// Default stage outputs directory, relative to the configuration file's directory.
pub const DEFAULT_OUTPUTS_DIR: &str = "deployments/outputs";

/// Values given on the command line (the highest-precedence layer).
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--env`.
    pub environment: Option<String>,
    /// `--template` (commands that clone a template).
    pub template_id: Option<u32>,
    /// `--lab`: the in-process lab the command runs against, already started.
    pub lab: Option<LabLayer>,
}

/// What `--lab` contributes to resolution: the in-process lab's endpoint, above every
/// other layer for the API settings (source `--lab`), and a placeholder SSH key used only
/// when no layer sets one.
///
/// Why a layer and not a rewrite of resolved settings: `config show --lab` must say where
/// each value came from, and one resolution keeps the API settings consistent (no stale
/// CA file or password left over from the configured cluster).
#[derive(Debug, Clone)]
pub struct LabLayer {
    /// The lab's API URL (`https://127.0.0.1:PORT/api2/json`).
    pub url: url::Url,
    /// The lab's full-privilege token.
    pub token: pve::ApiToken,
    /// The lab certificate's SHA-256 fingerprint (none for plain HTTP).
    pub fingerprint: Option<values::Fingerprint>,
    /// A key with no private half anywhere, for a lab VM when none is configured.
    pub placeholder_ssh_key: values::SshPublicKey,
    /// The lab's own key pair (public half; the private one beside it without `.pub`),
    /// made for real guests, which need a key that really logs in. Used instead of the
    /// placeholder when no key is configured.
    pub ssh_key_file: Option<std::path::PathBuf>,
}

/// The source every value from [`LabLayer`] carries.
pub const LAB_SOURCE: Source = Source::Flag("--lab");

/// Everything resolution reads. Nothing else is consulted.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub cli: &'a CliOverrides,
    /// The process environment (a map, so tests control it fully).
    pub env: &'a HashMap<String, String>,
    /// `.mise.local.toml` next to the configuration file, if it exists.
    pub mise: Option<&'a MiseEnv>,
    pub file: &'a ConfigFile,
}

/// Lookup helpers shared by the resolvers of each section.
pub(super) struct Layers<'a> {
    pub cli: &'a CliOverrides,
    pub env: &'a HashMap<String, String>,
    pub mise: Option<&'a MiseEnv>,
    pub file: &'a ConfigFile,
}

impl Layers<'_> {
    /// The first of `names` set (and not empty) in the process environment, else in
    /// `.mise.local.toml`.
    pub fn variable(&self, names: &[&str]) -> Option<(String, Origin)> {
        let from_env = names.iter().find_map(|name| {
            let value = self.env.get(*name).filter(|value| !value.is_empty())?;
            Some((value.clone(), Origin::new(Source::Env((*name).to_owned()))))
        });
        from_env.or_else(|| {
            let mise = self.mise?;
            names.iter().find_map(|name| {
                mise.get(name)
                    .map(|(value, origin)| (value.to_owned(), origin))
            })
        })
    }

    /// A path setting: `~/` expands to `HOME`; a relative path from a file (or a default) is
    /// relative to that file's directory, one from a flag or variable to the working directory.
    pub fn path(&self, raw: &str, source: &Source) -> PathBuf {
        let raw = raw.trim();
        if let (Some(rest), Some(home)) = (raw.strip_prefix("~/"), self.env.get("HOME")) {
            return Path::new(home).join(rest);
        }
        let base = match source {
            Source::File { path, .. } | Source::Mise { path, .. } => path.parent(),
            Source::Default => self.file.path().parent(),
            Source::Env(_) | Source::Flag(_) => None,
        };
        match base {
            Some(base) if Path::new(raw).is_relative() => base.join(raw),
            _ => PathBuf::from(raw),
        }
    }
}

/// Resolves every setting from `inputs`.
///
/// # Errors
/// All problems found, together: invalid values (with their file position or variable
/// name), an unknown environment, missing required VM fields, duplicate VM ids or
/// addresses across environments. Values only some commands need (API URL, token, SSH
/// key) are not required here; see [`Settings::pipeline_problems`].
pub fn resolve(inputs: Inputs<'_>) -> Result<Settings, SettingsErrors> {
    let layers = Layers {
        cli: inputs.cli,
        env: inputs.env,
        mise: inputs.mise,
        file: inputs.file,
    };
    let mut errors = Vec::new();
    let known = layers.file.environment_names();
    let environment = select_environment(&layers, &known, &mut errors);

    let mut selected = None;
    let mut built: Vec<(String, BuiltVm)> = Vec::new();
    for name in &known {
        if let Some(vm) = vm::build(&layers, name, &mut errors) {
            if environment
                .as_ref()
                .is_some_and(|chosen| &chosen.value == name)
            {
                selected = Some(vm.spec.clone());
            }
            built.push((name.clone(), vm));
        }
    }
    check_duplicates(&built, &mut errors);
    let api = match &layers.cli.lab {
        Some(lab) => Some(lab_api(lab)),
        None => resolve_api(&layers, &mut errors),
    };
    let paths = resolve_paths(&layers, &mut errors);
    let build_settings = super::build::resolve_build(&layers, &mut errors);
    let verify_settings = super::verify::resolve_verify(&layers, &mut errors);

    let mut warnings: Vec<String> = inputs
        .mise
        .map(|mise| mise.warnings().to_vec())
        .unwrap_or_default();
    if let Some(url) = api.as_ref().and_then(|api| api.url.as_ref())
        && url.value.scheme() == "http"
    {
        warnings.push(format!(
            "the API at {} is plain http: the token travels unencrypted (accepted for a \
             loopback address only)",
            url.value
        ));
    }
    if let Some(api) = &api
        && api.insecure.value
        && api.fingerprint.is_some()
    {
        warnings.push(
            "both TLS verification off (insecure) and a pinned fingerprint are set; \
                 the pinned fingerprint is what protects the connection"
                .to_owned(),
        );
    }
    deduplicate(&mut errors);
    if !errors.is_empty() {
        return Err(SettingsErrors(errors));
    }
    if let (Some(lab), Some(vm)) = (&layers.cli.lab, &mut selected)
        && vm.ssh_public_key.is_none()
        && let Some(file) = &lab.ssh_key_file
    {
        vm.ssh_public_key = Some(Resolved::new(
            vm::SshKeySetting::File { file: file.clone() },
            LAB_SOURCE,
        ));
    }
    if let (Some(lab), Some(vm)) = (&layers.cli.lab, &mut selected)
        && vm.ssh_public_key.is_none()
    {
        vm.ssh_public_key = Some(Resolved::new(
            vm::SshKeySetting::Inline(lab.placeholder_ssh_key.clone()),
            LAB_SOURCE,
        ));
        warnings.push(
            "no SSH public key is configured (TF_VAR_ci_ssh_key); the lab VM gets a \
                 placeholder key"
                .to_owned(),
        );
    }
    match (environment, selected, api) {
        (Some(environment), Some(vm), Some(api)) => Ok(Settings {
            config_file: layers.file.path().to_owned(),
            environment,
            known_environments: known,
            api,
            paths,
            build: build_settings,
            verify: verify_settings,
            vm,
            warnings,
        }),
        // Every `None` above pushed an error; this arm is unreachable in practice but is
        // handled instead of panicking.
        _ => Err(SettingsErrors(vec![SettingsError::Missing {
            what: "a valid environment".to_owned(),
            how: "[environments.NAME] in the configuration file".to_owned(),
        }])),
    }
}

/// The pipeline values (API URL, credentials, SSH public key) that no layer sets at all.
///
/// For `validate` when [`resolve`] fails: the file's own problems are reported together
/// with what is missing from the environment, so one run lists everything. Values that are
/// set but invalid are [`resolve`]'s business and are not repeated here.
pub fn missing_pipeline_values(inputs: Inputs<'_>) -> Vec<SettingsError> {
    let layers = Layers {
        cli: inputs.cli,
        env: inputs.env,
        mise: inputs.mise,
        file: inputs.file,
    };
    let document = layers.file.document();
    let mut missing = Vec::new();
    let url = layers.variable(&[env_vars::PVE_API_URL, env_vars::PACKER_PROXMOX_URL]);
    if url.is_none() && document.api.url.is_none() {
        missing.push(super::missing_api_url());
    }
    let token = layers.variable(&[env_vars::PVE_API_TOKEN]);
    let username = layers.variable(&[env_vars::PACKER_PROXMOX_USERNAME]);
    let password = layers.variable(&[env_vars::PACKER_PROXMOX_PASSWORD]);
    let password_login =
        (username.is_some() || document.api.username.is_some()) && password.is_some();
    if token.is_none() && !password_login {
        missing.push(super::missing_api_token());
    }
    let key_variable =
        layers.variable(&[env_vars::CI_SSH_KEY, env_vars::SOMBRERO_SSH_PUBLIC_KEY_FILE]);
    let key_in_file = std::iter::once(&document.defaults)
        .chain(document.environments.values())
        .any(|table| table.ssh_public_key.is_some() || table.ssh_public_key_file.is_some());
    if key_variable.is_none() && !key_in_file {
        missing.push(super::missing_ssh_key());
    }
    missing
}

/// Removes repeated problems: variables apply to every environment, so a bad `TEMPLATE_ID`
/// would otherwise be reported once per environment.
fn deduplicate(errors: &mut Vec<SettingsError>) {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|error| seen.insert(error.to_string()));
}

fn select_environment(
    layers: &Layers<'_>,
    known: &[String],
    errors: &mut Vec<SettingsError>,
) -> Option<Resolved<String>> {
    let (name, origin) = if let Some(flag) = &layers.cli.environment {
        (flag.clone(), Origin::new(Source::Flag("--env")))
    } else if let Some(found) = layers.variable(&[env_vars::ENVIRONMENT]) {
        found
    } else {
        (DEFAULT_ENVIRONMENT.to_owned(), Origin::new(Source::Default))
    };
    if known.contains(&name) {
        return Some(Resolved::new(name, origin.source));
    }
    errors.push(SettingsError::UnknownEnvironment {
        at: origin,
        name,
        known: known.to_vec(),
    });
    None
}

fn check_duplicates(built: &[(String, BuiltVm)], errors: &mut Vec<SettingsError>) {
    for (index, (second, vm)) in built.iter().enumerate() {
        for (first, other) in &built[..index] {
            if vm.spec.vmid.value == other.spec.vmid.value {
                errors.push(SettingsError::DuplicateVmId {
                    at: vm.vmid_origin.clone(),
                    vmid: vm.spec.vmid.value,
                    first: first.clone(),
                    second: second.clone(),
                });
            }
            if vm.spec.ip.value.addr() == other.spec.ip.value.addr() {
                errors.push(SettingsError::DuplicateIp {
                    at: vm.ip_origin.clone(),
                    ip: vm.spec.ip.value.addr(),
                    first: first.clone(),
                    second: second.clone(),
                });
            }
        }
    }
}

/// A value from the variables `names`, else from the file's `key`.
pub(super) fn variable_or_file(
    layers: &Layers<'_>,
    names: &[&str],
    key: &str,
    file_value: Option<&toml::Spanned<String>>,
) -> Option<(String, Origin)> {
    layers.variable(names).or_else(|| {
        file_value.map(|spanned| {
            (
                spanned.get_ref().clone(),
                layers.file.origin(key, &spanned.span()),
            )
        })
    })
}

/// The API settings of `--lab`: the lab's URL, token and pinned certificate, nothing from
/// the configured cluster (no CA file, no password login, verification on).
fn lab_api(lab: &LabLayer) -> ApiSettings {
    ApiSettings {
        url: Some(Resolved::new(lab.url.clone(), LAB_SOURCE)),
        token: Some(Resolved::new(lab.token.clone(), LAB_SOURCE)),
        insecure: Resolved::new(false, LAB_SOURCE),
        fingerprint: lab
            .fingerprint
            .map(|fingerprint| Resolved::new(fingerprint, LAB_SOURCE)),
        ca_file: None,
        username: None,
        password: None,
    }
}

fn resolve_api(layers: &Layers<'_>, errors: &mut Vec<SettingsError>) -> Option<ApiSettings> {
    let table = &layers.file.document().api;
    let start = errors.len();
    let url = variable_or_file(
        layers,
        &[env_vars::PVE_API_URL, env_vars::PACKER_PROXMOX_URL],
        "api.url",
        table.url.as_ref(),
    )
    .and_then(|(value, at)| match values::parse_api_url(&value) {
        Ok(url) => Some(Resolved::new(url, at.source)),
        Err(reason) => {
            errors.push(SettingsError::MalformedUrl { at, value, reason });
            None
        }
    });
    let token = layers
        .variable(&[env_vars::PVE_API_TOKEN])
        .and_then(|(value, at)| match value.trim().parse::<pve::ApiToken>() {
            Ok(token) => Some(Resolved::new(token, at.source)),
            Err(source) => {
                errors.push(SettingsError::MalformedToken { at, source });
                None
            }
        });
    let insecure = match layers.variable(&[env_vars::PROXMOX_INSECURE]) {
        Some((value, at)) => match values::parse_bool(&value) {
            Ok(flag) => Resolved::new(flag, at.source),
            Err(message) => {
                errors.push(SettingsError::InvalidValue { at, message });
                Resolved::new(false, Source::Default)
            }
        },
        None => table.insecure.as_ref().map_or_else(
            || Resolved::new(false, Source::Default),
            |spanned| Resolved::new(*spanned.get_ref(), layers.file.source("api.insecure")),
        ),
    };
    let fingerprint = variable_or_file(
        layers,
        &[env_vars::SOMBRERO_PVE_FINGERPRINT],
        "api.fingerprint",
        table.fingerprint.as_ref(),
    )
    .and_then(|(value, at)| match values::parse_fingerprint(&value) {
        Ok(fingerprint) => Some(Resolved::new(fingerprint, at.source)),
        Err(message) => {
            errors.push(SettingsError::InvalidValue { at, message });
            None
        }
    });
    let ca_file = variable_or_file(
        layers,
        &[env_vars::SOMBRERO_PVE_CA_FILE],
        "api.ca_file",
        table.ca_file.as_ref(),
    )
    .map(|(value, at)| Resolved::new(layers.path(&value, &at.source), at.source));
    let username = variable_or_file(
        layers,
        &[env_vars::PACKER_PROXMOX_USERNAME],
        "api.username",
        table.username.as_ref(),
    )
    .and_then(|(value, at)| match value.trim().split_once('@') {
        Some((user, realm)) if !user.is_empty() && !realm.is_empty() => {
            Some(Resolved::new(value.trim().to_owned(), at.source))
        }
        _ => {
            let message = format!("{value:?} is not a Proxmox user id (USER@REALM, e.g. root@pam)");
            errors.push(SettingsError::InvalidValue { at, message });
            None
        }
    });
    let password = layers
        .variable(&[env_vars::PACKER_PROXMOX_PASSWORD])
        .map(|(value, at)| Resolved::new(pve::Secret::new(value), at.source));
    (errors.len() == start).then_some(ApiSettings {
        url,
        token,
        insecure,
        fingerprint,
        ca_file,
        username,
        password,
    })
}

fn resolve_paths(layers: &Layers<'_>, errors: &mut Vec<SettingsError>) -> PathSettings {
    let table = &layers.file.document().paths;
    let path =
        |name: &str, key: &str, file_value: Option<&toml::Spanned<String>>, default: &str| {
            let (raw, source) = variable_or_file(layers, &[name], key, file_value).map_or_else(
                || (default.to_owned(), Source::Default),
                |(raw, at)| (raw, at.source),
            );
            Resolved::new(layers.path(&raw, &source), source)
        };
    // A path, or a `postgres://` URL (the team's history); a bad URL is reported without
    // repeating it, since it may carry a password.
    let history = match variable_or_file(
        layers,
        &[env_vars::SOMBRERO_HISTORY],
        "paths.history",
        table.history.as_ref(),
    ) {
        Some((raw, at)) => match HistoryLocation::parse(&raw, |raw| layers.path(raw, &at.source)) {
            Ok(location) => Resolved::new(location, at.source),
            Err(message) => {
                errors.push(SettingsError::InvalidValue { at, message });
                Resolved::new(
                    HistoryLocation::File(layers.path(DEFAULT_HISTORY, &Source::Default)),
                    Source::Default,
                )
            }
        },
        None => Resolved::new(
            HistoryLocation::File(layers.path(DEFAULT_HISTORY, &Source::Default)),
            Source::Default,
        ),
    };
    PathSettings {
        history,
        outputs_dir: path(
            env_vars::SOMBRERO_OUTPUTS_DIR,
            "paths.outputs_dir",
            table.outputs_dir.as_ref(),
            DEFAULT_OUTPUTS_DIR,
        ),
        ansible_dir: variable_or_file(
            layers,
            &[env_vars::SOMBRERO_ANSIBLE_DIR],
            "paths.ansible_dir",
            table.ansible_dir.as_ref(),
        )
        .map(|(raw, at)| Resolved::new(layers.path(&raw, &at.source), at.source)),
    }
}
