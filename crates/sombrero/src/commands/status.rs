//! `sombrero status`: the environment's VM as it is now (power, address, uptime,
//! template) and its drift from the configuration. Reads only.
//!
//! Why drift here too: "is production still what sombrero.toml says?" is the question
//! operators ask before a change; `status` answers it with the same field comparison
//! `plan` uses, without the preflight checks a deploy needs.

use std::fmt::Write as _;

use sombrero_core::deploy::{self, Status};

use super::stage2::{KeyUse, Stage2};
use crate::context::Context;
use crate::exit::ExitStatus;
use sombrero_core::deploy::placement::Purpose;

fn uptime(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, minutes) = (rest / 3600, rest % 3600 / 60);
    if days > 0 {
        format!("{days}d {hours}h {minutes}m")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m {}s", seconds % 60)
    }
}

fn render(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "environment: {}\nvm:          {} on node {}",
        status.environment, status.vmid, status.node
    );
    if !status.exists {
        let _ = writeln!(out, "state:       not deployed (run `sombrero deploy`)");
        return out;
    }
    if let Some(problem) = &status.problem {
        let _ = writeln!(out, "state:       not managed by sombrero: {problem}");
        return out;
    }
    let name = status.name.as_deref().unwrap_or("");
    let power = status.power.as_deref().unwrap_or("unknown");
    let _ = writeln!(out, "name:        {name}\npower:       {power}");
    if let Some(seconds) = status.uptime_seconds {
        let _ = writeln!(out, "uptime:      {}", uptime(seconds));
    }
    if let Some(address) = &status.address {
        let from = status.address_source.as_deref().unwrap_or("");
        let _ = writeln!(out, "address:     {address} (from {from})");
    }
    if let Some(agent) = &status.agent {
        let _ = writeln!(out, "agent:       {agent}");
    }
    let template = status
        .template
        .map_or_else(|| "unknown (adopted)".to_owned(), |id| id.to_string());
    let _ = writeln!(out, "template:    {template}");
    if let Some(lock) = &status.lock {
        let _ = writeln!(out, "lock:        {lock}");
    }
    if status.drift.is_empty() {
        let _ = writeln!(out, "drift:       none");
    } else {
        let _ = writeln!(out, "drift:       {} field(s)", status.drift.len());
        for change in &status.drift {
            let from = change
                .from
                .as_deref()
                .unwrap_or("(unset)")
                .replace('\n', "\\n");
            let restart = if change.restart { " (restart)" } else { "" };
            let _ = writeln!(
                out,
                "  ~ {}: {from} -> {}{restart}",
                change.field,
                change.to.replace('\n', "\\n")
            );
        }
    }
    out
}

/// Runs `sombrero status`.
///
/// # Errors
/// Configuration problems (exit 2), API errors (exit 1).
pub async fn run(context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let stage = Stage2::prepared(context, false, KeyUse::Required, Purpose::Find).await?;
    let status = deploy::status(context.client()?, &stage.desired).await?;
    if printer.json_mode() {
        printer.json(&status)?;
    } else {
        printer.data(render(&status).trim_end());
    }
    Ok(ExitStatus::Success)
}
