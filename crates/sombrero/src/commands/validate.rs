//! `sombrero validate`: checks the configuration and the environment, without network.
//!
//! Why a command of its own: a deploy should not be the first place a user learns that
//! the token is malformed or the staging gateway is outside its subnet. `validate` runs
//! the same resolution every command runs, then checks what the pipeline will need (API
//! URL, credentials, SSH public key, CA file), and lists every problem at once. It never
//! opens a connection; `sombrero doctor` is the command that talks to Proxmox.

use serde::Serialize;
use sombrero_core::settings::{Settings, SettingsError, SettingsErrors};

use crate::context::ValidationContext;
use crate::exit::ExitStatus;

/// The `--json` report.
#[derive(Debug, Serialize)]
struct Report {
    valid: bool,
    environment: Option<String>,
    problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
struct Problem {
    message: String,
    hint: Option<String>,
}

/// Runs `sombrero validate`.
///
/// # Errors
/// [`SettingsErrors`] listing every problem (exit 2).
pub fn run(context: ValidationContext) -> anyhow::Result<ExitStatus> {
    let ValidationContext { printer, resolved } = context;
    let (environment, summary, problems) = match resolved {
        Ok(settings) => (
            Some(settings.environment.value.clone()),
            summary(&settings),
            environment_problems(&settings),
        ),
        Err(errors) => (None, String::new(), errors.0),
    };
    if printer.json_mode() {
        printer.json(&Report {
            valid: problems.is_empty(),
            environment,
            problems: problems
                .iter()
                .map(|problem| Problem {
                    message: problem.to_string(),
                    hint: problem.hint(),
                })
                .collect(),
        })?;
    }
    if !problems.is_empty() {
        return Err(SettingsErrors(problems).into());
    }
    printer.info(&summary);
    Ok(ExitStatus::Success)
}

/// One line saying what would be deployed.
fn summary(settings: &Settings) -> String {
    let vm = &settings.vm;
    format!(
        "configuration is valid: environment {}, VM {} ({}) at {} on node {}, from template {}",
        settings.environment.value,
        vm.vmid.value,
        vm.name.value,
        vm.ip.value,
        vm.node.value,
        vm.template_id.as_ref().map_or_else(
            || "chosen at deploy (stage 1's outputs, else the newest tagged)".to_owned(),
            |template| template.value.to_string()
        )
    )
}

/// What the pipeline needs beyond a valid file, checked on this machine only.
fn environment_problems(settings: &Settings) -> Vec<SettingsError> {
    let mut problems = settings.pipeline_problems(|path| std::fs::read_to_string(path));
    if let Some(ca_file) = &settings.api.ca_file
        && let Err(source) = std::fs::metadata(&ca_file.value).and_then(|meta| {
            if meta.is_file() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        })
    {
        problems.push(SettingsError::ReadFile {
            what: "CA file",
            path: ca_file.value.clone(),
            source,
        });
    }
    problems
}
