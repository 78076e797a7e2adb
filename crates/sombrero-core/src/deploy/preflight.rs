//! Read-only checks before anything is cloned or changed: node online, storage and bridge
//! present, the address not used by another VM sombrero manages.
//!
//! Why before: each of these otherwise fails late and obscurely (a clone task dying with
//! `storage 'x' does not exist` after the VM id is taken, a start failing on a missing
//! bridge, two VMs answering ARP for one address). Checking first costs a few GETs and
//! turns each into one clear error that names the node and the value to fix.

use std::net::IpAddr;

use pve::{Client, Method, Request, ResourceType};

use super::desired::{Desired, MANAGED_TAG};
use super::error::{DeployError, DeployResult};
use super::placement::Cluster;

/// Checks that `node` is in the cluster and online.
///
/// # Errors
/// [`DeployError::NodeUnknown`], [`DeployError::NodeOffline`] or API errors.
pub async fn check_node(client: &Client, node: &str) -> DeployResult<()> {
    let nodes = client
        .nodes()
        .await
        .map_err(|error| DeployError::api("listing the cluster's nodes", error))?;
    let Some(found) = nodes.iter().find(|summary| summary.node == node) else {
        return Err(DeployError::NodeUnknown {
            node: node.to_owned(),
            known: nodes.iter().map(|summary| summary.node.clone()).collect(),
        });
    };
    node_online(node, found.status.as_deref())
}

/// Whether a node's `status` from `GET /nodes` means it can run the VM.
///
/// # Errors
/// [`DeployError::NodeOffline`] for any status but `online`.
pub fn node_online(node: &str, status: Option<&str>) -> DeployResult<()> {
    match status {
        Some("online") => Ok(()),
        other => Err(DeployError::NodeOffline {
            node: node.to_owned(),
            status: other.unwrap_or("unknown").to_owned(),
        }),
    }
}

/// Checks that the cluster has quorum (`GET /cluster/status`), so the plan's changes can
/// be made: without it PVE refuses them all. A node outside any cluster has no `cluster`
/// entry and needs none.
///
/// # Errors
/// [`DeployError::NoQuorum`] or API errors.
pub async fn check_quorum(client: &Client) -> DeployResult<()> {
    let entries = client
        .cluster_status()
        .await
        .map_err(|error| DeployError::api("reading the cluster's status", error))?;
    let Some(cluster) = entries.iter().find(|entry| entry.entry_type == "cluster") else {
        return Ok(());
    };
    if cluster.quorate {
        return Ok(());
    }
    let nodes: Vec<_> = entries.iter().filter(|entry| entry.is_node()).collect();
    let online: Vec<&str> = nodes
        .iter()
        .filter(|entry| entry.online)
        .map(|entry| entry.name.as_str())
        .collect();
    Err(DeployError::NoQuorum {
        detail: format!(
            "{} of {} nodes online: {}",
            online.len(),
            nodes.len(),
            if online.is_empty() {
                "none".to_owned()
            } else {
                online.join(", ")
            }
        ),
    })
}

/// Checks that the disk storage exists on the node and holds disk images.
///
/// # Errors
/// [`DeployError::StorageMissing`] or API errors.
pub async fn check_storage(client: &Client, node: &str, storage: &str) -> DeployResult<()> {
    let storages = client
        .storage_list(node, None)
        .await
        .map_err(|error| DeployError::api(format!("listing storages on {node}"), error))?;
    let available: Vec<String> = storages
        .iter()
        .filter(|summary| summary.holds("images"))
        .map(|summary| summary.storage.clone())
        .collect();
    let problem = match storages.iter().find(|summary| summary.storage == storage) {
        None => "does not exist",
        Some(summary) if !summary.holds("images") => "cannot hold disk images",
        Some(_) => return Ok(()),
    };
    Err(DeployError::StorageMissing {
        storage: storage.to_owned(),
        node: node.to_owned(),
        problem: problem.to_owned(),
        available,
    })
}

/// Checks that the bridge exists on the node (`GET /nodes/{node}/network?type=any_bridge`).
///
/// # Errors
/// [`DeployError::BridgeMissing`] or API errors.
pub async fn check_bridge(client: &Client, node: &str, bridge: &str) -> DeployResult<()> {
    let mut params = pve::Params::new();
    params.set("type", "any_bridge");
    let request = Request::new(Method::Get, pve::request::path(["nodes", node, "network"]))
        .with_params(params);
    let data = client
        .execute(&request)
        .await
        .map_err(|error| DeployError::api(format!("listing bridges on {node}"), error))?;
    let available: Vec<String> = data
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("iface")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if available.iter().any(|name| name == bridge) {
        return Ok(());
    }
    Err(DeployError::BridgeMissing {
        bridge: bridge.to_owned(),
        node: node.to_owned(),
        available,
    })
}

/// Checks that no other VM sombrero manages (tag `sombrero`) uses the desired address.
///
/// # Errors
/// [`DeployError::AddressInUse`] or API errors.
pub async fn check_address(client: &Client, desired: &Desired) -> DeployResult<()> {
    let resources = client
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .map_err(|error| DeployError::api("listing VMs", error))?;
    check_address_in(client, &Cluster::from_resources(resources), desired).await
}

/// [`check_address`] with the VMs of a cluster already read.
///
/// # Errors
/// As [`check_address`].
pub async fn check_address_in(
    client: &Client,
    cluster: &Cluster,
    desired: &Desired,
) -> DeployResult<()> {
    let address: IpAddr = desired.ip.addr();
    for resource in &cluster.vms {
        let (vmid, node) = (resource.vmid, resource.node.as_str());
        if vmid == u64::from(desired.vmid) || resource.template || !resource.has_tag(MANAGED_TAG) {
            continue;
        }
        if cluster.is_down(node) {
            // Its config cannot be read (PVE answers 595); the check covers what it can.
            continue;
        }
        let Some(config) = client
            .vm_config_opt(node, vmid)
            .await
            .map_err(|error| DeployError::api(format!("reading VM {vmid}"), error))?
        else {
            continue;
        };
        let used = config.ipconfig0().ok().flatten().and_then(|ipconfig| {
            match (ipconfig.ip, ipconfig.ip6) {
                (Some(pve::Ipv4Setting::Static(net)), _) => Some(IpAddr::V4(net.addr())),
                (_, Some(pve::Ipv6Setting::Static(net))) => Some(IpAddr::V6(net.addr())),
                _ => None,
            }
        });
        if used == Some(address) {
            return Err(DeployError::AddressInUse {
                address,
                vmid,
                name: config.name().unwrap_or_default(),
                node: node.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::node_online;

    #[test]
    fn only_online_nodes_pass() {
        assert!(node_online("lloyd", Some("online")).is_ok());
        let offline = node_online("lloyd", Some("offline"))
            .unwrap_err()
            .to_string();
        assert!(offline.contains("lloyd is offline"), "{offline}");
        assert!(node_online("lloyd", None).is_err());
    }
}
