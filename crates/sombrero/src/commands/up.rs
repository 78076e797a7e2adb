//! `sombrero up` and `sombrero rollback`: the runbook's `deploy-full`, in order, as one
//! recorded run.
//!
//! Why one run with a phase per stage: the checklist's Packer/Terraform/Ansible/
//! Verification lines and the metrics' per-phase timings come from it, exactly as the
//! runbook's tracked deployment wanted (the original's stages raced each other; these
//! run one after the other, each reading the previous stage's outputs). Every stage is
//! idempotent, so a re-run after a failure continues from what is done: an existing
//! template is not rebuilt, a matching VM is not re-cloned, configure converges, verify
//! runs again. Stages a state-only lab cannot run are skipped and said so, with the fix.

use std::fmt::Write as _;
use std::time::Instant;

use serde::Serialize;
use sombrero_core::deploy::{self, DeployError, Layout, outputs};
use sombrero_core::doctor::Level;
use sombrero_core::history::Run;
use sombrero_core::settings::NodeChoice;

use super::pipeline_view::{StageLine, StageStatus, render_summary, ssh_command};
use super::{build, configure, deploy as deploy_cmd, doctor, verify};
use crate::cli::{BuildArgs, DeployArgs, UpArgs, VerifyArgs};
use crate::context::Context;
use crate::exit::{BadInput, ExitStatus};
use crate::recording::recorded;

/// What the pipeline does about stage 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// Build only when the template is missing (`up`).
    WhenMissing,
    /// Build a new version even when the template is current (`up --rebuild`).
    Rebuild,
    /// Never: the template is given (`rollback --template`).
    Never,
}

/// How a pipeline runs.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline {
    pub build: BuildMode,
    /// Deploy without asking (`--yes`, or a rollback already confirmed).
    pub yes: bool,
    /// Destroy the environment's VM first (`rollback`).
    pub recreate: bool,
}

/// What `up --json` prints.
#[derive(Debug, Serialize)]
pub struct UpReport {
    pub environment: String,
    pub stages: Vec<StageLine>,
    pub total_seconds: f64,
    pub vm_id: Option<String>,
    pub vm_ip: Option<String>,
    pub node: Option<String>,
    pub ssh_command: Option<String>,
    pub outputs_dir: String,
    /// Why a state-only lab's guests could not be real, and the command that fixes it.
    pub state_only: Option<StateOnlyLab>,
}

/// Why `up --lab` ran with state-only guests, and what fixes it.
#[derive(Debug, Serialize)]
pub struct StateOnlyLab {
    pub reasons: Vec<String>,
    pub fix: String,
}

/// The stages so far, for the summary (and for the partial table of a failed run).
struct Progress {
    stages: Vec<StageLine>,
    started: Instant,
    /// The cluster is a lab with state-only guests.
    state_only: bool,
}

impl Progress {
    fn skip(&mut self, name: &str, detail: String) {
        self.stages.push(StageLine {
            name: name.to_owned(),
            status: StageStatus::Skipped,
            seconds: 0.0,
            detail,
        });
    }

    /// Runs one stage as the phase `name` (none when `phase` is false: the stage records
    /// its own), timing it and noting its outcome.
    async fn stage<T>(
        &mut self,
        run: Option<&Run<'_>>,
        (name, phase): (&str, bool),
        work: impl Future<Output = anyhow::Result<T>>,
        detail: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<T> {
        let began = Instant::now();
        let result = match run.filter(|_| phase) {
            Some(run) => run.phase_async(name, work).await,
            None => work.await,
        };
        let seconds = began.elapsed().as_secs_f64();
        let (status, detail) = match &result {
            Ok(value) => (StageStatus::Done, detail(value)),
            Err(error) => (StageStatus::Failed, format!("{error:#}")),
        };
        self.stages.push(StageLine {
            name: name.to_owned(),
            status,
            seconds,
            detail,
        });
        result
    }
}

/// The checks of `doctor`, as the first stage: a failing one stops the run. With
/// state-only lab guests nothing logs in, so the SSH key pair only warns.
async fn preflight(context: &Context, state_only: bool) -> anyhow::Result<String> {
    let mut lines = doctor::checks(context).await?;
    if state_only {
        for line in &mut lines {
            if line.name == "ssh key" && line.level == Level::Fail {
                line.level = Level::Warn;
                line.detail = format!("{} (not needed by state-only guests)", line.detail);
            }
        }
    }
    let failed: Vec<_> = lines
        .iter()
        .filter(|line| line.level == Level::Fail)
        .collect();
    for line in lines.iter().filter(|line| line.level == Level::Warn) {
        context
            .printer
            .info(&format!("  ! {}: {}", line.name, line.detail));
    }
    if !failed.is_empty() {
        let mut message = format!("{} preflight check(s) failed:", failed.len());
        for line in &failed {
            let _ = write!(message, "\n  ✗ {}: {}", line.name, line.detail);
            if let Some(hint) = &line.hint {
                let _ = write!(message, " (hint: {hint})");
            }
        }
        return Err(BadInput {
            message,
            hint: Some(
                "`sombrero doctor` shows every check; fix the failed ones and run again".into(),
            ),
        }
        .into());
    }
    let warned = lines
        .iter()
        .filter(|line| line.level == Level::Warn)
        .count();
    Ok(format!("{} checks, {warned} warning(s)", lines.len()))
}

/// Why the build stage is skipped (`Some`), or `None` when it must build.
async fn template_present(context: &Context) -> anyhow::Result<Option<String>> {
    let request = deploy::template::request(&context.settings)?;
    let client = context.client()?;
    let found = match &context.settings.vm.node.value {
        NodeChoice::Named(node) => deploy::template::resolve(client, node, &request).await,
        _ => deploy::template::resolve_anywhere(client, &request).await,
    };
    match found {
        Ok(choice) => Ok(Some(format!(
            "template {}{} is on {} (chosen by {}); `--rebuild` builds a new version",
            choice.id,
            choice
                .name
                .map(|name| format!(" ({name})"))
                .unwrap_or_default(),
            choice.node.as_deref().unwrap_or("its node"),
            choice.chosen_by
        ))),
        Err(DeployError::TemplateMissing { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The stages in order. `Err` stops at the failed stage (the run records it there).
async fn stages(
    context: &Context,
    pipeline: Pipeline,
    run: Option<&Run<'_>>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let printer = &context.printer;
    let state_only = sombrero_core::build::state_only_lab(context.client()?).await;
    progress.state_only = state_only;
    printer.info("→ preflight: the checks of `sombrero doctor`");
    progress
        .stage(
            run,
            ("preflight", true),
            Box::pin(preflight(context, state_only)),
            Clone::clone,
        )
        .await?;

    let template_id = context.settings.vm.template_id.as_ref().map(|id| id.value);
    let skip_build = match pipeline.build {
        BuildMode::Never => Some(format!(
            "rollback to template {}",
            template_id.unwrap_or_default()
        )),
        BuildMode::Rebuild => None,
        BuildMode::WhenMissing => template_present(context).await?,
    };
    if let Some(reason) = skip_build {
        printer.info(&format!("→ build: skipped, {reason}"));
        progress.skip("build", reason);
    } else {
        printer.info("→ build: stage 1, the golden template");
        let args = BuildArgs {
            replace: pipeline.build == BuildMode::Rebuild,
            template_id,
        };
        let built = progress
            .stage(
                run,
                ("build", true),
                Box::pin(build::stage(context, &args, run)),
                |report| {
                    build::render(report)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned()
                },
            )
            .await?;
        printer.info(build::render(&built).trim_end());
    }

    if pipeline.recreate {
        printer.info("→ destroy: the environment's VM, before the clone of the older template");
        progress
            .stage(
                run,
                ("destroy", false),
                Box::pin(super::destroy::converge(context, run)),
                |report| format!("VM {} deleted: {}", report.vmid, report.deleted),
            )
            .await?;
    }

    printer.info("→ deploy: stage 2, the environment's VM");
    let args = DeployArgs {
        template: None,
        yes: pipeline.yes,
        linked: false,
    };
    let deployed = progress
        .stage(
            run,
            ("deploy", true),
            Box::pin(deploy_cmd::stage(context, &args, run)),
            |report| {
                format!(
                    "{} VM {} from template {}",
                    report.plan.action.describe(),
                    report.outputs.vm_id,
                    report.outputs.template_id.as_deref().unwrap_or("?")
                )
            },
        )
        .await?;
    printer.info(&deploy_cmd::summary(&deployed));

    if state_only {
        let reason = "the lab's guests are state-only: there is no machine to configure or check";
        printer.info(&format!("→ configure, verify: skipped, {reason}"));
        progress.skip("configure", reason.to_owned());
        progress.skip("verify", reason.to_owned());
        return Ok(());
    }

    printer.info("→ configure: stage 3, Ansible on the VM");
    let configured = progress
        .stage(
            run,
            ("configure", true),
            Box::pin(configure::stage(context, run)),
            |report| {
                let recap = &report.results.recap;
                format!(
                    "ok={} changed={} failed={}",
                    recap.ok, recap.changed, recap.failed
                )
            },
        )
        .await?;
    printer.info(&super::configure_view::recap(&configured));

    printer.info("→ verify: the smoke tests");
    let verified = progress
        .stage(
            run,
            ("verify", false),
            Box::pin(verify::stage(context, &VerifyArgs::default(), run)),
            |verified| {
                format!(
                    "{} checks: {} passed, {} skipped",
                    verified.report.checks.len(),
                    verified.report.passed,
                    verified.report.skipped
                )
            },
        )
        .await;
    match verified {
        Ok(verified) => {
            printer.info(&verified.render());
            Ok(())
        }
        Err(error) => {
            if let Some(failed) = error.downcast_ref::<verify::ChecksFailed>() {
                printer.info(&failed.verified.render());
            }
            Err(error)
        }
    }
}

/// Runs a pipeline as one recorded run of `command` and prints its summary.
///
/// # Errors
/// The failed stage's error (its exit code and hint); a refused confirmation.
pub async fn run_pipeline(
    context: &Context,
    command: &str,
    pipeline: Pipeline,
) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let mut progress = Progress {
        stages: Vec::new(),
        started: Instant::now(),
        state_only: false,
    };
    let work = async |run: Option<&Run<'_>>| {
        if let Some(run) = run {
            printer.info(&format!("run {} ({command})", run.id()));
        }
        stages(context, pipeline, run, &mut progress).await
    };
    let Some(result) = recorded(context, command, work).await else {
        return Ok(ExitStatus::Interrupted);
    };
    let report = report(context, &progress);
    if let Err(error) = result {
        printer.info(&render_summary(&report, false));
        printer.warn(&format!(
            "{command} stopped at {}; fix it and run `sombrero {command}` again: what is done \
             is not redone",
            progress
                .stages
                .last()
                .map_or("preflight", |stage| stage.name.as_str())
        ));
        return Err(error);
    }
    if printer.json_mode() {
        printer.json(&report)?;
    } else {
        printer.data(&render_summary(&report, true));
    }
    Ok(ExitStatus::Success)
}

fn report(context: &Context, progress: &Progress) -> UpReport {
    let settings = &context.settings;
    let layout = Layout::new(
        &settings.paths.outputs_dir.value,
        &settings.environment.value,
    );
    let outputs = outputs::read(&layout);
    let state_only = match context.no_real_guests() {
        Some(why) => Some(StateOnlyLab {
            reasons: why.reasons.clone(),
            fix: why.fixes.join(" && "),
        }),
        // `rollback --lab`: the in-process lab with its usual state-only guests.
        None if progress.state_only && context.lab().is_some() => Some(StateOnlyLab {
            reasons: vec!["--lab runs state-only guests except for `up --lab`".to_owned()],
            fix: "sombrero up --lab (real guests when this machine can run them)".to_owned(),
        }),
        None if progress.state_only => Some(StateOnlyLab {
            reasons: vec!["the lab this API belongs to runs state-only guests".to_owned()],
            fix: "restart it with `sombrero lab serve --guests qemu` (`sombrero lab doctor` \
                  says whether this machine can), or rehearse with `sombrero up --lab`"
                .to_owned(),
        }),
        None => None,
    };
    UpReport {
        environment: settings.environment.value.clone(),
        stages: progress.stages.clone(),
        total_seconds: progress.started.elapsed().as_secs_f64(),
        vm_id: outputs.as_ref().map(|o| o.vm_id.clone()),
        vm_ip: outputs.as_ref().map(|o| o.vm_ip.clone()),
        node: outputs.as_ref().map(|o| o.node.clone()),
        ssh_command: outputs
            .as_ref()
            .filter(|_| !progress.state_only)
            .map(ssh_command),
        outputs_dir: layout.environment_dir().display().to_string(),
        state_only,
    }
}

/// Runs `sombrero up`.
///
/// # Errors
/// As [`run_pipeline`]; `--keep` without `--lab` (exit 2).
pub async fn run(args: &UpArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    if args.keep && context.lab().is_none() {
        return Err(BadInput {
            message: "--keep keeps the in-process lab running, and there is none without --lab"
                .to_owned(),
            hint: Some("sombrero up --lab --keep".to_owned()),
        }
        .into());
    }
    let pipeline = Pipeline {
        build: if args.rebuild {
            BuildMode::Rebuild
        } else {
            BuildMode::WhenMissing
        },
        yes: args.yes,
        recreate: false,
    };
    let status = Box::pin(run_pipeline(context, "up", pipeline)).await?;
    if args.keep
        && status == ExitStatus::Success
        && let Some(lab) = context.lab()
    {
        context.printer.info(&format!(
            "the lab keeps running at {} with the VM: SSH in with the command above; Ctrl-C \
             stops both",
            lab.url()
        ));
        let _ = tokio::signal::ctrl_c().await;
        context.printer.info("stopping the lab and its VM");
    }
    Ok(status)
}
