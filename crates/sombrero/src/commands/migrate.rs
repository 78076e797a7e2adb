//! `sombrero migrate --to NODE [--online]`: the environment's VM to another node.
//!
//! Why recorded and locked like `deploy`: it changes the cluster, and a deploy running at
//! the same time would read the VM on one node and write it on another. The checks and
//! the move are `sombrero_core::deploy::migrate`; this prints and records.

use sombrero_core::deploy::migrate::{self, MigrateReport};
use sombrero_core::deploy::placement::Purpose;

use super::stage2::{KeyUse, Stage2};
use crate::cli::MigrateArgs;
use crate::context::Context;
use crate::exit::ExitStatus;
use crate::recording::finish_run;

/// Runs `sombrero migrate`.
///
/// # Errors
/// Configuration problems (exit 2); a VM that is missing or not ours, an unknown or
/// offline target, a running VM without `--online`, a failed task (exit 1).
pub async fn run(args: &MigrateArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepared(context, false, KeyUse::Optional, Purpose::Find).await?;
    let client = context.client()?;
    let desired = &stage.desired;
    if desired.node != args.to {
        printer.info(&format!(
            "migrating VM {} of environment {} from {} to {}{}",
            desired.vmid,
            desired.environment,
            desired.node,
            args.to,
            if args.online { " (live)" } else { "" }
        ));
    }
    let run = context.start_run("migrate");
    if let Some(run) = run.as_ref() {
        run.set_vm_id(i64::from(desired.vmid));
    }
    let work = migrate::migrate(client, desired, &args.to, args.online, &pve::no_progress);
    let result = match run.as_ref() {
        Some(run) => run.phase_async("migrate", work).await,
        None => work.await,
    };
    finish_run(run, &result, printer);
    let report = result?;
    if printer.json_mode() {
        printer.json(&report)?;
    } else {
        printer.data(&render(&report));
    }
    Ok(ExitStatus::Success)
}

fn render(report: &MigrateReport) -> String {
    if !report.moved {
        return format!(
            "VM {} of environment {} is already on {}; nothing to do.",
            report.vmid, report.environment, report.to
        );
    }
    let how = match (report.online, report.with_local_disks) {
        (true, true) => "live, local disks copied",
        (true, false) => "live",
        (false, _) => "offline",
    };
    let mut text = format!(
        "VM {} of environment {} moved from {} to {} ({how}).",
        report.vmid, report.environment, report.from, report.to
    );
    if report.rewritten.is_empty() {
        text.push_str("\nNo outputs to rewrite (the environment was not deployed from here).");
    } else {
        text.push_str("\nRewritten with the new node:");
        for path in &report.rewritten {
            text.push_str("\n  ");
            text.push_str(path);
        }
    }
    text
}
