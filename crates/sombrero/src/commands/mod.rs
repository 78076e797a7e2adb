//! Command dispatch: builds each command's context once, then runs the command with it.
//!
//! Why here: the dispatcher is the one place that decides what a command gets (the full
//! [`Context`] with settings, client, history and lab; the [`HistoryContext`] of the
//! history readers; the [`ValidationContext`] of `validate`; or only the printer), so no
//! command resolves settings, starts a lab or builds a client itself. Each command module
//! takes its parsed arguments and its context and returns an exit status or an error for
//! `main` to render.

mod adopt;
mod api;
mod api_recorded;
mod build;
mod checklist;
mod completions;
mod config;
mod configure;
mod configure_view;
mod deploy;
mod destroy;
mod destroy_all;
mod diagnose;
mod doctor;
mod history;
mod issue;
mod lab;
mod lab_image;
mod metrics;
mod migrate;
mod outputs;
mod pipeline_view;
mod plan;
mod report;
mod rollback;
mod stage2;
mod status;
mod up;
mod validate;
mod verify;

use crate::cli::{Cli, Command, GlobalArgs, IssueCommand};
use crate::context::{Access, Context, HistoryContext, ValidationContext, runtime};
use crate::exit::ExitStatus;
use crate::lab_mode::LabGuests;
use crate::printer::Printer;

/// Runs the parsed command line.
///
/// # Errors
/// Whatever the command fails with; `main` renders it and picks the exit code.
pub fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let global = &cli.global;
    match cli.command {
        Command::Completions(args) => completions::run(&args, printer),
        Command::Lab(command) => lab::run(&command, printer),
        Command::Validate => validate::run(ValidationContext::build(global, printer)),
        Command::History(args) => history::run(&args, &HistoryContext::build(global, printer)?),
        Command::Metrics(args) => metrics::run(&args, &HistoryContext::build(global, printer)?),
        Command::Report(args) => report::run(&args, &HistoryContext::build(global, printer)?),
        Command::Checklist(args) => checklist::run(&args, &HistoryContext::build(global, printer)?),
        Command::Issue(IssueCommand::Add(args)) => {
            issue::run(&args, &HistoryContext::build(global, printer)?)
        }
        Command::Config(args) => {
            with_context(global, printer, None, Access::Read, async |context| {
                config::run(&args, context)
            })
        }
        Command::Outputs(args) => {
            with_context(global, printer, None, Access::Read, async |context| {
                outputs::run(&args, context)
            })
        }
        Command::Api(args) => {
            // A malformed request is reported before anything else is looked at.
            let request = api::build_request(&args)?;
            with_context(global, printer, None, Access::Read, async |context| {
                api_recorded::run(&request, context).await
            })
        }
        Command::Plan(args) => {
            with_context(global, printer, args.template, Access::Read, plan::run)
        }
        Command::Deploy(args) => with_context(
            global,
            printer,
            args.template,
            Access::Write("deploy"),
            async |context| deploy::run(&args, context).await,
        ),
        Command::Configure => with_context(
            global,
            printer,
            None,
            Access::Write("configure"),
            configure::run,
        ),
        Command::Build(args) => with_context(
            global,
            printer,
            None,
            Access::Write("build"),
            async |context| build::run(&args, context).await,
        ),
        Command::Verify(args) => {
            with_context(global, printer, None, Access::Read, async |context| {
                verify::run(&args, context).await
            })
        }
        Command::Diagnose(args) => {
            with_context(global, printer, None, Access::Read, async |context| {
                diagnose::run(&args, context).await
            })
        }
        Command::Doctor => with_context(global, printer, None, Access::Read, doctor::run),
        Command::Templates => with_context(global, printer, None, Access::Read, build::templates),
        Command::Status => with_context(global, printer, None, Access::Read, status::run),
        Command::Destroy(args) => with_context(
            global,
            printer,
            None,
            Access::Write("destroy"),
            async |context| destroy::run(&args, context).await,
        ),
        Command::Up(args) => runtime()?.block_on(async {
            let context = Context::build_with(
                global,
                printer,
                args.template,
                Access::Write("up"),
                LabGuests::RealWhenPossible,
            )
            .await?;
            up::run(&args, &context).await
        }),
        Command::Rollback(args) => with_context(
            global,
            printer,
            Some(args.template),
            Access::Write("rollback"),
            async |context| rollback::run(&args, context).await,
        ),
        Command::Adopt(args) => with_context(
            global,
            printer,
            None,
            Access::Write("adopt"),
            async |context| adopt::run(&args, context).await,
        ),
        Command::Migrate(args) => with_context(
            global,
            printer,
            None,
            Access::Write("migrate"),
            async |context| migrate::run(&args, context).await,
        ),
    }
}

/// Builds the [`Context`] on a fresh runtime (starting the lab for `--lab`, taking the
/// environment's lock for a command that writes) and runs `command` with it. The context, and with it the in-process lab, ends with the command.
fn with_context(
    global: &GlobalArgs,
    printer: &Printer,
    template: Option<u32>,
    access: Access,
    command: impl AsyncFnOnce(&Context) -> anyhow::Result<ExitStatus>,
) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let context = Context::build(global, printer, template, access).await?;
        command(&context).await
    })
}
