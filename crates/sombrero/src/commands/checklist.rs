//! `sombrero checklist [RUN]`: writes the runbook's deployment record for a run (the
//! latest by default) to `deployments/checklists/YYYY-MM-DD-HH-MM-deployment.md` and prints
//! its path.
//!
//! Why next to the history file: the runbook keeps checklists under `deployments/`, and
//! the history database lives there too by default; a history moved elsewhere
//! (`SOMBRERO_HISTORY`) takes its checklists with it unless `--dir` says otherwise.

use std::path::PathBuf;

use sombrero_core::history::{Store, checklist};

use crate::cli::ChecklistArgs;
use crate::context::HistoryContext;
use crate::exit::ExitStatus;

pub fn run(args: &ChecklistArgs, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let path = context.path.clone();
    let store = Store::open_existing(&path)?;
    let detail = store.run_detail(args.run.as_deref())?;
    let directory = args.dir.clone().unwrap_or_else(|| {
        path.parent().map_or_else(
            || PathBuf::from("checklists"),
            |parent| parent.join("checklists"),
        )
    });
    let written = checklist::write(&detail, &directory)?;
    printer.info(&format!(
        "Wrote the deployment record of {} ({} phases, {} issues)",
        detail.run.id,
        detail.phases.len(),
        detail.issues.len()
    ));
    if printer.json_mode() {
        printer.json(&serde_json::json!({
            "run": detail.run.id,
            "path": written.display().to_string(),
        }))?;
    } else {
        printer.data(&written.display().to_string());
    }
    Ok(ExitStatus::Success)
}
