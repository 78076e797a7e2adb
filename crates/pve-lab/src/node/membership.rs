//! The cluster's members: which nodes exist, which are up, and `GET /cluster/status`.
//!
//! Why: a multi-node lab must answer for a node that is down the way PVE does, so that
//! placement and maintenance code can be tested against an outage without a real cluster.
//! Membership is configuration (the names come from [`super::NodeOptions`]); whether a
//! node is up is runtime state kept beside the saved state, not in it: restarting the lab
//! is restarting the cluster, and every node boots (decision 113).
//!
//! A node that goes down loses power: its VMs stop at once (a real QEMU guest is killed,
//! not shut down), requests to `/nodes/{node}/...` get the 595 `No route to host` that
//! pveproxy answers when it cannot reach the node, and the cluster-wide lists show the
//! node `offline` and its VMs and storages `unknown`.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{Node, Shared};
use crate::api::ApiError;

/// The corosync cluster name the lab reports.
pub(crate) const CLUSTER_NAME: &str = "lab";

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The name is not a member of the lab's cluster.
    #[error("no such cluster node '{0}'")]
    UnknownNode(String),
}

/// Which members are down, and since when each member is up.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    offline: Mutex<BTreeSet<String>>,
    /// Unix seconds a member came back up (absent: up since the lab's boot time).
    up_since: Mutex<BTreeMap<String, u64>>,
}

impl Membership {
    pub fn is_online(&self, node: &str) -> bool {
        !self.offline.lock().contains(node)
    }

    pub fn up_since(&self, node: &str) -> Option<u64> {
        self.up_since.lock().get(node).copied()
    }
}

/// The error pveproxy answers for a request it must forward to a node that is down.
pub(crate) fn unreachable() -> ApiError {
    ApiError::new(595, "No route to host")
}

/// Whether more than half of the members are online (one vote each, as a cluster
/// without a quorum device counts): without it PVE's cluster file system is read-only.
pub(crate) fn is_quorate(shared: &Shared) -> bool {
    let members = shared.options.cluster_nodes();
    let online = members
        .iter()
        .filter(|name| shared.membership.is_online(name))
        .count();
    online * 2 > members.len()
}

/// What PVE answers a change while the cluster has no quorum (`check_cfs_quorum`).
pub(crate) fn no_quorum() -> ApiError {
    ApiError::internal("cluster not ready - no quorum?")
}

/// The loopback address the lab reports for the `index`-th member (never a real LAN
/// address: the lab's network rule).
pub(crate) fn member_ip(index: usize) -> String {
    let last = u8::try_from(index + 1).unwrap_or(u8::MAX);
    format!("127.0.0.{last}")
}

/// `GET /cluster/status`: a standalone node lists only itself (no `cluster` entry), as a
/// PVE host that never joined a cluster does; a cluster lists the cluster, then each node.
pub(crate) fn cluster_status(shared: &Shared) -> Value {
    let members = shared.options.cluster_nodes();
    let mut items = Vec::new();
    if members.len() > 1 {
        items.push(json!({
            "type": "cluster", "id": "cluster", "name": CLUSTER_NAME,
            "nodes": members.len(), "quorate": u8::from(is_quorate(shared)),
            "version": members.len() + 1,
        }));
    }
    for (index, name) in members.iter().enumerate() {
        items.push(json!({
            "type": "node", "id": format!("node/{name}"), "name": name,
            "nodeid": index + 1, "ip": member_ip(index),
            "local": u8::from(index == 0),
            "online": u8::from(shared.membership.is_online(name)), "level": "",
        }));
    }
    Value::Array(items)
}

impl Node {
    /// Every member of the cluster, the API's node first.
    pub fn cluster_nodes(&self) -> Vec<String> {
        self.shared.options.cluster_nodes()
    }

    /// Whether `node` is up; `None` when it is not a member.
    pub fn node_online(&self, node: &str) -> Option<bool> {
        self.shared
            .options
            .is_member(node)
            .then(|| self.shared.membership.is_online(node))
    }

    /// The node VM `vmid` lives on, `None` when there is no such VM.
    pub fn vm_node(&self, vmid: u32) -> Option<String> {
        self.shared
            .read(|state| state.vms.get(&vmid).map(|vm| vm.node.clone()))
    }

    /// Takes a node down (`online: false`: it loses power, its VMs stop, real QEMU guests
    /// are killed) or brings it back up (its VMs stay stopped, as after a power loss
    /// without HA). Doing what is already so changes nothing.
    ///
    /// # Errors
    /// [`ClusterError::UnknownNode`] when `node` is not a member.
    pub fn set_node_online(&self, node: &str, online: bool) -> Result<(), ClusterError> {
        let shared = &self.shared;
        if !shared.options.is_member(node) {
            return Err(ClusterError::UnknownNode(node.to_owned()));
        }
        if online {
            if shared.membership.offline.lock().remove(node) {
                shared
                    .membership
                    .up_since
                    .lock()
                    .insert(node.to_owned(), super::unix_seconds());
                tracing::info!(node, "lab node up");
            }
            return Ok(());
        }
        if !shared.membership.offline.lock().insert(node.to_owned()) {
            return Ok(());
        }
        tracing::info!(node, "lab node down");
        let stopped: Vec<u32> = shared.write(|state| {
            let mut stopped = Vec::new();
            for (vmid, vm) in &mut state.vms {
                if vm.node == node && vm.run.take().is_some() {
                    vm.apply_pending();
                    stopped.push(*vmid);
                }
            }
            stopped
        });
        if let Some(guests) = shared.options.guests.qemu() {
            for vmid in stopped {
                guests.power_off(vmid);
            }
        }
        Ok(())
    }

    /// Sets exactly the nodes in `down` down and every other member up (what a fault
    /// spec's `node-down` does).
    ///
    /// # Errors
    /// [`ClusterError::UnknownNode`] for a name that is not a member; nothing changes then.
    pub fn set_nodes_down(&self, down: &[String]) -> Result<(), ClusterError> {
        if let Some(unknown) = down
            .iter()
            .find(|name| !self.shared.options.is_member(name))
        {
            return Err(ClusterError::UnknownNode(unknown.clone()));
        }
        for member in self.cluster_nodes() {
            self.set_node_online(&member, !down.contains(&member))?;
        }
        Ok(())
    }

    /// The nodes that are down, in cluster order.
    pub fn nodes_down(&self) -> Vec<String> {
        self.cluster_nodes()
            .into_iter()
            .filter(|name| !self.shared.membership.is_online(name))
            .collect()
    }
}
