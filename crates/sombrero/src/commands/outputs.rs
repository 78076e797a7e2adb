//! `sombrero outputs`: the environment's stage outputs, all of them or one stage's.
//!
//! Why a command for files: the runbook's "Manual Output Inspection" reads
//! `packer-outputs.json`, `terraform-outputs.json` and `ansible-results.json` with jq;
//! this finds the right files for the environment (docs/outputs.md), shows them together
//! with `verify-results.json`, and says which stage to run for one that is missing.
//! Reads no API at all.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Map, Value};
use sombrero_core::build::PACKER_OUTPUTS;
use sombrero_core::configure::RESULTS_FILE;
use sombrero_core::deploy::Layout;
use sombrero_core::deploy::outputs::OUTPUTS_FILE;

use crate::cli::{OutputsArgs, Stage};
use crate::context::Context;
use crate::exit::{BadInput, ExitStatus};

/// A stage's file and the command that writes it.
fn file_of(stage: Stage, layout: &Layout) -> (PathBuf, &'static str) {
    match stage {
        Stage::Build => (layout.outputs_dir.join(PACKER_OUTPUTS), "build"),
        Stage::Deploy => (layout.environment_dir().join(OUTPUTS_FILE), "deploy"),
        Stage::Configure => (layout.environment_dir().join(RESULTS_FILE), "configure"),
        Stage::Verify => (
            layout
                .environment_dir()
                .join(sombrero_core::verify::RESULTS_FILE),
            "verify",
        ),
    }
}

fn read(path: &std::path::Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The keys shown in the text view of each stage (all top-level scalars for `--stage`).
fn summary_keys(stage: Stage) -> &'static [&'static str] {
    match stage {
        Stage::Build => &[
            "template_id",
            "template_name",
            "build_time",
            "docker_version",
            "os",
        ],
        Stage::Deploy => &[
            "vm_id",
            "vm_hostname",
            "vm_ip",
            "node",
            "template_id",
            "ssh_user",
            "ssh_key_path",
            "ssh_host",
            "ssh_port",
            "known_hosts_file",
            "inventory_file",
            "deployed_at",
        ],
        Stage::Configure => &[
            "deployment_status",
            "docker_status",
            "firewall_rules",
            "completion_time",
        ],
        Stage::Verify => &["suite", "passed", "failed", "skipped", "started_at"],
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null => Some("null".to_owned()),
        _ => None,
    }
}

fn lines(data: &Map<String, Value>, keys: Option<&[&str]>) -> Vec<(String, String)> {
    match keys {
        Some(keys) => keys
            .iter()
            .filter_map(|key| Some(((*key).to_owned(), scalar(data.get(*key)?)?)))
            .collect(),
        None => data
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), scalar(value)?)))
            .collect(),
    }
}

const STAGES: [Stage; 4] = [Stage::Build, Stage::Deploy, Stage::Configure, Stage::Verify];

/// Runs `sombrero outputs [--stage S]`.
///
/// # Errors
/// Configuration problems; nothing written for the environment, or the asked stage's
/// file missing (exit 2).
pub fn run(args: &OutputsArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let (settings, printer) = (&context.settings, &context.printer);
    let environment = &settings.environment.value;
    let layout = Layout::new(&settings.paths.outputs_dir.value, environment);
    if let Some(stage) = args.stage {
        let (path, command) = file_of(stage, &layout);
        let Some(data) = read(&path) else {
            return Err(BadInput {
                message: format!(
                    "environment {environment} has no {} outputs ({} does not exist)",
                    stage.as_str(),
                    path.display()
                ),
                hint: Some(format!(
                    "run `sombrero {command} --env {environment}` first"
                )),
            }
            .into());
        };
        if printer.json_mode() {
            printer.json(&data)?;
        } else if let Some(object) = data.as_object() {
            for (key, value) in lines(object, None) {
                printer.data(&format!("{key:<20} {value}"));
            }
        }
        return Ok(ExitStatus::Success);
    }
    let found: Vec<(Stage, PathBuf, Option<Value>)> = STAGES
        .iter()
        .map(|stage| {
            let (path, _) = file_of(*stage, &layout);
            let data = read(&path);
            (*stage, path, data)
        })
        .collect();
    if found.iter().all(|(_, _, data)| data.is_none()) {
        return Err(BadInput {
            message: format!(
                "environment {environment} has no stage outputs ({} does not exist)",
                layout.outputs().display()
            ),
            hint: Some(format!("run `sombrero deploy --env {environment}` first")),
        }
        .into());
    }
    if printer.json_mode() {
        let all: Map<String, Value> = found
            .into_iter()
            .map(|(stage, _, data)| (stage.as_str().to_owned(), data.unwrap_or(Value::Null)))
            .collect();
        printer.json(&all)?;
        return Ok(ExitStatus::Success);
    }
    let mut text = format!("environment          {environment}\n");
    for (stage, path, data) in found {
        let _ = writeln!(text, "\n{} ({})", stage.title(), path.display());
        if let Some(object) = data.as_ref().and_then(Value::as_object) {
            for (key, value) in lines(object, Some(summary_keys(stage))) {
                let _ = writeln!(text, "  {key:<18} {value}");
            }
        } else {
            let (_, command) = file_of(stage, &layout);
            let _ = writeln!(
                text,
                "  not written yet: `sombrero {command} --env {environment}`"
            );
        }
    }
    printer.data(text.trim_end());
    Ok(ExitStatus::Success)
}
