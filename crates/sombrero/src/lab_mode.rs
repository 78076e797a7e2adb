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
//!
//! Its guests are state-only (instant, API behaviour only), except for `up --lab`, which
//! rehearses the whole runbook and so asks for real QEMU guests when this machine can run
//! them ([`LabGuests::RealWhenPossible`]): the guest image is built first when it is
//! missing and can be built here, and when real guests are impossible the lab runs
//! state-only and says why and what fixes it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::Context as _;
use pve_lab::guest::build::{
    BuildError as ImageBuildError, BuildEvent, BuildOutcome, build as build_guest_image,
};
use pve_lab::guest::{
    BackendChoice, Guests, GuestsRequest, ImageStore, QemuGuests, QemuOptions, choose_backend,
};
use pve_lab::{Lab, LabHandle, LabOptions};
use sombrero_core::settings::{LabLayer, Settings, values};

use crate::cli::GuestsMode;
use crate::exit::BadInput;
use crate::printer::Printer;

/// Scales the in-process lab's task durations (tests: `0.01`); unset means realistic.
const TIME_SCALE_ENV: &str = sombrero_core::settings::env_vars::SOMBRERO_LAB_TIME_SCALE;

/// The guests `up --lab` asks for (`auto`, `state`, `qemu`).
const GUESTS_ENV: &str = sombrero_core::settings::env_vars::SOMBRERO_LAB_GUESTS;

/// A public key used when none is configured in lab mode. Lab guests are state-only or
/// QEMU guests reached through a forward; this key has no private half anywhere, so it
/// grants nothing. Resolution warns when it is used.
const PLACEHOLDER_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ sombrero-lab-placeholder";

/// Which guests the in-process lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabGuests {
    /// State-only guests: every command but `up`.
    StateOnly,
    /// Real QEMU guests when the machine can run them (`up --lab`), else state-only.
    RealWhenPossible,
}

/// Why the lab's guests are state-only although real ones were asked for.
#[derive(Debug, Clone, Default)]
pub struct NoRealGuests {
    pub reasons: Vec<String>,
    pub fixes: Vec<String>,
}

/// The running lab and what it adds to resolution.
#[derive(Debug)]
pub struct Started {
    pub handle: LabHandle,
    pub layer: LabLayer,
    /// Real QEMU guests (else state-only).
    pub real: bool,
    /// Set when real guests were asked for and are impossible here.
    pub no_real_guests: Option<NoRealGuests>,
}

/// The lab's own SSH key pair for real guests (`<state>/ssh/id_ed25519`), made once with
/// ssh-keygen; its public half's path, or `None` (with the placeholder key then) when it
/// cannot be made. It logs in to lab guests only, which listen on 127.0.0.1.
fn lab_key_pair(state_dir: &Path) -> Option<PathBuf> {
    // Absolute: the outputs and the printed SSH command name it.
    let private = std::path::absolute(state_dir.join("ssh").join("id_ed25519")).ok()?;
    let public = private.with_extension("pub");
    if public.exists() && private.exists() {
        return Some(public);
    }
    std::fs::create_dir_all(private.parent()?).ok()?;
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sombrero-lab", "-f"])
        .arg(&private)
        .stdin(std::process::Stdio::null())
        .status()
        .ok()?;
    made.success().then_some(public)
}

/// Builds the real guests' image (or finds it in the cache), with progress lines.
///
/// # Errors
/// Not root, a missing tool, a failing recipe step.
pub async fn build_image(
    store: &ImageStore,
    force: bool,
    printer: &Printer,
) -> Result<BuildOutcome, ImageBuildError> {
    build_guest_image(store, force, |event| match event {
        BuildEvent::Step(step) => printer.info(&format!("==> {step}")),
        BuildEvent::Detail(detail) => printer.info(&format!("    {detail}")),
        _ => {}
    })
    .await
}

/// Decides and sets up the guests for `mode`, saying why; `Err(..)` inside the `Ok` when
/// `Auto` fell back to state-only guests (the reasons and the fixes).
///
/// # Errors
/// `--guests qemu` impossible here (exit 2, with the fix); guests that cannot be set up.
pub async fn choose_guests(
    mode: GuestsMode,
    work_dir: &Path,
    printer: &Printer,
) -> anyhow::Result<(Guests, Option<NoRealGuests>)> {
    let request = match mode {
        GuestsMode::Auto => GuestsRequest::Auto,
        GuestsMode::State => return Ok((Guests::State, None)),
        GuestsMode::Qemu => GuestsRequest::Qemu,
    };
    let BackendChoice {
        qemu,
        reasons,
        fixes,
    } = choose_backend(
        request,
        &ImageStore::default_location(),
        &work_dir.join("probe"),
    )
    .await;
    let Some((binary, image, accelerator)) = qemu else {
        if mode == GuestsMode::Qemu {
            return Err(BadInput {
                message: format!("--guests qemu is not possible here: {}", reasons.join("; ")),
                hint: Some(format!("fix with: {}", fixes.join(" && "))),
            }
            .into());
        }
        printer.info(&format!(
            "guests: state-only ({}); `sombrero lab doctor` says how to get real guests",
            reasons.join("; ")
        ));
        return Ok((Guests::State, Some(NoRealGuests { reasons, fixes })));
    };
    printer.info(&format!(
        "guests: qemu ({}), image {}",
        accelerator.name(),
        image.dir.display()
    ));
    let guests = QemuGuests::new(QemuOptions {
        image,
        work_dir: work_dir.to_path_buf(),
        accelerator,
        qemu: binary,
    })
    .context("cannot set up real guests")?;
    Ok((Guests::Qemu(std::sync::Arc::new(guests)), None))
}

/// Real guests for `up --lab`: the image built first when missing and buildable here.
async fn real_guests_when_possible(
    state_dir: &Path,
    printer: &Printer,
) -> anyhow::Result<(Guests, Option<NoRealGuests>)> {
    let store = ImageStore::default_location();
    let mut unbuildable = None;
    if store.find().is_none() {
        printer.info("the lab's guest image is not built yet: building it (once, a few minutes)");
        match build_image(&store, false, printer).await {
            Ok(outcome) => printer.info(&format!(
                "guest image ready in {:.0} s: {}",
                outcome.elapsed.as_secs_f64(),
                outcome.image.dir.display()
            )),
            Err(error) => {
                printer.info(&format!("the guest image cannot be built here: {error}"));
                unbuildable = Some(error);
            }
        }
    }
    let (guests, fallback) =
        choose_guests(GuestsMode::Auto, &state_dir.join("guests"), printer).await?;
    let fallback = fallback.map(|mut why| {
        if let Some(error) = unbuildable {
            why.reasons
                .insert(0, format!("the guest image cannot be built here: {error}"));
        }
        why
    });
    Ok((guests, fallback))
}

/// Where the lab keeps its state: `lab/` next to the history file; with a `PostgreSQL`
/// history (no file), `lab/` next to the outputs directory (`deployments/lab`).
pub fn state_dir(located: &Settings) -> PathBuf {
    located.paths.history.value.parent().map_or_else(
        || {
            let outputs = &located.paths.outputs_dir.value;
            outputs
                .parent()
                .map_or_else(|| PathBuf::from("lab"), |dir| dir.join("lab"))
        },
        |dir| dir.join("lab"),
    )
}

/// Starts the lab for the node and state directory `located` names (settings resolved
/// without the lab, used only to find where the lab lives). Call inside the runtime.
///
/// # Errors
/// The lab cannot start (no free port, TLS setup), or answers with values resolution
/// cannot use (a bug).
pub async fn start(
    located: &Settings,
    env: &HashMap<String, String>,
    guests: LabGuests,
    printer: &Printer,
) -> anyhow::Result<Started> {
    let state = state_dir(located);
    let asked = env
        .get(GUESTS_ENV)
        .map(|text| text.trim().to_ascii_lowercase())
        .filter(|text| !text.is_empty());
    let (guests, no_real_guests) = match (guests, asked.as_deref()) {
        (LabGuests::StateOnly, _) => (Guests::State, None),
        (LabGuests::RealWhenPossible, None | Some("auto")) => {
            real_guests_when_possible(&state, printer).await?
        }
        (LabGuests::RealWhenPossible, Some("state")) => {
            let why = NoRealGuests {
                reasons: vec![format!("{GUESTS_ENV}=state asks for state-only guests")],
                fixes: vec![format!("unset {GUESTS_ENV}")],
            };
            (Guests::State, Some(why))
        }
        (LabGuests::RealWhenPossible, Some("qemu")) => {
            choose_guests(GuestsMode::Qemu, &state.join("guests"), printer).await?
        }
        (LabGuests::RealWhenPossible, Some(other)) => {
            return Err(BadInput {
                message: format!("{GUESTS_ENV}={other} is not a kind of lab guests"),
                hint: Some("use auto, state or qemu".to_owned()),
            }
            .into());
        }
    };
    let real = guests.qemu().is_some();
    let mut options = LabOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls: true,
        state_dir: Some(state.clone()),
        ..LabOptions::default()
    };
    // State-only guests get the seeded stand-in template; real ones get no template, so
    // `up --lab` builds the golden template as stage 1 does on a cluster.
    options.node.with_template = !real;
    options.node.set_guests(guests);
    // The project's lab reopens as it was saved, with every node it had (`lab serve
    // --nodes` on the same state directory, as the journey test does).
    options.node.join_saved_nodes = true;
    if let Some(node) = located.vm.node.value.preferred() {
        node.clone_into(&mut options.node.name);
    }
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
        ssh_key_file: if real { lab_key_pair(&state) } else { None },
    };
    Ok(Started {
        handle,
        layer,
        real,
        no_real_guests,
    })
}
