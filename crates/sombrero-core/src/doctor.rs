//! `doctor`: the runbook's prerequisites, checked against the cluster before a run.
//!
//! Why a list and not the first error: the runbook's "Prerequisites" is a checklist an
//! operator works through (API token, node, storage, bridge, template, key, address);
//! each check here is one line with `ok`, `warn` or `fail`, what was seen and, when not
//! ok, what to do. The stage commands run the same checks (`deploy`'s preflight, the
//! privilege table of `diagnose`), so `doctor` passing means they will not stop on them.
//! Nothing here prints or writes.

use pve::Client;
use serde::Serialize;

use crate::deploy::{self, DeployError, Desired};
use crate::diagnose::privileges;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Works, but something will need doing (a template not built yet, TLS unverified).
    Warn,
    /// A stage will stop on it.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub name: String,
    pub level: Level,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Line {
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            level: Level::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn warn(name: &str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            level: Level::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            level: Level::Fail,
            detail: detail.into(),
            hint,
        }
    }

    /// A failed preflight check, with the error's own hint.
    fn from_deploy(name: &str, error: &DeployError) -> Self {
        Self::fail(name, error.to_string(), error.hint())
    }
}

/// What the cluster checks need from the configuration.
#[derive(Debug, Clone)]
pub struct ClusterInput<'a> {
    pub desired: &'a Desired,
    pub storage: String,
    pub bridge: String,
    pub disk_gib: u64,
    pub template_id: Option<u32>,
    /// The build's base image volume (`STORAGE:import/FILE`).
    pub base_image: String,
    pub base_image_url: Option<String>,
    /// `user@realm!tokenid` for messages.
    pub identity: String,
}

/// The checks that need the API, in the order the stages meet them. When the API does
/// not answer, that is the only line.
pub async fn cluster(client: &Client, input: &ClusterInput<'_>) -> Vec<Line> {
    let node = input.desired.node.as_str();
    let mut lines = Vec::new();
    match client.version().await {
        Ok(version) => lines.push(Line::ok(
            "api",
            format!(
                "Proxmox VE {} answers {} as {}",
                version.version,
                client.base_url(),
                input.identity
            ),
        )),
        Err(error) => {
            let hint = deploy::client_error_hint(&error).or_else(|| {
                error.is_unauthorized().then(|| {
                    "check the token (`user@realm!tokenid=secret` in TF_VAR_pve_api_token) or \
                     regenerate it in Proxmox"
                        .to_owned()
                })
            });
            lines.push(Line::fail(
                "api",
                format!("{}: {error}", client.base_url()),
                hint,
            ));
            return lines;
        }
    }
    lines.extend(privilege_lines(client, input, node).await);
    lines.push(match deploy::preflight::check_node(client, node).await {
        Ok(()) => Line::ok("node", format!("{node} is online")),
        Err(error) => Line::from_deploy("node", &error),
    });
    lines.push(storage_line(client, input, node).await);
    lines.push(
        match deploy::preflight::check_bridge(client, node, &input.bridge).await {
            Ok(()) => Line::ok("bridge", format!("{} on {node}", input.bridge)),
            Err(error) => Line::from_deploy("bridge", &error),
        },
    );
    let (template, has_template) = template_line(client, input, node).await;
    lines.push(template);
    lines.push(base_image_line(client, input, node, has_template).await);
    lines.push(
        match deploy::preflight::check_address(client, input.desired).await {
            Ok(()) => Line::ok(
                "address",
                format!(
                    "{} is used by no other VM sombrero manages",
                    input.desired.ip
                ),
            ),
            Err(error) => Line::from_deploy("address", &error),
        },
    );
    lines
}

/// One line per stage: the privileges its endpoints need that the token lacks.
async fn privilege_lines(client: &Client, input: &ClusterInput<'_>, node: &str) -> Vec<Line> {
    let held = match client.permissions().await {
        Ok(held) => held,
        Err(error) => {
            return vec![Line::warn(
                "privileges",
                format!("GET /access/permissions: {error}"),
                "the token's privileges cannot be listed; the stages will say which one they lack",
            )];
        }
    };
    let needs = privileges::needs(input.desired.vmid, input.template_id, &input.storage, node);
    let missing = privileges::missing(&held, &needs);
    let mut stages: Vec<&str> = needs.iter().map(|need| need.stage).collect();
    stages.dedup();
    stages
        .into_iter()
        .map(|stage| {
            let name = format!("privileges ({stage})");
            let lacking: Vec<String> = missing
                .iter()
                .filter(|need| need.stage == stage)
                .map(|need| format!("{} on {}", need.privilege, need.path))
                .collect();
            if lacking.is_empty() {
                Line::ok(&name, "the token holds them")
            } else {
                Line::fail(
                    &name,
                    format!("missing {}", lacking.join(", ")),
                    Some(format!(
                        "grant them to {} (e.g. `pveum acl modify / --tokens '{}' --roles \
                         PVEVMAdmin,PVEDatastoreUser`)",
                        input.identity, input.identity
                    )),
                )
            }
        })
        .collect()
}

async fn storage_line(client: &Client, input: &ClusterInput<'_>, node: &str) -> Line {
    if let Err(error) = deploy::preflight::check_storage(client, node, &input.storage).await {
        return Line::from_deploy("storage", &error);
    }
    let free = client
        .storage_list(node, None)
        .await
        .ok()
        .and_then(|list| list.into_iter().find(|s| s.storage == input.storage))
        .and_then(|summary| summary.avail);
    let needed = input.disk_gib << 30;
    match free {
        Some(free) if free < needed => Line::fail(
            "storage",
            format!(
                "{} has {} GiB free, the disk needs {} GiB",
                input.storage,
                free >> 30,
                input.disk_gib
            ),
            Some(format!(
                "free space on {} or set disk_storage to a storage with room",
                input.storage
            )),
        ),
        Some(free) => Line::ok(
            "storage",
            format!(
                "{} holds images, {} GiB free for the {} GiB disk",
                input.storage,
                free >> 30,
                input.disk_gib
            ),
        ),
        None => Line::ok("storage", format!("{} holds images", input.storage)),
    }
}

/// The template line, and whether the template is there.
async fn template_line(client: &Client, input: &ClusterInput<'_>, node: &str) -> (Line, bool) {
    let Some(id) = input.template_id else {
        return (
            Line::ok(
                "template",
                "none configured (the newest tagged template is used)",
            ),
            true,
        );
    };
    match client.vm_config_opt(node, u64::from(id)).await {
        Ok(Some(config)) if config.is_template() => (
            Line::ok("template", format!("{id} is a template on {node}")),
            true,
        ),
        Ok(Some(_)) => (
            Line::fail(
                "template",
                format!("VM {id} on {node} is not a template"),
                Some("set template_id to the golden template's id, or `sombrero build --template-id N`".to_owned()),
            ),
            false,
        ),
        Ok(None) => (
            Line::warn(
                "template",
                format!("template {id} is not on {node} yet"),
                "`sombrero build` builds it (the runbook: `mise run deploy-packer`)",
            ),
            false,
        ),
        Err(error) => (
            Line::fail("template", format!("reading VM {id}: {error}"), None),
            false,
        ),
    }
}

async fn base_image_line(
    client: &Client,
    input: &ClusterInput<'_>,
    node: &str,
    has_template: bool,
) -> Line {
    let storage = input.base_image.split(':').next().unwrap_or("local");
    let present = client
        .storage_content(node, storage, Some("import"))
        .await
        .map(|content| content.iter().any(|item| item.volid == input.base_image));
    match (present, &input.base_image_url) {
        (Ok(true), _) => Line::ok("base image", format!("{} is on {node}", input.base_image)),
        (_, Some(url)) => Line::ok(
            "base image",
            format!(
                "{} is downloaded from {url} when a build needs it",
                input.base_image
            ),
        ),
        _ if has_template => Line::ok(
            "base image",
            format!("{} is absent; only a new build needs it", input.base_image),
        ),
        _ => Line::warn(
            "base image",
            format!(
                "{} is absent and no download URL is configured",
                input.base_image
            ),
            "upload the cloud image to the storage's import directory or set \
             build.base_image_url (and build.base_image_sha256)",
        ),
    }
}
