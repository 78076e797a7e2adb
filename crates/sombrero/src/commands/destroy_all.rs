//! `sombrero destroy --all` and `--clean`: every environment's VM at once, and the
//! environment's logs with its outputs.
//!
//! Why one confirmation listing every VM: tearing down a lab or a whole project is one
//! decision, and the list is what the operator must see before making it. Each
//! environment is resolved exactly as `--env NAME` would resolve it (its own node and
//! vmid), locked as its own `destroy` would lock it, and recorded as its own run, so the
//! history of each environment shows its teardown. VMs without sombrero's marker are
//! left alone and named.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sombrero_core::deploy::{self, DeployError, Desired};
use sombrero_core::history::{Run, RunStart};
use sombrero_core::settings::Settings;

use crate::context::Context;
use crate::exit::ExitStatus;
use crate::progress::{Phases, Progress, drive};
use crate::prompt::confirm;
use crate::recording::finish_run;

/// One environment's VM to destroy.
struct Target {
    settings: Settings,
    desired: Desired,
    name: String,
    running: bool,
}

fn desired_of(settings: &Settings) -> Desired {
    let key = settings
        .ssh_public_key(|path| std::fs::read_to_string(path))
        .ok();
    Desired::from_settings(settings, key.as_ref(), false)
}

/// The VMs sombrero manages, one per environment of the configuration file.
async fn targets(context: &Context) -> anyhow::Result<Vec<Target>> {
    let client = context.client()?;
    let mut found = Vec::new();
    for environment in &context.settings.known_environments {
        let settings = if *environment == context.settings.environment.value {
            context.settings.clone()
        } else {
            context.settings_of(environment)?
        };
        let desired = desired_of(&settings);
        match deploy::destroy_target(client, &desired).await {
            Ok(Some((name, running))) => found.push(Target {
                settings,
                desired,
                name,
                running,
            }),
            Ok(None) => {}
            Err(error @ DeployError::ForeignVm { .. }) => context
                .printer
                .warn(&format!("environment {environment}: {error}; left alone")),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(found)
}

/// Runs `sombrero destroy --all`.
///
/// # Errors
/// A refused confirmation (exit 2), another run holding an environment's lock (exit 1),
/// API errors.
pub async fn run_all(yes: bool, clean: bool, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let targets = targets(context).await?;
    if targets.is_empty() {
        printer.data("No VM of any environment exists; nothing to destroy.");
        return Ok(ExitStatus::Success);
    }
    let mut list = String::new();
    for target in &targets {
        let power = if target.running { "running" } else { "stopped" };
        let _ = write!(
            list,
            "\n  {:<12} VM {} ({}, {power}) on {}",
            target.desired.environment, target.desired.vmid, target.name, target.desired.node
        );
    }
    printer.info(&format!("Every environment's VM:{list}"));
    if !yes && !confirm(&format!("Destroy these {} VM(s)?", targets.len()))? {
        printer.info("cancelled; nothing was changed");
        return Ok(ExitStatus::Failure);
    }
    let client = context.client()?;
    for target in &targets {
        // The context holds its own environment's lock already.
        let _lock = if target.settings.environment.value == context.settings.environment.value {
            None
        } else {
            context.lock_environment(&target.settings, "destroy")?
        };
        let mut start = RunStart::new(
            "destroy",
            &target.desired.environment,
            env!("CARGO_PKG_VERSION"),
        );
        start.vm_id = Some(i64::from(target.desired.vmid));
        start.working_directory = context.settings.config_file.parent().map(ToOwned::to_owned);
        let run = context.start_run_as(&start);
        let result = destroy_one(context, client, target, clean, run.as_ref()).await;
        finish_run(run, &result, printer);
        let removed = result?;
        printer.data(&format!(
            "Destroyed VM {} of environment {}; removed {removed} path(s).",
            target.desired.vmid, target.desired.environment
        ));
    }
    Ok(ExitStatus::Success)
}

async fn destroy_one(
    context: &Context,
    client: &pve::Client,
    target: &Target,
    clean: bool,
    run: Option<&Run<'_>>,
) -> anyhow::Result<usize> {
    let mut progress = Progress::new(&context.printer);
    let mut phases = Phases::new(run);
    let desired = &target.desired;
    let report = drive(&mut progress, &mut phases, |events| async move {
        deploy::converge::destroy_converged(client, desired, context.timeouts(), &*events).await
    })
    .await?;
    let mut removed = report.removed_files.len();
    if clean {
        removed += remove_logs(&target.settings)?.len();
    }
    Ok(removed)
}

/// Where the logs of stage 3 are: `logs/` beside the outputs directory.
fn logs_dir(settings: &Settings) -> PathBuf {
    settings
        .paths
        .outputs_dir
        .value
        .parent()
        .map_or_else(|| PathBuf::from("logs"), |dir| dir.join("logs"))
}

/// `--clean`: the environment's Ansible logs (`configure-<env>-*`); build logs belong to
/// a template, checklists and the history are kept.
///
/// # Errors
/// A log that exists but cannot be removed.
pub fn remove_logs(settings: &Settings) -> anyhow::Result<Vec<PathBuf>> {
    let dir = logs_dir(settings);
    let prefix = format!("configure-{}-", settings.environment.value);
    remove_matching(&dir, &prefix)
}

fn remove_matching(dir: &Path, prefix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(prefix) && entry.path().is_file() {
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|error| anyhow::anyhow!("cannot remove {}: {error}", path.display()))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::remove_matching;

    #[test]
    fn only_the_environments_logs_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "configure-staging-20261205-101010.log",
            "configure-staging-20261205-101010.events.jsonl",
            "configure-staging2-20261205-101010.log",
            "configure-production-20261205-101010.log",
            "build-1001-20261205-101010.log",
        ] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        let removed = remove_matching(dir.path(), "configure-staging-").expect("removed");
        let names: Vec<String> = removed
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "configure-staging-20261205-101010.events.jsonl",
                "configure-staging-20261205-101010.log"
            ]
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 3);
        // No logs directory at all: nothing to do, no error.
        assert!(
            remove_matching(&dir.path().join("absent"), "x")
                .expect("ok")
                .is_empty()
        );
    }
}
