//! Which template to clone: an explicit id, the stage-1 handoff, or the newest tagged one.
//!
//! Why this order: an id set on purpose wins over discovery, so what `config show` says
//! is what gets cloned: `--template`, then `TEMPLATE_ID`, then `template_id` in
//! `sombrero.toml`. With none set, stage 2 takes the template stage 1 handed over in
//! `packer-outputs.json` (the original repository never passed it on), then the newest
//! template carrying the build tags (what the original's Terraform did). Explicit ids are
//! verified, so a wrong one fails before anything is cloned, naming the node.

use std::path::Path;

use pve::{Client, VmConfig};
use serde::Serialize;

use super::desired::TEMPLATE_TAGS;
use super::error::{DeployError, DeployResult};
use super::placement::{Cluster, TemplateSite};
use crate::settings::Settings;

/// The template chosen and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateChoice {
    pub id: u32,
    pub name: Option<String>,
    /// How it was chosen, e.g. `flag --template`, `packer-outputs.json`.
    pub chosen_by: String,
    /// The node it lives on, when it was looked up (a clone is sent there, with the VM's
    /// node as `target` when they differ).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Where an id may come from, highest precedence first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRequest {
    /// Given on purpose (`--template`, `TEMPLATE_ID`) or handed over by stage 1.
    Explicit { id: u32, chosen_by: String },
    /// The newest template carrying the tags, else `fallback` (sombrero.toml).
    Newest {
        tags: Vec<String>,
        fallback: Option<(u32, String)>,
    },
}

/// `template_id` from `packer-outputs.json` (a string in the runbook's example, a number
/// is accepted too). `None` when the file does not exist or carries no `template_id`.
///
/// # Errors
/// [`DeployError::Handoff`] when the file exists but cannot be read, is not JSON, or its
/// `template_id` is not a VM id: silently falling back to another template would deploy
/// something stage 1 did not hand over.
pub fn handoff_template(outputs_dir: &Path) -> DeployResult<Option<u32>> {
    let path = outputs_dir.join("packer-outputs.json");
    let bad = |reason: String| DeployError::Handoff {
        path: path.clone(),
        reason,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(bad(error.to_string())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| bad(format!("not JSON ({error})")))?;
    let id = match value.get("template_id") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(text)) => text.trim().parse::<u32>().ok(),
        Some(serde_json::Value::Number(number)) => {
            number.as_u64().and_then(|n| u32::try_from(n).ok())
        }
        Some(_) => None,
    };
    match id {
        Some(id) if (100..=999_999_999).contains(&id) => Ok(Some(id)),
        _ => Err(bad(format!(
            "template_id {} is not a VM id (100 to 999999999)",
            value["template_id"]
        ))),
    }
}

/// What the settings (and the stage-1 handoff) ask for: a template id set on purpose
/// (`--template`, `TEMPLATE_ID`, `sombrero.toml`, in that order, already resolved into the
/// settings), else stage 1's `packer-outputs.json`, else the newest tagged template.
///
/// # Errors
/// A `packer-outputs.json` that exists but names no usable template id.
pub fn request(settings: &Settings) -> DeployResult<TemplateRequest> {
    if let Some(template) = &settings.vm.template_id {
        return Ok(TemplateRequest::Explicit {
            id: template.value,
            chosen_by: template.source.to_string(),
        });
    }
    if let Some(id) = handoff_template(&settings.paths.outputs_dir.value)? {
        return Ok(TemplateRequest::Explicit {
            id,
            chosen_by: "deployments/outputs/packer-outputs.json".to_owned(),
        });
    }
    Ok(TemplateRequest::Newest {
        tags: TEMPLATE_TAGS.iter().map(|tag| (*tag).to_owned()).collect(),
        fallback: None,
    })
}

/// [`verify`], first saying so when the template's node is down in `cluster` (PVE would
/// answer `595 No route to host` for it).
async fn verify_in(
    client: &Client,
    cluster: &Cluster,
    node: &str,
    id: u32,
    chosen_by: &str,
) -> DeployResult<(TemplateChoice, VmConfig)> {
    if cluster.is_down(node) && cluster.node_of(u64::from(id)).is_some() {
        return Err(DeployError::TemplateNodeOffline {
            id,
            node: node.to_owned(),
            status: "offline".to_owned(),
        });
    }
    verify(client, node, id, chosen_by).await
}

async fn verify(
    client: &Client,
    node: &str,
    id: u32,
    chosen_by: &str,
) -> DeployResult<(TemplateChoice, VmConfig)> {
    let config = client
        .vm_config_opt(node, u64::from(id))
        .await
        .map_err(|error| DeployError::api(format!("reading template {id}"), error))?;
    let Some(config) = config else {
        return Err(DeployError::TemplateMissing {
            id: Some(id),
            node: node.to_owned(),
            chosen_by: Some(chosen_by.to_owned()),
            tags: Vec::new(),
        });
    };
    if !config.is_template() {
        return Err(DeployError::NotATemplate {
            id,
            node: node.to_owned(),
            chosen_by: Some(chosen_by.to_owned()),
        });
    }
    let choice = TemplateChoice {
        id,
        name: config.name(),
        chosen_by: chosen_by.to_owned(),
        node: Some(node.to_owned()),
    };
    Ok((choice, config))
}

/// Resolves `request` for a VM on node `node`: the template may live on another node of
/// the cluster when its disks are on storage `node` shares.
///
/// # Errors
/// [`DeployError::TemplateMissing`] / [`DeployError::NotATemplate`] naming the node, or
/// API errors.
pub async fn resolve(
    client: &Client,
    node: &str,
    request: &TemplateRequest,
) -> DeployResult<TemplateChoice> {
    Ok(resolve_with_config(client, node, request).await?.0)
}

/// Resolves `request` on whichever node holds the template (`node = "auto"`: the node is
/// chosen after the template).
///
/// # Errors
/// As [`resolve`].
pub async fn resolve_anywhere(
    client: &Client,
    request: &TemplateRequest,
) -> DeployResult<TemplateChoice> {
    let cluster = Cluster::read(client).await?;
    Ok(resolve_in(client, &cluster, None, request).await?.0)
}

/// [`resolve`], also returning the template's config (read anyway, so `plan` need not
/// read it again).
pub(crate) async fn resolve_with_config(
    client: &Client,
    node: &str,
    request: &TemplateRequest,
) -> DeployResult<(TemplateChoice, VmConfig)> {
    let cluster = Cluster::read(client).await?;
    resolve_in(client, &cluster, Some(node), request).await
}

/// [`resolve_with_config`] on a cluster already read. With `for_node`, only templates that
/// node can clone count (on it, or on storage it shares); without, any node's.
pub(crate) async fn resolve_in(
    client: &Client,
    cluster: &Cluster,
    for_node: Option<&str>,
    request: &TemplateRequest,
) -> DeployResult<(TemplateChoice, VmConfig)> {
    let home = |id: u32| {
        cluster
            .node_of(u64::from(id))
            .or(for_node)
            .unwrap_or_default()
            .to_owned()
    };
    let (tags, fallback) = match request {
        TemplateRequest::Explicit { id, chosen_by } => {
            if for_node.is_none() && cluster.node_of(u64::from(*id)).is_none() {
                return Err(DeployError::TemplateMissing {
                    id: Some(*id),
                    node: "any node of the cluster".to_owned(),
                    chosen_by: Some(chosen_by.clone()),
                    tags: Vec::new(),
                });
            }
            return verify_in(client, cluster, &home(*id), *id, chosen_by).await;
        }
        TemplateRequest::Newest { tags, fallback } => (tags, fallback),
    };
    // Tagged templates on a node that is down: PVE cannot read (or clone) them.
    let mut unreachable: Option<(u64, String)> = None;
    let mut candidates: Vec<(u64, u64, Option<String>, String, VmConfig)> = Vec::new();
    for resource in &cluster.vms {
        if !resource.template || !tags.iter().all(|tag| resource.has_tag(tag)) {
            continue;
        }
        let (vmid, at) = (resource.vmid, resource.node.clone());
        if cluster.is_down(&at) {
            unreachable = unreachable.max(Some((vmid, at)));
            continue;
        }
        // `meta: ...,ctime=SECONDS` says when the template was made; newest wins.
        let config = client
            .vm_config(&at, vmid)
            .await
            .map_err(|error| DeployError::api(format!("reading template {vmid}"), error))?;
        if let Some(node) = for_node
            && cluster
                .can_use_template(node, &TemplateSite::of(vmid, &at, &config))
                .is_err()
        {
            continue;
        }
        let created = config
            .get_text("meta")
            .and_then(|meta| {
                meta.split(',')
                    .find_map(|part| part.strip_prefix("ctime=")?.parse().ok())
            })
            .unwrap_or(0);
        candidates.push((created, vmid, resource.name.clone(), at, config));
    }
    candidates.sort_by_key(|(created, vmid, ..)| (*created, *vmid));
    if let Some((_, vmid, name, at, config)) = candidates.pop() {
        let choice = TemplateChoice {
            id: u32::try_from(vmid).unwrap_or(u32::MAX),
            name,
            chosen_by: format!("newest template tagged {}", tags.join(", ")),
            node: Some(at),
        };
        return Ok((choice, config));
    }
    match (fallback, unreachable) {
        (Some((id, chosen_by)), _) => verify_in(client, cluster, &home(*id), *id, chosen_by).await,
        (None, Some((vmid, node))) => Err(DeployError::TemplateNodeOffline {
            id: u32::try_from(vmid).unwrap_or(u32::MAX),
            node,
            status: "offline".to_owned(),
        }),
        (None, None) => Err(DeployError::TemplateMissing {
            id: None,
            node: for_node.unwrap_or("any node").to_owned(),
            chosen_by: None,
            tags: tags.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::handoff_template;

    #[test]
    fn reads_the_stage_one_handoff_as_string_or_number() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(handoff_template(dir.path()).unwrap(), None);
        let file = dir.path().join("packer-outputs.json");
        std::fs::write(&file, r#"{"template_id": "1002", "template_name": "x"}"#).unwrap();
        assert_eq!(handoff_template(dir.path()).unwrap(), Some(1002));
        std::fs::write(&file, r#"{"template_id": 1003}"#).unwrap();
        assert_eq!(handoff_template(dir.path()).unwrap(), Some(1003));
        std::fs::write(&file, r#"{"template_name": "x"}"#).unwrap();
        assert_eq!(handoff_template(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_broken_handoff_is_an_error_naming_the_file_not_a_silent_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("packer-outputs.json");
        for (text, says) in [
            ("not json", "not JSON"),
            (r#"{"template_id": "abc"}"#, "\"abc\" is not a VM id"),
            (r#"{"template_id": 42}"#, "42 is not a VM id"),
            (r#"{"template_id": [1001]}"#, "is not a VM id"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = handoff_template(dir.path()).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains("packer-outputs.json") && message.contains(says),
                "{text}: {message}"
            );
            assert!(error.is_bad_input(), "{message}");
        }
    }
}
