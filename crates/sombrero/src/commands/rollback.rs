//! `sombrero rollback --template ID`: the runbook's rollback procedure as one command.
//!
//! Why destroy and re-create instead of an in-place change: a template is the VM's
//! disk, and the only way back to an older build is a new clone of it; stage 3 and the
//! smoke tests then run as after any deploy. The old template is never deleted (a
//! rollback must itself be reversible), and the plan is shown before anything happens.

use std::fmt::Write as _;

use sombrero_core::deploy;

use super::stage2::{KeyUse, Stage2};
use super::up::{BuildMode, Pipeline, run_pipeline};
use crate::cli::RollbackArgs;
use crate::context::Context;
use crate::exit::ExitStatus;
use crate::prompt::confirm;
use sombrero_core::deploy::placement::Purpose;

/// Runs `sombrero rollback`.
///
/// # Errors
/// The template missing or not a template (exit 1) before anything changes; a refused
/// confirmation (exit 2); then as `up`.
pub async fn run(args: &RollbackArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepared(context, false, KeyUse::Optional, Purpose::Find).await?;
    let client = context.client()?;
    let desired = &stage.desired;
    // Both checked before the question: a rollback to nothing must not destroy anything.
    let template = deploy::template::resolve(client, &desired.node, &stage.request).await?;
    let current = deploy::destroy_target(client, desired).await?;
    let mut plan = format!("Rollback of environment {}:\n", desired.environment);
    match &current {
        Some((name, running)) => {
            let power = if *running { "running" } else { "stopped" };
            let _ = writeln!(
                plan,
                "  1. destroy VM {} ({name}, {power}) and its outputs",
                desired.vmid
            );
        }
        None => {
            let _ = writeln!(
                plan,
                "  1. nothing to destroy: VM {} does not exist",
                desired.vmid
            );
        }
    }
    let _ = writeln!(
        plan,
        "  2. clone template {}{} into VM {} on {}, start it\n  3. configure and verify it\n  \
         every template is kept",
        template.id,
        template
            .name
            .as_ref()
            .map(|name| format!(" ({name})"))
            .unwrap_or_default(),
        desired.vmid,
        desired.node
    );
    printer.info(plan.trim_end());
    if !args.yes {
        let question = format!(
            "Roll environment {} back to template {}?",
            desired.environment, template.id
        );
        if !confirm(&question)? {
            printer.info("cancelled; nothing was changed");
            return Ok(ExitStatus::Failure);
        }
    }
    let pipeline = Pipeline {
        build: BuildMode::Never,
        yes: true,
        recreate: true,
    };
    Box::pin(run_pipeline(context, "rollback", pipeline)).await
}
