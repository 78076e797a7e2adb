//! `sombrero lab image build` and `sombrero lab doctor`: the real guests' base image, and
//! which guests a lab would run here.
//!
//! Why separate from `lab serve`: building takes minutes and needs root and Debian's
//! mirror, so it is an explicit step (CI runs it once per machine; the cache is reused);
//! doctor answers "why are my lab VMs state-only?" with the command that fixes each gap.

use std::time::Duration;

use anyhow::Context;
use pve_lab::guest::build::BuildError;
use pve_lab::guest::{GuestsRequest, ImageStore, choose_backend};
use serde_json::json;

use crate::exit::{BadInput, ExitStatus};
use crate::printer::Printer;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `sombrero lab image build [--force]`.
///
/// # Errors
/// Not root or a missing tool (exit 2, with the fix), a failing recipe step.
pub fn build(force: bool, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let store = ImageStore::default_location();
    let outcome = runtime()?.block_on(crate::lab_mode::build_image(&store, force, printer));
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error @ (BuildError::NotRoot | BuildError::MissingTool { .. })) => {
            return Err(BadInput {
                message: error.to_string(),
                hint: None,
            }
            .into());
        }
        Err(error) => return Err(anyhow::Error::new(error).context("the lab image build failed")),
    };
    let seconds = outcome.elapsed.as_secs_f64();
    if printer.json_mode() {
        printer.json(&json!({
            "image": outcome.image.dir,
            "built": outcome.built,
            "seconds": (seconds * 10.0).round() / 10.0,
        }))?;
    } else if outcome.built {
        printer.data(&format!(
            "image: {} (built in {seconds:.0} s)",
            outcome.image.dir.display()
        ));
    } else {
        printer.data(&format!(
            "image: {} (already built for this recipe; --force rebuilds)",
            outcome.image.dir.display()
        ));
    }
    Ok(ExitStatus::Success)
}

/// `sombrero lab doctor`.
///
/// # Errors
/// Only when the async runtime cannot start.
pub fn doctor(printer: &Printer) -> anyhow::Result<ExitStatus> {
    let store = ImageStore::default_location();
    let scratch = std::env::temp_dir().join(format!("sombrero-lab-doctor-{}", std::process::id()));
    let choice = runtime()?.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            choose_backend(GuestsRequest::Auto, &store, &scratch),
        )
        .await
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let choice = choice.context("the KVM probe did not finish within 60 s")?;
    let (pick, accelerator) = match &choice.qemu {
        Some((_, _, accelerator)) => ("qemu", Some(accelerator.name())),
        None => ("state", None),
    };
    if printer.json_mode() {
        printer.json(&json!({
            "auto": pick,
            "accelerator": accelerator,
            "image_cache": store.root(),
            "reasons": choice.reasons,
            "fixes": choice.fixes,
        }))?;
        return Ok(ExitStatus::Success);
    }
    let summary = match accelerator {
        Some(accelerator) => format!("auto picks: qemu guests ({accelerator})"),
        None => "auto picks: state-only guests".to_owned(),
    };
    printer.data(&summary);
    for reason in &choice.reasons {
        printer.data(&format!("  - {reason}"));
    }
    if !choice.fixes.is_empty() {
        printer.data("to get real guests:");
        for fix in &choice.fixes {
            printer.data(&format!("  {fix}"));
        }
    }
    Ok(ExitStatus::Success)
}
