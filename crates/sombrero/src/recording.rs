//! Ending a recorded run: finished (with its result) or interrupted, and the problems the
//! recorder met along the way.
//!
//! Why a module of its own: every command that changes the cluster (deploy, destroy,
//! adopt, api writes, and later build, configure, up, rollback) ends its run the same
//! way, and a history problem must never fail the command, only be reported. Runs are
//! started through [`crate::context::Context::start_run`].

use sombrero_core::history::Run;

use crate::printer::Printer;

/// Finishes a recorded run and reports recording problems.
pub fn finish_run<T, E: std::fmt::Display>(
    run: Option<Run<'_>>,
    result: &Result<T, E>,
    printer: &Printer,
) {
    let Some(run) = run else { return };
    for problem in run.take_problems() {
        printer.warn(&format!("history: {problem}"));
    }
    if let Err(error) = run.finish(result) {
        printer.warn(&format!("history: {error}"));
    }
}

/// Records an interrupted run (Ctrl-C) and says what keeps running.
pub fn interrupted(run: Option<Run<'_>>, printer: &Printer) {
    printer.warn(
        "interrupted: a task already started on the node keeps running; run the command \
         again to continue from where it stopped",
    );
    if let Some(run) = run
        && let Err(error) = run.interrupt()
    {
        printer.warn(&format!("history: {error}"));
    }
}

/// Records `work` as one run of `command`: started before it, finished with its result,
/// or recorded as interrupted on Ctrl-C (`None`). `work` gets the run (`None` when the
/// history is unavailable) to record its phases in; `up` passes the same run to every
/// stage, so a stage never starts a run of its own.
pub async fn recorded<T, E: std::fmt::Display>(
    context: &crate::context::Context,
    command: &str,
    work: impl AsyncFnOnce(Option<&Run<'_>>) -> Result<T, E>,
) -> Option<Result<T, E>> {
    let printer = &context.printer;
    let run = context.start_run(command);
    let result = tokio::select! {
        result = work(run.as_ref()) => result,
        _ = tokio::signal::ctrl_c() => {
            interrupted(run, printer);
            return None;
        }
    };
    finish_run(run, &result, printer);
    Some(result)
}
