//! The template: build metadata in its description, tags, the conversion, the
//! `--replace` moves, and listing the golden templates of a cluster.
//!
//! Why metadata in the description: it travels with the template (backups, `qm config`,
//! the web UI's notes) and needs no store of its own; `sombrero templates` reads it back.
//! Its first line is not deploy's marker, so a template is never taken for a managed VM.

use pve::endpoints::CloneOptions;
use pve::{Client, ConfigUpdate};
use serde::Serialize;

use super::error::BuildError;
use super::slot::{is_golden, tags_of, vms};
use super::{BuildRequest, GOLDEN_TAG, SUPERSEDED_TAG};
use crate::deploy::{MANAGED_TAG, Marker};

/// The description's first line.
pub const DESCRIPTION_HEAD: &str = "golden template built by `sombrero build`";

/// What a golden template was built from and with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TemplateMetadata {
    pub build_time: String,
    pub sombrero_version: String,
    pub docker_version: Option<String>,
    pub base_image: String,
    /// The configured SHA-256 of the base image (verified by the node when it downloaded it).
    pub base_image_sha256: Option<String>,
    /// A hash of the playbooks and the base image: equal means "built the same way".
    pub recipe: String,
    pub os: String,
    /// The build's stamp, also a tag (`build-<stamp>`).
    pub build: String,
}

impl TemplateMetadata {
    /// The description text (`key: value` lines after the head line).
    pub fn to_description(&self) -> String {
        let optional = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
        format!(
            "{DESCRIPTION_HEAD}\nbuild: {}\nbuild-time: {}\nsombrero-version: {}\n\
             docker-version: {}\nbase-image: {}\nbase-image-sha256: {}\nrecipe: {}\nos: {}\n",
            self.build,
            self.build_time,
            self.sombrero_version,
            optional(&self.docker_version),
            self.base_image,
            optional(&self.base_image_sha256),
            self.recipe,
            self.os
        )
    }

    /// Reads a description written by [`Self::to_description`]; `None` for anything else.
    pub fn parse(description: &str) -> Option<Self> {
        let mut lines = description.lines().map(str::trim);
        if lines.next()? != DESCRIPTION_HEAD {
            return None;
        }
        let mut metadata = Self::default();
        for line in lines {
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            let value = value.trim().to_owned();
            let optional = (value != "-").then(|| value.clone());
            match key {
                "build" => metadata.build = value,
                "build-time" => metadata.build_time = value,
                "sombrero-version" => metadata.sombrero_version = value,
                "docker-version" => metadata.docker_version = optional,
                "base-image" => metadata.base_image = value,
                "base-image-sha256" => metadata.base_image_sha256 = optional,
                "recipe" => metadata.recipe = value,
                "os" => metadata.os = value,
                _ => {}
            }
        }
        Some(metadata)
    }

    /// The template's tags.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![
            MANAGED_TAG.to_owned(),
            GOLDEN_TAG.to_owned(),
            "packer-built".to_owned(),
            self.os.clone(),
            format!("build-{}", self.build),
        ];
        tags.sort();
        tags.dedup();
        tags
    }
}

async fn wait(client: &Client, upid: pve::Upid, doing: String) -> Result<(), BuildError> {
    let quiet = |_: &pve::WaitEvent| {};
    client
        .wait_task(&upid, super::TASK_TIMEOUT, &quiet)
        .await
        .map(drop)
        .map_err(|error| BuildError::api(doing, error))
}

/// Names, tags and describes the stopped builder, then makes it the template at
/// `request.template_id`. With `--replace` (the builder has another id), the current
/// template first moves to the next free id (kept, tagged superseded), and the builder is
/// moved into the configured id. Returns the superseded template's new id.
pub(crate) async fn finalize(
    client: &Client,
    request: &BuildRequest,
    builder: u32,
    metadata: &TemplateMetadata,
) -> Result<Option<u32>, BuildError> {
    let node = &request.node;
    let update = ConfigUpdate::new()
        .set("name", request.template_name.clone())
        .tags(metadata.tags())
        .set("description", metadata.to_description())
        .delete("sshkeys");
    client
        .vm_config_set(node, u64::from(builder), update)
        .await
        .map_err(|error| BuildError::api(format!("describing builder VM {builder}"), error))?;
    if builder == request.template_id {
        let upid = client
            .vm_template(node, u64::from(builder))
            .await
            .map_err(|error| BuildError::api(format!("converting VM {builder}"), error))?;
        wait(
            client,
            upid,
            format!("converting VM {builder} to a template"),
        )
        .await?;
        return Ok(None);
    }
    let current = request.template_id;
    let superseded = move_vm(client, request, current, None).await?;
    let old = client
        .vm_config(node, u64::from(superseded))
        .await
        .map_err(|error| BuildError::api(format!("reading VM {superseded}"), error))?;
    let mut tags = old.tags();
    tags.push(SUPERSEDED_TAG.to_owned());
    tags.sort();
    tags.dedup();
    client
        .vm_config_set(node, u64::from(superseded), ConfigUpdate::new().tags(tags))
        .await
        .map_err(|error| BuildError::api(format!("tagging VM {superseded}"), error))?;
    move_vm(client, request, builder, Some(current)).await?;
    Ok(Some(superseded))
}

/// Full-clones `from` to `to` (the next free id when `None`), makes the copy a template
/// and removes `from`. Proxmox VE cannot renumber a VM; this is how `qm` users do it.
async fn move_vm(
    client: &Client,
    request: &BuildRequest,
    from: u32,
    to: Option<u32>,
) -> Result<u32, BuildError> {
    let node = &request.node;
    let quiet = |_: &pve::WaitEvent| {};
    let to = match to {
        Some(id) => id,
        None => client
            .next_id()
            .await
            .map_err(|error| BuildError::api("asking for a free VM id", error))
            .map(|id| u32::try_from(id).unwrap_or(u32::MAX))?,
    };
    let config = client
        .vm_config(node, u64::from(from))
        .await
        .map_err(|error| BuildError::api(format!("reading VM {from}"), error))?;
    let options = CloneOptions {
        newid: u64::from(to),
        name: config.name(),
        description: config.description(),
        full: Some(true),
        ..CloneOptions::default()
    };
    client
        .clone_vm_and_wait(
            node,
            u64::from(from),
            &options,
            request.timeouts.clone,
            &quiet,
        )
        .await
        .map_err(|error| BuildError::api(format!("copying VM {from} to {to}"), error))?;
    let upid = client
        .vm_template(node, u64::from(to))
        .await
        .map_err(|error| BuildError::api(format!("converting VM {to}"), error))?;
    wait(client, upid, format!("converting VM {to} to a template")).await?;
    client
        .delete_vm_and_wait(node, u64::from(from), request.timeouts.clone, &quiet)
        .await
        .map_err(|error| {
            BuildError::api(
                format!("removing VM {from} after copying it to {to} (linked clones of it?)"),
                error,
            )
        })?;
    Ok(to)
}

/// One golden template, as `sombrero templates` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateListing {
    pub id: u32,
    pub node: String,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub superseded: bool,
    pub metadata: Option<TemplateMetadata>,
    /// Environments whose VMs' markers name this template id.
    pub environments: Vec<String>,
}

/// The golden templates of the cluster, newest build first, with the environments whose
/// VMs were cloned from each (by the template id in each VM's marker).
///
/// # Errors
/// API errors.
pub async fn list(client: &Client) -> Result<Vec<TemplateListing>, BuildError> {
    let resources = vms(client).await?;
    let mut listings = Vec::new();
    let mut markers = Vec::new();
    for resource in &resources {
        let (Some(vmid), Some(node)) = (resource.vmid, resource.node.as_deref()) else {
            continue;
        };
        let tags = tags_of(resource.tags.as_deref());
        let golden = is_golden(&tags, resource.template);
        if !golden && !tags.iter().any(|tag| tag == MANAGED_TAG) {
            continue;
        }
        let config = client
            .vm_config(node, vmid)
            .await
            .map_err(|error| BuildError::api(format!("reading VM {vmid}"), error))?;
        let description = config.description().unwrap_or_default();
        if golden {
            listings.push(TemplateListing {
                id: u32::try_from(vmid).unwrap_or(u32::MAX),
                node: node.to_owned(),
                name: resource.name.clone(),
                superseded: tags.iter().any(|tag| tag == SUPERSEDED_TAG),
                tags,
                metadata: TemplateMetadata::parse(&description),
                environments: Vec::new(),
            });
        } else if let Some(marker) = Marker::find(&description) {
            markers.push(marker);
        }
    }
    for listing in &mut listings {
        let mut environments: Vec<String> = markers
            .iter()
            .filter(|marker| marker.template == Some(listing.id))
            .map(|marker| marker.environment.clone())
            .collect();
        environments.sort();
        environments.dedup();
        listing.environments = environments;
    }
    listings.sort_by(|a, b| {
        let stamp = |l: &TemplateListing| l.metadata.as_ref().map(|m| m.build.clone());
        stamp(b).cmp(&stamp(a)).then(a.id.cmp(&b.id))
    });
    Ok(listings)
}

#[cfg(test)]
mod tests {
    use super::TemplateMetadata;

    #[test]
    fn metadata_survives_the_description_and_is_not_a_vm_marker() {
        let metadata = TemplateMetadata {
            build_time: "2026-12-05T08:00:00Z".into(),
            sombrero_version: "0.1.0".into(),
            docker_version: Some("20.10.24+dfsg1".into()),
            base_image: "local:import/debian-12-genericcloud-amd64.qcow2".into(),
            base_image_sha256: None,
            recipe: "0123456789abcdef".into(),
            os: "debian-12".into(),
            build: "20261205-080000".into(),
        };
        let text = metadata.to_description();
        assert_eq!(TemplateMetadata::parse(&text), Some(metadata.clone()));
        assert!(crate::deploy::Marker::find(&text).is_none());
        assert_eq!(
            TemplateMetadata::parse("managed-by: sombrero env=dev"),
            None
        );
        assert_eq!(
            metadata.tags(),
            [
                "build-20261205-080000",
                "debian-12",
                "golden",
                "packer-built",
                "sombrero"
            ]
        );
    }
}
