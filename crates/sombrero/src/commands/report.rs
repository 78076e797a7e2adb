//! `sombrero report --html FILE`: the metrics and charts as one self-contained HTML file.
//!
//! Why the binary only writes the file: the page is built by the core
//! (`sombrero_core::history::report`), so tests and other front ends render the same page;
//! the file is written atomically, so a browser or a CI artifact upload never sees half a
//! report, and an existing report is replaced only once the new one is complete.

use sombrero_core::history::{self, report};

use crate::cli::ReportArgs;
use crate::context::HistoryContext;
use crate::exit::ExitStatus;

pub fn run(args: &ReportArgs, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let store = context.open_for_reading()?;
    let filter = context.filter(args.since.as_deref(), args.command.as_deref())?;
    let data = store.report_data(&filter)?;
    history::write_atomically(&args.html, &report::render(&data))?;
    printer.info(&format!(
        "Wrote the report of {} runs to {}",
        data.metrics.total_runs,
        args.html.display()
    ));
    if printer.json_mode() {
        printer.json(&serde_json::json!({
            "path": args.html.display().to_string(),
            "runs": data.metrics.total_runs,
        }))?;
    } else {
        printer.data(&args.html.display().to_string());
    }
    Ok(ExitStatus::Success)
}
