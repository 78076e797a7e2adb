//! `sombrero deploy`: plan, confirm, apply, with live progress and a history record.
//!
//! Why the confirmation rules: a deploy that changes nothing needs no question; one that
//! writes asks on a terminal (like `terraform apply`), and without a terminal it refuses
//! unless `--yes` was given, so a script never hangs on a prompt nobody can answer. Every
//! deploy is recorded in the history (plan, clone, configure-vm, start, outputs phases),
//! failures included.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use sombrero_core::deploy::{self, Action, DeployReport, Timeouts};
use sombrero_core::history::{Run, RunStart, Store};
use sombrero_core::settings::Settings;

use super::plan::render;
use super::stage2::{Stage2, runtime};
use crate::cli::{DeployArgs, GlobalArgs};
use crate::exit::{BadInput, ExitStatus};
use crate::printer::Printer;
use crate::progress::{Phases, Progress, drive};

/// Opens the history store, warning (not failing) when it cannot be opened.
pub fn open_history(settings: &Settings, printer: &Printer) -> Option<Store> {
    let path = &settings.paths.history.value;
    match Store::open(path) {
        Ok(store) => Some(store),
        Err(error) => {
            printer.warn(&format!(
                "the run is not recorded: cannot open the history at {}: {error}",
                path.display()
            ));
            None
        }
    }
}

/// Starts recording `command` for the selected environment.
pub fn start_run<'store>(
    store: Option<&'store Store>,
    settings: &Settings,
    command: &str,
    printer: &Printer,
) -> Option<Run<'store>> {
    let mut start = RunStart::new(
        command,
        &settings.environment.value,
        env!("CARGO_PKG_VERSION"),
    );
    start.vm_id = Some(i64::from(settings.vm.vmid.value));
    start.working_directory = settings.config_file.parent().map(ToOwned::to_owned);
    match store?.start_run(&start) {
        Ok(run) => Some(run),
        Err(error) => {
            printer.warn(&format!("the run is not recorded: {error}"));
            None
        }
    }
}

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

/// Asks `question` on a terminal; without one, refuses with a hint naming `--yes`.
///
/// # Errors
/// [`BadInput`] when there is no terminal to ask on.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(BadInput {
            message: format!("{question} needs confirmation, and there is no terminal to ask on"),
            hint: Some("add --yes to confirm non-interactively".into()),
        }
        .into());
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn summary(report: &DeployReport) -> String {
    let outputs = &report.outputs;
    let verb = match report.plan.action {
        Action::NoChanges => "No changes.",
        Action::Create => "Created.",
        Action::Start => "Started.",
        Action::Update | Action::UpdateWithRestart => "Updated.",
    };
    format!(
        "{verb} VM {} ({}) of environment {} on {}\n  vm_ip:       {}\n  ssh:         {}@{}:{}\n  \
         known_hosts: {}\n  inventory:   {}",
        outputs.vm_id,
        outputs.vm_hostname,
        outputs.environment,
        outputs.node,
        outputs.vm_ip,
        outputs.ssh_user,
        outputs.ssh_host,
        outputs.ssh_port,
        outputs.known_hosts_file,
        outputs.inventory_file
    )
}

/// Runs `sombrero deploy`.
///
/// # Errors
/// Configuration problems and a refused confirmation (exit 2), stage-2 errors (exit 1).
pub fn run(
    args: &DeployArgs,
    global: &GlobalArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let stage = Stage2::prepare(global, args.template, args.linked, printer).await?;
        let store = open_history(&stage.settings, printer);
        let run = start_run(store.as_ref(), &stage.settings, "deploy", printer);
        let result = tokio::select! {
            result = deploy(&stage, args, run.as_ref(), printer) => result,
            _ = tokio::signal::ctrl_c() => {
                interrupted(run, printer);
                return Ok(ExitStatus::Interrupted);
            }
        };
        finish_run(run, &result, printer);
        let metrics = stage.client.metrics();
        printer.info(&format!(
            "api: {} requests, {} writes",
            metrics.total(),
            metrics.writes()
        ));
        let report = result?;
        if printer.json_mode() {
            printer.json(&report)?;
        } else {
            printer.data(&summary(&report));
        }
        Ok(ExitStatus::Success)
    })
}

async fn deploy(
    stage: &Stage2,
    args: &DeployArgs,
    run: Option<&Run<'_>>,
    printer: &Printer,
) -> anyhow::Result<DeployReport> {
    let plan = match run {
        Some(run) => {
            run.phase_async(
                "plan",
                deploy::plan(&stage.client, &stage.desired, &stage.request),
            )
            .await?
        }
        None => deploy::plan(&stage.client, &stage.desired, &stage.request).await?,
    };
    if let (Some(run), Some(template)) = (run, &plan.template) {
        run.set_template_id(i64::from(template.id));
    }
    if !printer.json_mode() {
        printer.info(render(&plan).trim_end());
    }
    if plan.writes() && !args.yes {
        let question = format!(
            "Deploy: {} VM {} of environment {}?",
            plan.action.describe(),
            plan.vmid,
            plan.environment
        );
        if !confirm(&question)? {
            anyhow::bail!("cancelled at the confirmation prompt; nothing was changed");
        }
    }
    let mut progress = Progress::new(printer);
    let mut phases = Phases::new(run);
    let report = drive(&mut progress, &mut phases, |events| async move {
        deploy::apply(
            &stage.client,
            &stage.desired,
            plan,
            Timeouts::default(),
            &*events,
        )
        .await
    })
    .await?;
    Ok(report)
}
