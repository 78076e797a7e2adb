//! Stage 1: the golden template, built from a cloud image by a builder VM that Ansible
//! provisions (`ansible/playbooks/golden-image.yml`) and generalizes (`generalize.yml`).
//!
//! Why not Packer: the runbook's Packer stage is an HTTP client of the same API plus SSH
//! and Ansible, which sombrero already has, typed and tested against the lab. One binary
//! means one set of credentials, one history, one lock and one `known_hosts` rule.
//! The phases (`image`, `create`, `boot`, `provision`, `generalize`, `template`) are what
//! the history records; events are [`ConfigureEvent`]s so the same view renders them.
//! Nothing here prints.

mod builder;
mod error;
mod outputs;
mod slot;
pub mod template;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use error::BuildError;
pub use outputs::{PACKER_OUTPUTS, PackerOutputs};
pub use template::{TemplateListing, TemplateMetadata, list};

use crate::configure::{AnsibleEvent, AnsibleInstall, AnsibleTree, ConfigureEvent};
use crate::deploy::Timeouts;
use crate::ssh::{PrivateKey, Session};

/// The runbook's template id, when neither `--template-id` nor `template_id` is set.
pub const DEFAULT_TEMPLATE_ID: u32 = 1001;
/// The tag of builder VMs (removed by the next build when one is left).
pub const BUILDER_TAG: &str = "sombrero-builder";
/// The tag of sombrero's golden templates.
pub const GOLDEN_TAG: &str = "golden";
/// The tag a `--replace` gives the template it moves aside.
pub const SUPERSEDED_TAG: &str = "superseded";
/// The golden-image playbook, relative to the Ansible tree.
pub const GOLDEN_IMAGE: &str = "playbooks/golden-image.yml";
/// The generalize playbook, relative to the Ansible tree.
pub const GENERALIZE: &str = "playbooks/generalize.yml";

const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
const TASK_TIMEOUT: Duration = Duration::from_secs(600);

/// A line for the operator.
pub(crate) type Note<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Everything one build needs, resolved by the caller.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub node: String,
    pub template_id: u32,
    pub template_name: String,
    pub replace: bool,
    /// `STORAGE:import/FILE`.
    pub base_image: String,
    pub base_image_url: Option<String>,
    pub base_image_sha256: Option<String>,
    /// Storage for the builder's disks.
    pub storage: String,
    pub bridge: String,
    pub disk_size_gib: u32,
    /// `None`: from the builder's `/etc/os-release`.
    pub os_tag: Option<String>,
    /// The builder's cloud-init user.
    pub user: String,
    pub public_key: String,
    pub key: PrivateKey,
    pub ansible: AnsibleInstall,
    pub tree: AnsibleTree,
    pub outputs_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub stamp: String,
    pub timeouts: Timeouts,
    pub sombrero_version: String,
}

/// How the build ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildOutcome {
    /// A new template was built.
    Built,
    /// The template at the id was built with the same recipe: nothing to do.
    Current,
    /// The template at the id was built from another recipe; `--replace` rebuilds it.
    Outdated,
}

/// Where the build's time went: the guest's own work against sombrero's.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct BuildTimings {
    pub total_seconds: f64,
    /// Start to SSH answering (firmware, kernel, cloud-init's first boot).
    pub boot_seconds: f64,
    /// Both playbooks, by Ansible's own clock (package installs, generalizing).
    pub ansible_seconds: f64,
    /// ACPI shutdown.
    pub shutdown_seconds: f64,
}

impl BuildTimings {
    /// What sombrero itself took (API calls, waits between steps, Ansible's start-up).
    pub fn own_seconds(&self) -> f64 {
        (self.total_seconds - self.boot_seconds - self.ansible_seconds - self.shutdown_seconds)
            .max(0.0)
    }
}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub outcome: BuildOutcome,
    pub template_id: u32,
    pub template_name: String,
    pub metadata: Option<TemplateMetadata>,
    /// The previous template's new id after `--replace`.
    pub superseded: Option<u32>,
    /// Builders an earlier build left, removed.
    pub removed_builders: Vec<u32>,
    /// How the base image was found.
    pub base_image: Option<String>,
    pub outputs_file: Option<PathBuf>,
    pub timings: BuildTimings,
}

/// Refuses state-only lab guests: a template needs a machine that really boots.
///
/// # Errors
/// [`BuildError::NeedsRealGuest`].
pub async fn require_real_guests(client: &pve::Client) -> Result<(), BuildError> {
    match slot::lab_guests(client).await {
        Some(lab) if !lab.real => Err(BuildError::NeedsRealGuest),
        _ => Ok(()),
    }
}

/// Whether the cluster is a sombrero lab with state-only guests (no machine boots, so
/// nothing can be built, configured or checked on it).
pub async fn state_only_lab(client: &pve::Client) -> bool {
    slot::lab_guests(client).await.is_some_and(|lab| !lab.real)
}

/// A hash of the Ansible tree's files and the base image: equal recipes build equal
/// templates.
pub fn recipe(tree: &AnsibleTree, base_image: &str) -> String {
    use sha2::{Digest as _, Sha256};
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == "__pycache__" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&tree.dir, &mut files);
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(&tree.dir).unwrap_or(&file);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update(std::fs::read(&file).unwrap_or_default());
    }
    hash.update(base_image.as_bytes());
    hex::encode(hash.finalize())[..16].to_owned()
}

/// Runs stage 1.
///
/// # Errors
/// [`BuildError`]; a failed provisioning leaves the builder stopped (named in the error).
pub async fn run(
    client: &pve::Client,
    request: &BuildRequest,
    events: &(dyn Fn(&ConfigureEvent) + Send + Sync),
) -> Result<BuildReport, BuildError> {
    let began = Instant::now();
    let note = |text: &str| {
        events(&ConfigureEvent::Note {
            text: text.to_owned(),
        });
    };
    let started = |phase: &'static str, what: String| {
        events(&ConfigureEvent::Started { phase, what });
    };
    let finished = |detail: String| events(&ConfigureEvent::Finished { detail });

    started(
        "image",
        format!("template id {} and the base image", request.template_id),
    );
    let lab = slot::lab_guests(client).await;
    if lab.as_ref().is_some_and(|lab| !lab.real) {
        return Err(BuildError::NeedsRealGuest);
    }
    let resources = slot::vms(client).await?;
    let removed_builders = slot::remove_builders(client, request, &resources, &note).await?;
    let current = slot::inspect(client, &request.node, request.template_id).await?;
    let wanted_recipe = recipe(&request.tree, &request.base_image);
    if let slot::Slot::Golden(config) = &current
        && !request.replace
    {
        let metadata = config
            .description()
            .and_then(|text| TemplateMetadata::parse(&text));
        let outcome = if metadata.as_ref().is_some_and(|m| m.recipe == wanted_recipe) {
            BuildOutcome::Current
        } else {
            BuildOutcome::Outdated
        };
        finished(format!("template {} is already built", request.template_id));
        return Ok(BuildReport {
            outcome,
            template_id: request.template_id,
            template_name: config.name().unwrap_or_default(),
            metadata,
            superseded: None,
            removed_builders,
            base_image: None,
            outputs_file: None,
            timings: BuildTimings {
                total_seconds: began.elapsed().as_secs_f64(),
                ..BuildTimings::default()
            },
        });
    }
    let image =
        slot::base_image(client, &slot::ImageSpec::of(request), lab.as_ref(), &note).await?;
    finished(format!("{} ({})", image.volume, image.how));

    let builder = match current {
        slot::Slot::Free => request.template_id,
        slot::Slot::Golden(_) => client
            .next_id()
            .await
            .map_err(|error| BuildError::api("asking for a free VM id", error))
            .map(|id| u32::try_from(id).unwrap_or(u32::MAX))?,
    };
    started(
        "create",
        format!("builder VM {builder} from {}", image.volume),
    );
    builder::create(client, request, builder, &image.volume).await?;
    finished(format!("{} created", builder::builder_name(builder)));

    started(
        "boot",
        format!("boot builder VM {builder} and reach it over SSH"),
    );
    // From here on a failure stops the builder (kept for inspection, removed by the next
    // build), so an error never leaves a VM running.
    let stop_on_error = async |error: BuildError| {
        events(&ConfigureEvent::Failed {
            error: error.to_string(),
        });
        let _ = builder::power_off(client, request, builder).await;
        error
    };
    let reached = match builder::boot(client, request, builder, &note).await {
        Ok(reached) => reached,
        Err(error) => return Err(stop_on_error(error).await),
    };
    finished(format!(
        "{} ({}), host key pinned",
        reached.target.display(),
        reached.vm_ip
    ));
    let session = Session::new(reached.target.clone()).map_err(|source| BuildError::Io {
        what: "create",
        path: std::env::temp_dir(),
        source,
    })?;
    let forward = |event: &AnsibleEvent| events(&ConfigureEvent::Ansible(event.clone()));
    let mut vars = serde_json::json!({
        "sombrero_version": request.sombrero_version,
        "golden_image_user": request.user,
    });
    if let Some(path) = request.key.path() {
        vars["ansible_ssh_private_key_file"] =
            serde_json::json!(crate::deploy::outputs::absolute(path));
    }

    started(
        "provision",
        format!("{GOLDEN_IMAGE} on builder VM {builder}"),
    );
    let provisioned = builder::run_playbook(
        request,
        &reached,
        &session,
        builder,
        (GOLDEN_IMAGE, "golden-image"),
        &vars,
        &forward,
    )
    .await;
    let provisioned = match provisioned {
        Ok(outcome) => outcome,
        Err(error) => return Err(stop_on_error(error).await),
    };
    let facts = match builder::facts(&session).await {
        Ok(facts) => facts,
        Err(error) => return Err(stop_on_error(error).await),
    };
    finished(format!(
        "Docker {}",
        facts.docker_version.as_deref().unwrap_or("not found")
    ));

    started("generalize", format!("{GENERALIZE} and power off"));
    vars["sombrero_generalize"] = serde_json::json!(true);
    let generalized = builder::run_playbook(
        request,
        &reached,
        &session,
        builder,
        (GENERALIZE, "generalize"),
        &vars,
        &forward,
    )
    .await;
    let generalized = match generalized {
        Ok(outcome) => outcome,
        Err(error) => return Err(stop_on_error(error).await),
    };
    drop(session);
    let shutdown_seconds = builder::power_off(client, request, builder).await?;
    finished("generalized and powered off".to_owned());

    started("template", format!("template {}", request.template_id));
    let os = request
        .os_tag
        .clone()
        .or_else(|| facts.os_tag.clone())
        .unwrap_or_else(|| "linux".to_owned());
    let metadata = TemplateMetadata {
        build_time: crate::history::clock::rfc3339(crate::history::clock::now_ms()),
        sombrero_version: request.sombrero_version.clone(),
        docker_version: facts.docker_version.clone(),
        base_image: image.volume.clone(),
        base_image_sha256: request.base_image_sha256.clone(),
        recipe: wanted_recipe,
        os,
        build: request.stamp.clone(),
    };
    let superseded = template::finalize(client, request, builder, &metadata).await?;
    let outputs_file = outputs::write(request, &metadata)?;
    finished(match superseded {
        Some(old) => format!(
            "template {} built; the previous one is now template {old} (superseded)",
            request.template_id
        ),
        None => format!("template {} built", request.template_id),
    });
    Ok(BuildReport {
        outcome: BuildOutcome::Built,
        template_id: request.template_id,
        template_name: request.template_name.clone(),
        metadata: Some(metadata),
        superseded,
        removed_builders,
        base_image: Some(format!("{} ({})", image.volume, image.how)),
        outputs_file: Some(outputs_file),
        timings: BuildTimings {
            total_seconds: began.elapsed().as_secs_f64(),
            boot_seconds: reached.boot_seconds,
            ansible_seconds: provisioned.ansible_seconds() + generalized.ansible_seconds(),
            shutdown_seconds,
        },
    })
}
