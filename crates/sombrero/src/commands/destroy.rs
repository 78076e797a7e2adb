//! `sombrero destroy`: shutdown (stop as fallback), delete with purge, outputs and host
//! keys removed. Recorded in the history.
//!
//! Why it asks: deleting a VM cannot be undone. On a terminal it asks unless `--yes`;
//! without one it refuses (exit 2) unless `--yes`. A VM without sombrero's marker is
//! refused before anything is touched (the core checks; the hint says how to adopt it),
//! and that refusal is recorded as a failed run; a cancelled confirmation is not a run.

use sombrero_core::deploy::{self, DestroyReport};
use sombrero_core::history::Run;

use super::stage2::{KeyUse, Stage2};
use crate::cli::DestroyArgs;
use crate::context::Context;
use crate::exit::ExitStatus;
use crate::progress::{Phases, Progress, drive};
use crate::prompt::confirm;
use crate::recording::{finish_run, recorded};
use sombrero_core::deploy::placement::Purpose;

/// Runs `sombrero destroy`.
///
/// # Errors
/// Configuration problems and a refused confirmation (exit 2), a foreign VM or API errors
/// (exit 1).
pub async fn run(args: &DestroyArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    if args.all {
        return super::destroy_all::run_all(args.yes, args.clean, context).await;
    }
    let stage = Stage2::prepared(context, false, KeyUse::Optional, Purpose::Find).await?;
    let client = context.client()?;
    let target = match deploy::destroy_target(client, &stage.desired).await {
        Ok(target) => target,
        Err(error) => {
            // Refused (a foreign VM) or unreachable: still a destroy that failed, so
            // the history shows it like any other failed run.
            let failed: Result<(), _> = Err(&error);
            let run = context.start_run("destroy");
            finish_run(run, &failed, printer);
            return Err(error.into());
        }
    };
    if let Some((name, running)) = &target
        && !args.yes
    {
        let power = if *running { "running" } else { "stopped" };
        let question = format!(
            "Destroy VM {} ({name}, {power}) of environment {} on {}?",
            stage.desired.vmid, stage.desired.environment, stage.desired.node
        );
        if !confirm(&question)? {
            printer.info("cancelled; nothing was changed");
            return Ok(ExitStatus::Failure);
        }
    }
    let work = async |run: Option<&Run<'_>>| converge(context, run).await;
    let Some(result) = recorded(context, "destroy", work).await else {
        return Ok(ExitStatus::Interrupted);
    };
    let report = result?;
    let logs = if args.clean {
        super::destroy_all::remove_logs(&context.settings)?
    } else {
        Vec::new()
    };
    if !logs.is_empty() {
        printer.info(&format!("--clean: removed {} log file(s)", logs.len()));
    }
    if printer.json_mode() {
        printer.json(&report)?;
    } else if report.deleted {
        printer.data(&format!(
            "Destroyed VM {} of environment {}; removed {} output path(s).",
            report.vmid,
            report.environment,
            report.removed_files.len()
        ));
    } else {
        printer.data(&format!(
            "VM {} of environment {} does not exist; removed {} output path(s).",
            report.vmid,
            report.environment,
            report.removed_files.len()
        ));
    }
    Ok(ExitStatus::Success)
}

/// Destroys the environment's VM inside a recorded run (`stop`, `delete`, `cleanup`
/// phases), with live progress; `rollback` runs it inside its own run.
///
/// # Errors
/// A foreign VM, API and file errors.
pub async fn converge(context: &Context, run: Option<&Run<'_>>) -> anyhow::Result<DestroyReport> {
    let stage = Stage2::prepared(context, false, KeyUse::Optional, Purpose::Find).await?;
    let client = context.client()?;
    let mut progress = Progress::new(&context.printer);
    let mut phases = Phases::new(run);
    let report = drive(&mut progress, &mut phases, |events| async move {
        deploy::converge::destroy_converged(client, &stage.desired, context.timeouts(), &*events)
            .await
    })
    .await?;
    Ok(report)
}
