//! `--lab`: run any command against an in-process lab instead of the configured cluster.
//!
//! Why: `sombrero deploy --lab --yes` must work on a fresh machine with no cluster and no
//! credentials, exactly as it would against a cluster. The lab (HTTPS on 127.0.0.1, port
//! chosen by the kernel, template 1001 seeded, realistic task durations) is started inside
//! the command's runtime, and the resolved API settings are pointed at it (URL, the lab's
//! token, its certificate's fingerprint pinned), so every other line of the command runs
//! unchanged. The lab keeps its state in `deployments/lab/` (next to the history), so
//! `deploy --lab`, `status --lab` and `destroy --lab` see the same VMs; delete that
//! directory to start from a fresh node.

use std::net::SocketAddr;
use std::str::FromStr as _;

use anyhow::Context as _;
use pve_lab::{Lab, LabHandle, LabOptions};
use sombrero_core::settings::{Resolved, Settings, Source, SshKeySetting, SshPublicKey, values};

use crate::printer::Printer;

/// Scales the in-process lab's task durations (tests: `0.01`); unset means realistic.
pub const TIME_SCALE_ENV: &str = "SOMBRERO_LAB_TIME_SCALE";

/// A public key used when none is configured in lab mode. Lab guests are state-only or
/// QEMU guests reached through a forward; this key has no private half anywhere, so it
/// grants nothing. A warning says so.
const PLACEHOLDER_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ sombrero-lab-placeholder";

/// Starts the lab and points `settings` at it. Keep the handle alive while the command
/// runs.
///
/// # Errors
/// The lab cannot start (no free port, TLS setup).
pub async fn start(settings: &mut Settings, printer: &Printer) -> anyhow::Result<LabHandle> {
    let env = crate::context::process_env();
    let state_dir = settings
        .paths
        .history
        .value
        .parent()
        .map_or_else(|| std::path::PathBuf::from("lab"), |dir| dir.join("lab"));
    let mut options = LabOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: true,
        state_dir: Some(state_dir),
        ..LabOptions::default()
    };
    options.node.with_template = true;
    options.node.name.clone_from(&settings.vm.node.value);
    if let Some(scale) = env
        .get(TIME_SCALE_ENV)
        .and_then(|text| text.parse::<f64>().ok())
    {
        options.node.time_scale = scale;
    }
    let lab = Lab::start(options)
        .await
        .context("the in-process lab did not start")?;
    let source = || Source::Flag("--lab");
    let url = values::parse_api_url(lab.url()).map_err(anyhow::Error::msg)?;
    settings.api.url = Some(Resolved::new(url, source()));
    let token = pve::ApiToken::from_str(&lab.token()).context("the lab's token")?;
    settings.api.token = Some(Resolved::new(token, source()));
    settings.api.username = None;
    settings.api.password = None;
    settings.api.ca_file = None;
    settings.api.insecure = Resolved::new(false, source());
    settings.api.fingerprint = match lab.fingerprint() {
        Some(text) => Some(Resolved::new(
            values::parse_fingerprint(text).map_err(anyhow::Error::msg)?,
            source(),
        )),
        None => None,
    };
    if settings.vm.ssh_public_key.is_none() {
        let key: SshPublicKey =
            values::parse_ssh_public_key(PLACEHOLDER_KEY).map_err(anyhow::Error::msg)?;
        settings.vm.ssh_public_key = Some(Resolved::new(SshKeySetting::Inline(key), source()));
        printer.warn(
            "no SSH public key is configured (TF_VAR_ci_ssh_key); the lab VM gets a placeholder key",
        );
    }
    printer.info(&format!(
        "lab: in-process Proxmox VE API at {} (node {}, template 1001)",
        lab.url(),
        settings.vm.node.value
    ));
    Ok(lab)
}
