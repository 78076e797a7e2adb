//! `sombrero history`: the recorded runs, newest first. Where the database is, how it is
//! opened and how a filter is built are the history context's (`crate::context`).
//!
//! Why reading commands never create the database: `sombrero history` typed in the wrong
//! directory should say "no runs recorded" rather than leave a `deployments/sombrero.db`
//! behind. Only recording (and `issue add`, which needs a recorded run anyway) writes.

use std::fmt::Write as _;

use serde::Serialize;
use sombrero_core::history::{self, RunRecord, clock};

use crate::cli::{HistoryAction, HistoryArgs};
use crate::context::HistoryContext;
use crate::exit::ExitStatus;

/// The `--json` shape of `sombrero history`.
#[derive(Debug, Serialize)]
struct HistoryView<'runs> {
    database: String,
    runs: &'runs [RunRecord],
}

pub fn run(args: &HistoryArgs, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    if let Some(HistoryAction::Import { file }) = &args.action {
        return import(file, context);
    }
    let (global, printer) = (&context.global, &context.printer);
    let store = context.open_for_reading()?;
    let runs = store.runs(global.env.as_deref(), Some(args.limit))?;
    if printer.json_mode() {
        printer.json(&HistoryView {
            database: store.location().to_string(),
            runs: &runs,
        })?;
        return Ok(ExitStatus::Success);
    }
    if runs.is_empty() {
        printer.info(&format!("No runs recorded yet in {}.", store.location()));
        return Ok(ExitStatus::Success);
    }
    printer.data(&table(&runs));
    Ok(ExitStatus::Success)
}

/// `history import FILE`: copies a local history into this one, once.
fn import(file: &std::path::Path, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let store = context.open_for_writing()?;
    let summary = store.import(file)?;
    if printer.json_mode() {
        printer.json(&summary)?;
    } else {
        printer.info(&format!(
            "Imported {} of {} runs from {} into {} ({} phases, {} issues); {} were already \
             there.",
            summary.imported,
            summary.runs_found,
            summary.source,
            store.location(),
            summary.phases_imported,
            summary.issues_imported,
            summary.already_present
        ));
    }
    Ok(ExitStatus::Success)
}

/// The text view: one line per run, columns aligned.
fn table(runs: &[RunRecord]) -> String {
    let header = [
        "RUN", "COMMAND", "ENV", "OPERATOR", "STARTED", "DURATION", "STATUS",
    ];
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|run| {
            let status = match &run.error {
                Some(error) if run.status != history::RunStatus::Success => {
                    format!("{}: {}", run.status.as_str(), first_line(error))
                }
                _ => run.status.as_str().to_owned(),
            };
            [
                run.id.clone(),
                run.command.clone(),
                run.environment.clone(),
                run.operator.clone(),
                clock::human(run.started_ms),
                run.duration_ms
                    .map_or_else(|| "-".to_owned(), clock::duration),
                status,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        text
    };
    let mut lines = vec![line(&header)];
    lines.extend(
        rows.iter()
            .map(|row| line(&row.each_ref().map(String::as_str))),
    );
    lines.join("\n")
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(80) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}
