//! Response types of `GET /cluster/status`.
//!
//! Why a type of its own: it is how a client learns the cluster's members and which of
//! them are online and quorate before it places or migrates a VM; `/nodes` says less (no
//! quorum, no node ids). A standalone node answers with a single `node` entry and no
//! `cluster` entry.

use serde::{Deserialize, Serialize};

use crate::lenient;

/// One entry of `GET /cluster/status`: the cluster itself (`entry_type == "cluster"`,
/// only in a cluster) or one member (`"node"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatusEntry {
    /// `cluster` or `node/NAME`.
    pub id: String,
    /// `cluster` or `node`.
    #[serde(rename = "type")]
    pub entry_type: String,
    /// The cluster's or the node's name.
    pub name: String,
    /// [node] Whether the node is online.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub online: bool,
    /// [node] Whether this node answered the request.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub local: bool,
    /// [node] The corosync node id.
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub nodeid: Option<u64>,
    /// [node] The address the node name resolves to.
    #[serde(default)]
    pub ip: Option<String>,
    /// [cluster] Whether a majority of the nodes is online.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub quorate: bool,
    /// [cluster] How many nodes, offline ones included.
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub nodes: Option<u64>,
}

impl ClusterStatusEntry {
    /// Whether this entry is a node (not the cluster itself).
    pub fn is_node(&self) -> bool {
        self.entry_type == "node"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::ClusterStatusEntry;

    #[test]
    fn cluster_and_node_entries_decode_with_pve_loose_types() {
        let entries: Vec<ClusterStatusEntry> = serde_json::from_value(json!([
            {"type": "cluster", "id": "cluster", "name": "lab", "nodes": 3, "quorate": 1, "version": 4},
            {"type": "node", "id": "node/pve2", "name": "pve2", "online": 0, "local": 0,
             "nodeid": "2", "ip": "127.0.0.2", "level": ""},
        ]))
        .unwrap();
        assert!(!entries[0].is_node());
        assert!(entries[0].quorate);
        assert_eq!(entries[0].nodes, Some(3));
        assert!(entries[1].is_node());
        assert!(!entries[1].online);
        assert_eq!(entries[1].nodeid, Some(2));
        assert_eq!(entries[1].ip.as_deref(), Some("127.0.0.2"));
    }
}
