//! `sombrero build`: stage 1, the golden template, and `sombrero templates`.
//!
//! Why the checks come first: a state-only lab, a missing key or a missing Ansible is
//! found before any VM is created, each with the one thing to do about it. The run is
//! recorded with one phase per step (`build:image` ... `build:template`), which the
//! checklist adds up as "Packer Build".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sombrero_core::build::DEFAULT_TEMPLATE_ID;
use sombrero_core::build::{
    self, BuildOutcome, BuildReport, BuildRequest, GOLDEN_IMAGE, TemplateListing,
};
use sombrero_core::configure::AnsibleTree;
use sombrero_core::deploy::placement;
use sombrero_core::history::{Run, clock};
use sombrero_core::settings::NodeChoice;

use super::configure::{ansible, cache_dir, private_key};
use super::configure_view::show_and_record;
use crate::cli::BuildArgs;
use crate::context::Context;
use crate::exit::ExitStatus;
use crate::recording::recorded;

/// Everything the build needs, checked before anything is created.
async fn prepare(context: &Context, args: &BuildArgs, stamp: &str) -> anyhow::Result<BuildRequest> {
    let settings = &context.settings;
    let vm = &settings.vm;
    let build = &settings.build;
    let key = private_key(settings)?;
    let public_key = settings.ssh_public_key(|path| std::fs::read_to_string(path))?;
    let ansible = ansible(context).await?;
    let project = settings.config_file.parent().unwrap_or(Path::new("."));
    let configured = settings
        .paths
        .ansible_dir
        .as_ref()
        .map(|dir| (dir.value.as_path(), dir.source.to_string()));
    let tree = AnsibleTree::locate_for(GOLDEN_IMAGE, configured, project, &cache_dir())?;
    tracing::info!("playbooks: {} ({:?})", tree.dir.display(), tree.origin);
    let outputs_dir = settings.paths.outputs_dir.value.clone();
    let logs_dir = outputs_dir
        .parent()
        .map_or_else(|| PathBuf::from("logs"), |dir| dir.join("logs"));
    let storage = build.storage.as_ref().map_or_else(
        || vm.disk_storage.value.clone(),
        |storage| storage.value.clone(),
    );
    // `node = "auto"` or a list: the template is built where the VM rule would put a VM
    // of its size; on shared storage every node can clone it.
    let node = match &vm.node.value {
        NodeChoice::Named(node) => node.clone(),
        choice => {
            let placed =
                placement::build_node(context.client()?, choice, vm.memory_mib.value, &storage)
                    .await?;
            tracing::info!("build node {}: {}", placed.node, placed.reason);
            placed.node
        }
    };
    Ok(BuildRequest {
        node,
        template_id: args
            .template_id
            .or_else(|| vm.template_id.as_ref().map(|id| id.value))
            .unwrap_or(DEFAULT_TEMPLATE_ID),
        template_name: build.template_name.value.clone(),
        replace: args.replace,
        base_image: build.base_image.value.clone(),
        base_image_url: build.base_image_url.as_ref().map(|url| url.value.clone()),
        base_image_sha256: build
            .base_image_sha256
            .as_ref()
            .map(|sum| sum.value.clone()),
        storage,
        bridge: vm.bridge.value.clone(),
        disk_size_gib: build.disk_size_gib.value,
        os_tag: build.os_tag.as_ref().map(|tag| tag.value.clone()),
        user: vm.ciuser.value.clone(),
        public_key: public_key.as_str().to_owned(),
        key,
        ansible,
        tree,
        outputs_dir,
        logs_dir,
        stamp: stamp.to_owned(),
        timeouts: context.timeouts(),
        sombrero_version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

pub fn render(report: &BuildReport) -> String {
    let mut out = String::new();
    let id = report.template_id;
    match report.outcome {
        BuildOutcome::Current => {
            let _ = writeln!(
                out,
                "template {id} ({}) is current: nothing to do (`--replace` builds a new version)",
                report.template_name
            );
        }
        BuildOutcome::Outdated => {
            let _ = writeln!(
                out,
                "template {id} ({}) was built from another recipe (playbooks or base image \
                 changed); nothing changed: `sombrero build --replace` builds the new version \
                 and keeps this one",
                report.template_name
            );
        }
        BuildOutcome::Built => {
            let _ = writeln!(out, "built template {id} ({})", report.template_name);
        }
    }
    if let Some(metadata) = &report.metadata {
        let _ = writeln!(
            out,
            "  build {} at {}, Docker {}, {} (from {})",
            metadata.build,
            metadata.build_time,
            metadata.docker_version.as_deref().unwrap_or("unknown"),
            metadata.os,
            metadata.base_image
        );
    }
    if let Some(old) = report.superseded {
        let _ = writeln!(
            out,
            "  the previous template is now {old} (tagged superseded)"
        );
    }
    if let Some(file) = &report.outputs_file {
        let _ = writeln!(out, "  outputs: {}", file.display());
    }
    if report.outcome == BuildOutcome::Built {
        let timings = &report.timings;
        let _ = writeln!(
            out,
            "  {:.0} s in all: boot {:.0} s, Ansible {:.0} s, shutdown {:.0} s, sombrero {:.0} s",
            timings.total_seconds,
            timings.boot_seconds,
            timings.ansible_seconds,
            timings.shutdown_seconds,
            timings.own_seconds()
        );
    }
    out
}

/// Stage 1 inside a recorded run: `build:prepare`, then one `build:<step>` phase per
/// step. `up` runs it inside its own run.
///
/// # Errors
/// State-only lab guests, no key, no base image (exit 2); API, SSH and Ansible failures,
/// a template id taken by something else (exit 1).
pub async fn stage(
    context: &Context,
    args: &BuildArgs,
    run: Option<&Run<'_>>,
) -> anyhow::Result<BuildReport> {
    let client = context.client()?;
    let stamp = clock::id_stamp(clock::now_ms());
    let request = match run {
        Some(run) => {
            run.phase_async("build:prepare", prepare(context, args, &stamp))
                .await?
        }
        None => prepare(context, args, &stamp).await?,
    };
    let request = &request;
    let work = |events: Box<dyn Fn(&_) + Send + Sync>| async move {
        build::run(client, request, &*events).await
    };
    Ok(show_and_record(run, &context.printer, ("build", false), work).await?)
}

/// Runs `sombrero build`.
///
/// # Errors
/// As [`stage`].
pub async fn run(args: &BuildArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    // Before the key and Ansible are looked for: with state-only guests nothing else
    // matters, and nothing is recorded.
    build::require_real_guests(context.client()?).await?;
    let work = async |run: Option<&Run<'_>>| stage(context, args, run).await;
    let Some(result) = recorded(context, "build", work).await else {
        return Ok(ExitStatus::Interrupted);
    };
    let report = result?;
    if printer.json_mode() {
        printer.json(&report)?;
    } else {
        printer.data(render(&report).trim_end());
    }
    Ok(ExitStatus::Success)
}

fn render_templates(listings: &[TemplateListing]) -> String {
    if listings.is_empty() {
        return "no golden templates (run `sombrero build`)".to_owned();
    }
    let mut out = format!(
        "{:<6} {:<30} {:<24} {:<16} {:<20} {}\n",
        "ID", "NAME", "BUILT", "DOCKER", "ENVIRONMENTS", "TAGS"
    );
    for listing in listings {
        let metadata = listing.metadata.as_ref();
        let environments = if listing.environments.is_empty() {
            "-".to_owned()
        } else {
            listing.environments.join(",")
        };
        let _ = writeln!(
            out,
            "{:<6} {:<30} {:<24} {:<16} {:<20} {}",
            listing.id,
            listing.name.as_deref().unwrap_or("-"),
            metadata.map_or("-", |m| m.build_time.as_str()),
            metadata
                .and_then(|m| m.docker_version.as_deref())
                .unwrap_or("-"),
            environments,
            listing.tags.join(";")
        );
    }
    out
}

/// Runs `sombrero templates`.
///
/// # Errors
/// API errors.
pub async fn templates(context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let listings = build::list(context.client()?).await?;
    if printer.json_mode() {
        printer.json(&listings)?;
    } else {
        printer.data(render_templates(&listings).trim_end());
    }
    Ok(ExitStatus::Success)
}
