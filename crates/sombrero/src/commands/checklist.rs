//! `sombrero checklist [RUN]`: writes the runbook's deployment record for a run (the
//! latest by default) to `deployments/checklists/YYYY-MM-DD-HH-MM-deployment.md` and prints
//! its path.
//!
//! Why next to the history file: the runbook keeps checklists under `deployments/`, and
//! the history database lives there too by default; a history moved elsewhere
//! (`SOMBRERO_HISTORY`) takes its checklists with it unless `--dir` says otherwise; a
//! `PostgreSQL` history writes them to `deployments/checklists` of the working directory.

use std::path::PathBuf;

use sombrero_core::history::{self, checklist};

use crate::cli::ChecklistArgs;
use crate::context::HistoryContext;
use crate::exit::ExitStatus;

pub fn run(args: &ChecklistArgs, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let store = context.open_for_reading()?;
    let detail = store.run_detail(args.run.as_deref())?;
    // A PostgreSQL history has no directory: its checklists go where the default
    // history's would (`deployments/checklists`).
    let directory = args.dir.clone().unwrap_or_else(|| {
        context.location.file().map_or_else(
            || history::default_path().with_file_name("checklists"),
            |file| {
                file.parent().map_or_else(
                    || PathBuf::from("checklists"),
                    |parent| parent.join("checklists"),
                )
            },
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
