//! `sombrero deploy`: plan, confirm, apply, with live progress and a history record.
//!
//! Why the confirmation rules: a deploy that changes nothing needs no question; one that
//! writes asks on a terminal (like `terraform apply`), and without a terminal it refuses
//! unless `--yes` was given, so a script never hangs on a prompt nobody can answer. Every
//! deploy is recorded in the history (plan, clone, configure-vm, start, outputs phases),
//! failures included.

use sombrero_core::deploy::{self, Action, DeployReport};
use sombrero_core::history::Run;

use super::stage2::{KeyUse, Stage2, render_plan};
use crate::cli::DeployArgs;
use crate::context::Context;
use crate::exit::ExitStatus;
use crate::progress::{Phases, Progress, drive};
use crate::prompt::confirm;
use crate::recording::recorded;
use sombrero_core::deploy::placement::Purpose;

pub fn summary(report: &DeployReport) -> String {
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
pub async fn run(args: &DeployArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepared(context, args.linked, KeyUse::Required, Purpose::Create).await?;
    let client = context.client()?;
    let work = async |run: Option<&Run<'_>>| deploy(context, &stage, args, run).await;
    let Some(result) = recorded(context, "deploy", work).await else {
        return Ok(ExitStatus::Interrupted);
    };
    let metrics = client.metrics();
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
}

/// Stage 2 inside a recorded run (`plan`, `clone`, `configure-vm`, `start`, `outputs`
/// phases): the desired VM from the context's settings as they are now (after a build,
/// its hand-off names the template), the plan, the confirmation, the apply.
///
/// # Errors
/// As [`run`].
pub async fn stage(
    context: &Context,
    args: &DeployArgs,
    run: Option<&Run<'_>>,
) -> anyhow::Result<DeployReport> {
    let stage = Stage2::prepared(context, args.linked, KeyUse::Required, Purpose::Create).await?;
    deploy(context, &stage, args, run).await
}

async fn deploy(
    context: &Context,
    stage: &Stage2,
    args: &DeployArgs,
    run: Option<&Run<'_>>,
) -> anyhow::Result<DeployReport> {
    let printer = &context.printer;
    let client = context.client()?;
    let plan = match run {
        Some(run) => run.phase_async("plan", stage.plan(client)).await?,
        None => stage.plan(client).await?,
    };
    let plan = stage.explain(plan);
    if let (Some(run), Some(template)) = (run, &plan.template) {
        run.set_template_id(i64::from(template.id));
    }
    if !printer.json_mode() {
        printer.info(render_plan(&plan).trim_end());
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
        deploy::converge::deploy(
            client,
            &stage.desired,
            &stage.request,
            plan,
            context.timeouts(),
            &*events,
        )
        .await
    })
    .await?;
    Ok(report)
}
