//! Settings resolution glue: gathers flags, the process environment and both files, and
//! calls the core resolver.
//!
//! Why here and not in commands: only the dispatcher ([`crate::context`]) calls these;
//! commands receive validated [`Settings`] in their context and never read a variable or a
//! file themselves (ripgrep/uv style). This is also the only place the binary touches
//! `std::env` for configuration, so tests can control everything through the child
//! process's environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sombrero_core::settings::{
    self, CliOverrides, ConfigFile, Inputs, LabLayer, MiseEnv, Settings, SettingsError,
    SettingsErrors, env_vars,
};

use crate::cli::GlobalArgs;

/// The configuration file used when neither `--config` nor `SOMBRERO_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "sombrero.toml";

/// The process environment as a map (variables that are not UTF-8 are skipped: none of
/// sombrero's variables can be meaningful then).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// The configuration file path: `--config`, else `SOMBRERO_CONFIG`, else `./sombrero.toml`.
pub fn config_path(global: &GlobalArgs, env: &HashMap<String, String>) -> PathBuf {
    global
        .config
        .clone()
        .or_else(|| {
            env.get(env_vars::SOMBRERO_CONFIG)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

/// What the command line adds to resolution: `--env`, a command's `--template`, and the
/// in-process lab of `--lab` once it runs.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub template: Option<u32>,
    pub lab: Option<LabLayer>,
}

/// Resolves the settings from the flags, `env` and both files. Warnings stay in
/// [`Settings::warnings`] for the caller to print once.
///
/// # Errors
/// Every configuration problem found (exit code 2).
pub fn resolve(
    global: &GlobalArgs,
    overrides: Overrides,
    env: &HashMap<String, String>,
) -> Result<Settings, SettingsErrors> {
    let loaded = load(global, env)?;
    let cli = cli_overrides(global, overrides);
    settings::resolve(loaded.inputs(&cli, env))
}

/// For `validate`: like [`resolve`], but when resolution fails the problems also list the
/// pipeline values (API URL, token, SSH key) that nothing sets, so one run shows
/// everything to fix.
///
/// # Errors
/// Every problem found.
pub fn resolve_for_validation(
    global: &GlobalArgs,
    env: &HashMap<String, String>,
) -> Result<Settings, SettingsErrors> {
    let loaded = load(global, env)?;
    let cli = cli_overrides(global, Overrides::default());
    let inputs = loaded.inputs(&cli, env);
    settings::resolve(inputs).map_err(|mut errors| {
        errors.0.extend(settings::missing_pipeline_values(inputs));
        errors
    })
}

fn cli_overrides(global: &GlobalArgs, overrides: Overrides) -> CliOverrides {
    CliOverrides {
        environment: global.env.clone(),
        template_id: overrides.template,
        lab: overrides.lab,
    }
}

/// Both files, parsed.
struct Loaded {
    file: ConfigFile,
    mise: Option<MiseEnv>,
}

impl Loaded {
    fn inputs<'a>(&'a self, cli: &'a CliOverrides, env: &'a HashMap<String, String>) -> Inputs<'a> {
        Inputs {
            cli,
            env,
            mise: self.mise.as_ref(),
            file: &self.file,
        }
    }
}

/// Reads and parses the configuration file and the `.mise.local.toml` next to it,
/// reporting the problems of both together.
fn load(global: &GlobalArgs, env: &HashMap<String, String>) -> Result<Loaded, SettingsErrors> {
    let path = config_path(global, env);
    let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::ReadFile {
        what: "configuration file",
        path: path.clone(),
        source,
    })?;
    let mise_path = path
        .parent()
        .unwrap_or(Path::new(""))
        .join(MiseEnv::FILE_NAME);
    let mise_text = match std::fs::read_to_string(&mise_path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SettingsError::ReadFile {
                what: "mise file",
                path: mise_path,
                source,
            }
            .into());
        }
    };
    let file = ConfigFile::parse(&path, text);
    let mise = mise_text
        .map(|text| MiseEnv::parse(&mise_path, &text, env))
        .transpose();
    match (file, mise) {
        (Ok(file), Ok(mise)) => Ok(Loaded { file, mise }),
        (file, mise) => {
            let mut problems = Vec::new();
            for errors in [file.err(), mise.err()].into_iter().flatten() {
                problems.extend(errors.0);
            }
            Err(SettingsErrors(problems))
        }
    }
}
