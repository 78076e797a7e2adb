//! `sombrero history`: the recorded runs, newest first; and the helpers every history
//! command shares (where the database is, how it is opened, how a filter is built).
//!
//! Why reading commands never create the database: `sombrero history` typed in the wrong
//! directory should say "no runs recorded" rather than leave a `deployments/sombrero.db`
//! behind. Only recording (and `issue add`, which needs a recorded run anyway) writes.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use sombrero_core::history::{self, MetricsFilter, RunRecord, Store, clock};

use crate::cli::{GlobalArgs, HistoryArgs};
use crate::exit::ExitStatus;
use crate::printer::Printer;

/// The history database: the resolved `paths.history` setting (flag, `SOMBRERO_HISTORY`,
/// mise file, `sombrero.toml`, default), the one place the binary decides it.
///
/// # Errors
/// Configuration problems (exit code 2).
pub fn history_path(global: &GlobalArgs, printer: &Printer) -> anyhow::Result<PathBuf> {
    let env = crate::context::process_env();
    if crate::context::config_path(global, &env).exists() {
        let settings = crate::context::resolve_settings(global, None, printer)?;
        return Ok(settings.paths.history.value);
    }
    // No configuration file: history commands still work on the default location, or on
    // `SOMBRERO_HISTORY` (read through the same map the resolver reads).
    Ok(env
        .get(sombrero_core::settings::env_vars::SOMBRERO_HISTORY)
        .filter(|value| !value.is_empty())
        .map_or_else(history::default_path, PathBuf::from))
}

/// Opens the history for reading (an empty one if the file does not exist yet).
///
/// # Errors
/// A [`history::HistoryError`] naming the path.
pub fn open_for_reading(global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Store> {
    let path = history_path(global, printer)?;
    Ok(Store::open_existing(path)?)
}

/// The metrics filter from `--env`, `--since` and `--command`.
///
/// # Errors
/// [`history::HistoryError::BadTime`] for an unreadable `--since`.
pub fn filter(
    global: &GlobalArgs,
    since: Option<&str>,
    command: Option<&str>,
) -> anyhow::Result<MetricsFilter> {
    let since_ms = since
        .map(|text| clock::parse_since(text, clock::now_ms()))
        .transpose()?;
    Ok(MetricsFilter {
        environment: global.env.clone(),
        since_ms,
        command: command.map(ToOwned::to_owned),
    })
}

/// The `--json` shape of `sombrero history`.
#[derive(Debug, Serialize)]
struct HistoryView<'runs> {
    database: String,
    runs: &'runs [RunRecord],
}

pub fn run(
    args: &HistoryArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let store = open_for_reading(global, printer)?;
    let runs = store.runs(global.env.as_deref(), Some(args.limit))?;
    if printer.json_mode() {
        printer.json(&HistoryView {
            database: store.path().display().to_string(),
            runs: &runs,
        })?;
        return Ok(ExitStatus::Success);
    }
    if runs.is_empty() {
        printer.info(&format!(
            "No runs recorded yet in {}.",
            store.path().display()
        ));
        return Ok(ExitStatus::Success);
    }
    printer.data(&table(&runs));
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
