//! `sombrero completions SHELL`: shell completion scripts generated from the clap model, so
//! they never drift from the real flags.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit::ExitStatus;
use crate::printer::Printer;

#[expect(
    clippy::unnecessary_wraps,
    reason = "every command has the same signature for dispatch"
)]
pub fn run(args: &CompletionsArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sombrero", &mut script);
    printer.data(String::from_utf8_lossy(&script).trim_end());
    Ok(ExitStatus::Success)
}
