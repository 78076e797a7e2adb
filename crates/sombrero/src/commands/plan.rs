//! `sombrero plan`: the read-only diff between the environment's desired VM and the
//! cluster, in the spirit of `terraform plan`.
//!
//! Why its own renderer: `deploy` prints the same plan before it asks to go ahead, so the
//! text view lives here and both use it. `plan` sends reads only; its text view and
//! `--json` come from the same `Plan` value. The shared stage-2 setup is in `stage2.rs`.

use std::fmt::Write as _;

use sombrero_core::deploy::{self, Action, Plan};

use super::stage2::{KeyUse, Stage2};
use crate::context::Context;
use crate::exit::ExitStatus;

/// The plan as text: a header, then one line per field (`+` set, `~` change).
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Environment {}: VM {} ({}) on node {}",
        plan.environment, plan.vmid, plan.name, plan.node
    );
    let template = plan.template.as_ref().map(|choice| {
        let name = choice
            .name
            .as_ref()
            .map(|name| format!(" {name:?}"))
            .unwrap_or_default();
        format!(
            "template {}{name}, chosen by {}",
            choice.id, choice.chosen_by
        )
    });
    match plan.action {
        Action::Create => {
            let _ = writeln!(
                out,
                "  action: create (clone of {})",
                template.unwrap_or_default()
            );
        }
        other => {
            let power = plan.power.as_deref().unwrap_or("absent");
            let _ = writeln!(out, "  action: {} (VM is {power})", other.describe());
            if let Some(template) = template {
                let _ = writeln!(out, "  {template}");
            }
        }
    }
    for change in &plan.changes {
        let one_line = |text: &str| text.replace('\n', "\\n");
        let restart = if change.restart { " (restart)" } else { "" };
        match &change.from {
            Some(from) if plan.action != Action::Create => {
                let _ = writeln!(
                    out,
                    "  ~ {}: {} -> {}{restart}",
                    change.field,
                    one_line(from),
                    one_line(&change.to)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "  + {}: {}{restart}",
                    change.field,
                    one_line(&change.to)
                );
            }
        }
    }
    for note in &plan.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// Runs `sombrero plan`.
///
/// # Errors
/// Configuration problems (exit 2), stage-2 errors (exit 1).
pub async fn run(context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepare(context, false, KeyUse::Required)?;
    let plan = deploy::plan(context.client()?, &stage.desired, &stage.request).await?;
    if printer.json_mode() {
        printer.json(&plan)?;
    } else {
        printer.data(render(&plan).trim_end());
    }
    Ok(ExitStatus::Success)
}
