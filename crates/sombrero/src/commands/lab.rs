//! `sombrero lab serve | image build | doctor`: a Proxmox VE API endpoint on 127.0.0.1
//! for rehearsals, the base image of its real guests, and which guests it can run here.
//!
//! Why a command and not only a library: operators point sombrero (or Terraform, Packer,
//! curl) at a running lab exactly as at a cluster, with the printed URL, token and TLS
//! fingerprint. The command prints those once the lab accepts connections (with `--json`
//! exactly one JSON object on stdout, so scripts can read it), then serves until SIGINT or
//! SIGTERM and shuts down cleanly (exit 0). Printing the token and password is this
//! command's job; nothing else prints or logs them.

use std::time::Duration;

use anyhow::Context;
use pve_lab::{FaultSpec, Lab, LabError, LabOptions};
use serde::Serialize;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::{LabCommand, LabImageCommand, LabServeArgs};
use crate::exit::{BadInput, ExitStatus};
use crate::printer::Printer;

/// What `lab serve` prints when ready; `--json` serializes this struct.
#[derive(Debug, Serialize)]
struct Ready {
    url: String,
    token: String,
    password: String,
    fingerprint: Option<String>,
}

/// Runs a `sombrero lab ...` command.
///
/// # Errors
/// Bad flags (exit 2), or a lab that cannot start (port in use, unusable state dir).
pub fn run(command: &LabCommand, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match command {
        LabCommand::Serve(args) => serve(args, printer),
        LabCommand::Image(LabImageCommand::Build(args)) => {
            super::lab_image::build(args.force, printer)
        }
        LabCommand::Doctor => super::lab_image::doctor(printer),
    }
}

/// Where real guests keep disks, sockets and seeds: `<state>/guests`, else a directory
/// under the system's temp dir that is removed when the lab stops.
fn guest_work_dir(args: &LabServeArgs) -> (std::path::PathBuf, bool) {
    match &args.state {
        Some(state) => (state.join("guests"), false),
        None => (
            std::env::temp_dir().join(format!("sombrero-lab-{}", std::process::id())),
            true,
        ),
    }
}

fn options(args: &LabServeArgs) -> anyhow::Result<LabOptions> {
    // Checked before anything else runs (the guest probe boots QEMU): bad input first.
    if !args.listen.ip().is_loopback() {
        return Err(not_loopback(&LabError::NotLoopback(args.listen)));
    }
    let faults = match &args.faults {
        Some(text) => text.parse::<FaultSpec>().map_err(|error| BadInput {
            message: format!("invalid --faults: {error}"),
            hint: Some(
                "example: --faults http5xx=0.2,reset=0.05,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=42"
                    .into(),
            ),
        })?,
        None => FaultSpec::default(),
    };
    let mut options = LabOptions {
        listen: args.listen,
        tls: !args.plain_http,
        state_dir: args.state.clone(),
        faults,
        ..LabOptions::default()
    };
    options.node.with_template = args.with_template;
    if let Some(nodes) = &args.nodes {
        options
            .node
            .set_nodes(nodes.split(','))
            .map_err(|error| BadInput {
                message: format!("invalid --nodes '{nodes}': {error}"),
                hint: Some("example: --nodes lloyd,pve2,pve3".into()),
            })?;
    }
    if let Some(stranger) = options
        .faults
        .node_down
        .iter()
        .find(|name| !options.node.is_member(name))
    {
        return Err(BadInput {
            message: format!(
                "invalid --faults: node-down={stranger} names no node of the lab ({})",
                options.node.cluster_nodes().join(",")
            ),
            hint: Some("name a node given in --nodes".into()),
        }
        .into());
    }
    Ok(options)
}

fn not_loopback(error: &LabError) -> anyhow::Error {
    BadInput {
        message: error.to_string(),
        hint: Some("use --listen 127.0.0.1:PORT".into()),
    }
    .into()
}

fn serve(args: &LabServeArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let mut options = options(args)?;
    let (work_dir, temporary) = guest_work_dir(args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let mut signals = stop_signals()?;
        let (guests, _) = crate::lab_mode::choose_guests(args.guests, &work_dir, printer).await?;
        options.node.set_guests(guests);
        let lab = match Lab::start(options).await {
            Ok(lab) => lab,
            Err(error @ LabError::NotLoopback(_)) => return Err(not_loopback(&error)),
            Err(error) => return Err(anyhow::Error::new(error).context("the lab did not start")),
        };
        let ready = Ready {
            url: lab.url().to_owned(),
            token: lab.token(),
            password: lab.password().to_owned(),
            fingerprint: lab.fingerprint().map(ToOwned::to_owned),
        };
        if printer.json_mode() {
            printer.data(&serde_json::to_string(&ready)?);
        } else {
            printer.data(&format!("url:         {}", ready.url));
            printer.data(&format!("token:       {}", ready.token));
            printer.data(&format!("password:    {} (root@pam)", ready.password));
            let fingerprint = ready.fingerprint.as_deref().unwrap_or("none (plain HTTP)");
            printer.data(&format!("fingerprint: {fingerprint}"));
            // Not in the JSON contract; for rehearsing 403s of privilege-separated tokens.
            printer.data(&format!(
                "readonly:    {} (PVEAuditor)",
                lab.readonly_token()
            ));
        }
        let nodes = lab.node().cluster_nodes();
        if nodes.len() > 1 {
            printer.info(&format!(
                "cluster of {} nodes: {} (shared storage: shared)",
                nodes.len(),
                nodes.join(", ")
            ));
        }
        printer.info("lab ready; stop it with Ctrl-C or SIGTERM");
        wait_for_signal(&mut signals).await;
        printer.info("stopping the lab");
        let stopped = tokio::time::timeout(Duration::from_secs(10), lab.shutdown()).await;
        if stopped.is_err() {
            printer.warn("open connections did not finish within 10 s; stopped anyway");
        }
        Ok(ExitStatus::Success)
    });
    // Running PVE tasks are abandoned, not awaited: with a state dir they are recorded as
    // running and the next start fails them, as after a node crash.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if temporary {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    outcome
}

/// SIGINT (Ctrl-C) and SIGTERM listeners. They are installed before the lab says it is ready: a signal sent right
/// after the ready line stops the lab cleanly instead of killing it (and its guests).
fn stop_signals() -> anyhow::Result<(Signal, Signal)> {
    let interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok((interrupt, terminate))
}

/// Waits for SIGINT or SIGTERM.
async fn wait_for_signal(signals: &mut (Signal, Signal)) {
    tokio::select! {
        _ = signals.0.recv() => {}
        _ = signals.1.recv() => {}
    }
}
