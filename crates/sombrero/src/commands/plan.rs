//! `sombrero plan`: the read-only diff between the environment's desired VM and the
//! cluster, in the spirit of `terraform plan`.
//!
//! `plan` sends reads only; its text view (shared with `deploy`, which prints the same plan
//! before it asks to go ahead) and `--json` come from the same `Plan` value. The shared
//! stage-2 setup and the plan's text view are in `stage2.rs`.

use super::stage2::{KeyUse, Stage2, render_plan};
use crate::context::Context;
use crate::exit::ExitStatus;
use sombrero_core::deploy::placement::Purpose;

/// Runs `sombrero plan`.
///
/// # Errors
/// Configuration problems (exit 2), stage-2 errors (exit 1).
pub async fn run(context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepared(context, false, KeyUse::Required, Purpose::Create).await?;
    let plan = stage.explain(stage.plan(context.client()?).await?);
    if printer.json_mode() {
        printer.json(&plan)?;
    } else {
        printer.data(render_plan(&plan).trim_end());
    }
    Ok(ExitStatus::Success)
}
