//! `sombrero outputs`: prints the environment's stage outputs (`terraform-outputs.json`).
//!
//! Why a command for a file: the runbook's "Manual Output Inspection" reads the file with
//! jq; this finds the right file for the environment (docs/outputs.md) and says what to do
//! when there is none. Reads no API at all.

use sombrero_core::deploy::{Layout, outputs};

use crate::context::Context;
use crate::exit::{BadInput, ExitStatus};

/// Runs `sombrero outputs`.
///
/// # Errors
/// Configuration problems, or no outputs for the environment (exit 2).
pub fn run(context: &Context) -> anyhow::Result<ExitStatus> {
    let (settings, printer) = (&context.settings, &context.printer);
    let layout = Layout::new(
        &settings.paths.outputs_dir.value,
        &settings.environment.value,
    );
    let Some(stage) = outputs::read(&layout) else {
        return Err(BadInput {
            message: format!(
                "environment {} has no stage outputs ({} does not exist)",
                settings.environment.value,
                layout.outputs().display()
            ),
            hint: Some(format!(
                "run `sombrero deploy --env {}` first",
                settings.environment.value
            )),
        }
        .into());
    };
    if printer.json_mode() {
        printer.json(&stage)?;
        return Ok(ExitStatus::Success);
    }
    let lines = [
        ("environment", stage.environment.clone()),
        ("vm_id", stage.vm_id.clone()),
        ("vm_hostname", stage.vm_hostname.clone()),
        ("vm_ip", stage.vm_ip.clone()),
        ("node", stage.node.clone()),
        (
            "template_id",
            stage
                .template_id
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("ssh_user", stage.ssh_user.clone()),
        (
            "ssh_key_path",
            stage
                .ssh_key_path
                .clone()
                .unwrap_or_else(|| "(ssh-agent or none found)".into()),
        ),
        ("ssh", format!("{}:{}", stage.ssh_host, stage.ssh_port)),
        ("known_hosts", stage.known_hosts_file.clone()),
        ("inventory", stage.inventory_file.clone()),
        ("deployed_at", stage.deployed_at.clone()),
    ];
    for (key, value) in lines {
        printer.data(&format!("{key:<13} {value}"));
    }
    Ok(ExitStatus::Success)
}
