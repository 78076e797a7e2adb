//! `--lab`: run any command against an in-process lab instead of the configured cluster.
//!
//! Why: `sombrero deploy --lab --yes` must work on a fresh machine with no cluster and no
//! credentials, exactly as it would against a cluster. The dispatcher starts the lab
//! (HTTPS on 127.0.0.1, port chosen by the kernel, template 1001 seeded, realistic task
//! durations) before the command's settings are resolved, and hands its URL, token and
//! certificate fingerprint to resolution as the highest layer ([`LabLayer`], source
//! `--lab`), so every line of the command runs unchanged and `config show --lab` says
//! where each value came from. The lab keeps its state in `deployments/lab/` (next to the
//! history), so `deploy --lab`, `status --lab` and `destroy --lab` see the same VMs;
//! delete that directory to start from a fresh node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr as _;

use anyhow::Context as _;
use pve_lab::{Lab, LabHandle, LabOptions};
use sombrero_core::settings::{LabLayer, Settings, values};

/// Scales the in-process lab's task durations (tests: `0.01`); unset means realistic.
const TIME_SCALE_ENV: &str = sombrero_core::settings::env_vars::SOMBRERO_LAB_TIME_SCALE;

/// A public key used when none is configured in lab mode. Lab guests are state-only or
/// QEMU guests reached through a forward; this key has no private half anywhere, so it
/// grants nothing. Resolution warns when it is used.
const PLACEHOLDER_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ sombrero-lab-placeholder";

/// The running lab and what it adds to resolution.
#[derive(Debug)]
pub struct Started {
    pub handle: LabHandle,
    pub layer: LabLayer,
}

/// Where the lab keeps its state: `lab/` next to the history database.
pub fn state_dir(located: &Settings) -> PathBuf {
    located
        .paths
        .history
        .value
        .parent()
        .map_or_else(|| PathBuf::from("lab"), |dir| dir.join("lab"))
}

/// Starts the lab for the node and state directory `located` names (settings resolved
/// without the lab, used only to find where the lab lives). Call inside the runtime.
///
/// # Errors
/// The lab cannot start (no free port, TLS setup), or answers with values resolution
/// cannot use (a bug).
pub async fn start(located: &Settings, env: &HashMap<String, String>) -> anyhow::Result<Started> {
    let state_dir = state_dir(located);
    let mut options = LabOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: true,
        state_dir: Some(state_dir),
        ..LabOptions::default()
    };
    options.node.with_template = true;
    options.node.name.clone_from(&located.vm.node.value);
    if let Some(scale) = env
        .get(TIME_SCALE_ENV)
        .and_then(|text| text.parse::<f64>().ok())
    {
        options.node.time_scale = scale;
    }
    let handle = Lab::start(options)
        .await
        .context("the in-process lab did not start")?;
    let layer = LabLayer {
        url: values::parse_api_url(handle.url()).map_err(anyhow::Error::msg)?,
        token: pve::ApiToken::from_str(&handle.token()).context("the lab's token")?,
        fingerprint: handle
            .fingerprint()
            .map(values::parse_fingerprint)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        placeholder_ssh_key: values::parse_ssh_public_key(PLACEHOLDER_KEY)
            .map_err(anyhow::Error::msg)?,
    };
    Ok(Started { handle, layer })
}
