//! `sombrero adopt VMID`: take over an existing VM for the environment, the runbook's
//! `terraform import`.
//!
//! Why explicit: sombrero never changes a VM it did not create. Adopting adds the marker
//! and tags (one update, digest-guarded) and nothing else; `sombrero plan` then shows how
//! the VM differs from the configuration, and `deploy` reconciles it. Recorded in the
//! history because it changes the cluster.

use sombrero_core::deploy;

use super::stage2::{KeyUse, Stage2};
use crate::cli::AdoptArgs;
use crate::context::Context;
use crate::exit::ExitStatus;
use crate::recording::finish_run;
use sombrero_core::deploy::placement::Purpose;

/// Runs `sombrero adopt`.
///
/// # Errors
/// Configuration problems or a VM id that is not the environment's (exit 2), a VM of
/// another environment, a template, API errors (exit 1).
pub async fn run(args: &AdoptArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepared(context, false, KeyUse::Required, Purpose::Find).await?;
    let client = context.client()?;
    let run = context.start_run("adopt");
    let result = match run.as_ref() {
        Some(run) => {
            run.phase_async("adopt", deploy::adopt(client, &stage.desired, args.vmid))
                .await
        }
        None => deploy::adopt(client, &stage.desired, args.vmid).await,
    };
    finish_run(run, &result, printer);
    let report = result?;
    if printer.json_mode() {
        printer.json(&report)?;
    } else if report.adopted {
        printer.data(&format!(
                "VM {} is now managed by sombrero for environment {}; run `sombrero plan` to see how it differs from the configuration.",
                report.vmid, report.environment
            ));
    } else {
        printer.data(&format!(
            "VM {} was already managed by sombrero for environment {}.",
            report.vmid, report.environment
        ));
    }
    Ok(ExitStatus::Success)
}
