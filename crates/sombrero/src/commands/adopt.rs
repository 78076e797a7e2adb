//! `sombrero adopt VMID`: take over an existing VM for the environment, the runbook's
//! `terraform import`.
//!
//! Why explicit: sombrero never changes a VM it did not create. Adopting adds the marker
//! and tags (one update, digest-guarded) and nothing else; `sombrero plan` then shows how
//! the VM differs from the configuration, and `deploy` reconciles it. Recorded in the
//! history because it changes the cluster.

use sombrero_core::deploy;

use super::deploy::{finish_run, open_history, start_run};
use super::stage2::{Stage2, runtime};
use crate::cli::{AdoptArgs, GlobalArgs};
use crate::exit::ExitStatus;
use crate::printer::Printer;

/// Runs `sombrero adopt`.
///
/// # Errors
/// Configuration problems or a VM id that is not the environment's (exit 2), a VM of
/// another environment, a template, API errors (exit 1).
pub fn run(args: &AdoptArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let stage = Stage2::prepare(global, None, false, printer).await?;
        let store = open_history(&stage.settings, printer);
        let run = start_run(store.as_ref(), &stage.settings, "adopt", printer);
        let result = match run.as_ref() {
            Some(run) => {
                run.phase_async("adopt", deploy::adopt(&stage.client, &stage.desired, args.vmid))
                    .await
            }
            None => deploy::adopt(&stage.client, &stage.desired, args.vmid).await,
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
    })
}
