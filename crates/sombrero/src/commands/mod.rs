//! Command dispatch: one module per command, each taking its parsed arguments and the
//! printer and returning an exit status or an error for `main` to render.

mod adopt;
mod api;
mod api_recorded;
mod checklist;
mod completions;
mod config;
mod deploy;
mod destroy;
mod history;
mod issue;
mod lab;
mod lab_image;
mod metrics;
mod outputs;
mod plan;
mod report;
mod stage2;
mod status;
mod validate;

use crate::cli::{Cli, Command, IssueCommand};
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub use stage2::hint as stage_two_hint;

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the command fails with; `main` renders it and picks the exit code.
pub fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Completions(args) => completions::run(&args, printer),
        Command::Config(args) => config::run(&args, &cli.global, printer),
        Command::Validate => validate::run(&cli.global, printer),
        Command::History(args) => history::run(&args, &cli.global, printer),
        Command::Metrics(args) => metrics::run(&args, &cli.global, printer),
        Command::Report(args) => report::run(&args, &cli.global, printer),
        Command::Checklist(args) => checklist::run(&args, &cli.global, printer),
        Command::Issue(IssueCommand::Add(args)) => issue::run(&args, &cli.global, printer),
        Command::Api(args) => api_recorded::run(&args, &cli.global, printer),
        Command::Lab(command) => lab::run(&command, printer),
        Command::Plan(args) => plan::run(&args, &cli.global, printer),
        Command::Deploy(args) => deploy::run(&args, &cli.global, printer),
        Command::Status => status::run(&cli.global, printer),
        Command::Outputs => outputs::run(&cli.global, printer),
        Command::Destroy(args) => destroy::run(&args, &cli.global, printer),
        Command::Adopt(args) => adopt::run(&args, &cli.global, printer),
    }
}
