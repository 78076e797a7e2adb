//! Settling an environment's node from the cluster: the VM where it is, else placed.
//!
//! Why apart from the rule: the rule ([`super::choose`]) is pure and benchmarked; this is
//! the part that reads the cluster and the template, and knows what each command needs
//! (a command that creates places a missing VM; one that only looks reports it).

use pve::Client;

use super::{Cluster, Placement, Request, TemplateSite, choose};
use crate::deploy::error::DeployResult;
use crate::settings::NodeChoice;

/// The node `sombrero build` builds on: the named one (checked), else the online node
/// with the most free memory that has the build's `storage`.
///
/// # Errors
/// As [`choose`], or the API read.
pub async fn build_node(
    client: &Client,
    choice: &NodeChoice,
    memory_mib: u64,
    storage: &str,
) -> DeployResult<Placement> {
    let cluster = Cluster::read(client).await?;
    choose(
        &cluster,
        &Request {
            choice,
            memory_mib,
            template: None,
            disk_storage: Some(storage),
        },
    )
}

/// What a command wants from [`settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `plan`, `deploy`, `up`: a missing VM is placed by the rule (template included).
    Create,
    /// `status`, `destroy`, `adopt`, `migrate`: a missing VM is reported, not placed; the
    /// configured node (or the first online one) stands in.
    Find,
}

/// Settles `desired.node`: where the VM is, else (for [`Purpose::Create`]) where the rule
/// puts it. One `GET /cluster/resources`, plus the template's config when placing.
///
/// # Errors
/// As [`choose`], the template resolution, or the API read.
pub async fn settle(
    client: &Client,
    desired: &mut crate::deploy::Desired,
    template: &crate::deploy::TemplateRequest,
    purpose: Purpose,
) -> DeployResult<Placement> {
    let cluster = Cluster::read(client).await?;
    settle_in(client, &cluster, desired, template, purpose).await
}

/// [`settle`] on a cluster already read.
///
/// # Errors
/// As [`settle`].
pub async fn settle_in(
    client: &Client,
    cluster: &Cluster,
    desired: &mut crate::deploy::Desired,
    template: &crate::deploy::TemplateRequest,
    purpose: Purpose,
) -> DeployResult<Placement> {
    let vmid = desired.vmid;
    if let Some(node) = cluster.node_of(u64::from(vmid)) {
        let reason = match &desired.placement {
            NodeChoice::Named(configured) if configured != node => format!(
                "VM {vmid} found there (it was moved from the configured node {configured};                  it stays where it is)"
            ),
            _ => format!("VM {vmid} found there"),
        };
        node.clone_into(&mut desired.node);
        return Ok(Placement {
            node: node.to_owned(),
            reason,
        });
    }
    let placement = match (purpose, &desired.placement) {
        (Purpose::Find, choice) => {
            let node = choice
                .preferred()
                .map(str::to_owned)
                .or_else(|| {
                    let online = cluster.nodes.iter().find(|node| node.online);
                    online
                        .or(cluster.nodes.first())
                        .map(|node| node.name.clone())
                })
                .unwrap_or_else(|| desired.node.clone());
            Placement {
                reason: format!("VM {vmid} does not exist; node = {choice} names {node}"),
                node,
            }
        }
        (Purpose::Create, NodeChoice::Named(_)) => {
            // A template that does not resolve is `plan`'s error to report, by name.
            let resolved = crate::deploy::template::resolve_in(client, cluster, None, template)
                .await
                .ok();
            let site = resolved.as_ref().and_then(|(choice, config)| {
                Some(TemplateSite::of(
                    u64::from(choice.id),
                    choice.node.as_deref()?,
                    config,
                ))
            });
            choose(
                cluster,
                &Request {
                    choice: &desired.placement,
                    memory_mib: desired.memory_mib,
                    template: site.as_ref(),
                    disk_storage: (!desired.linked_clone).then_some(desired.disk_storage.as_str()),
                },
            )?
        }
        (Purpose::Create, choice) => {
            let (found, config) =
                crate::deploy::template::resolve_in(client, cluster, None, template).await?;
            let site = TemplateSite::of(
                u64::from(found.id),
                found.node.as_deref().unwrap_or_default(),
                &config,
            );
            choose(
                cluster,
                &Request {
                    choice,
                    memory_mib: desired.memory_mib,
                    template: Some(&site),
                    disk_storage: (!desired.linked_clone).then_some(desired.disk_storage.as_str()),
                },
            )?
        }
    };
    desired.node.clone_from(&placement.node);
    Ok(placement)
}
