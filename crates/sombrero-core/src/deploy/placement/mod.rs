//! Which node an environment's VM lives on: found where it is, or placed by the rule.
//!
//! Why one read and a pure rule: on a cluster, VMs move (`sombrero migrate`, an HA
//! fail-over, an operator in the web UI), so a VM that exists is looked up cluster-wide in
//! `GET /cluster/resources` and used where it is; a deploy after a migration then changes
//! nothing. Only a VM that does not exist yet is *placed*: with `node = "auto"` (or a
//! list) on an online node that can host the clone (the template on that node, or its
//! disks on storage shared with it), with the most free memory after the VM's own, ties
//! broken by name, as an operator would pick. The same `/cluster/resources` answer holds
//! nodes, VMs and storages, so a decision costs one request (plus the template's config),
//! and [`choose`] is a pure function the benchmark times on a simulated 32-node cluster.

use std::fmt::Write as _;

use pve::{Client, ClusterResource, VmConfig};
use serde::Serialize;

use super::error::{DeployError, DeployResult};
use crate::settings::NodeChoice;

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub online: bool,
    pub maxmem: u64,
    pub mem: u64,
}

/// A storage as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFacts {
    pub node: String,
    pub storage: String,
    pub shared: bool,
    /// Holds disk images (`content` includes `images`).
    pub images: bool,
    pub available: bool,
}

/// A VM or template as `/cluster/resources` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFacts {
    pub vmid: u64,
    pub node: String,
    pub template: bool,
    pub name: Option<String>,
    /// As PVE lists them: `sombrero;jumphost`.
    pub tags: Option<String>,
}

impl VmFacts {
    /// A VM `vmid` on `node`, without name or tags.
    pub fn new(vmid: u64, node: impl Into<String>, template: bool) -> Self {
        Self {
            vmid,
            node: node.into(),
            template,
            name: None,
            tags: None,
        }
    }

    /// Whether it carries `tag` (PVE separates tags with `;`, older versions `,` or ` `).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags
            .as_deref()
            .is_some_and(|all| all.split([';', ',', ' ']).any(|have| have == tag))
    }
}

/// The cluster's nodes, storages and VMs, from one read: what placement, the template
/// resolution and the address check of one command share.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub nodes: Vec<NodeFacts>,
    pub storages: Vec<StorageFacts>,
    pub vms: Vec<VmFacts>,
}

impl Cluster {
    /// Sorts `GET /cluster/resources` (all types) into nodes, storages and VMs.
    pub fn from_resources(resources: Vec<ClusterResource>) -> Self {
        let mut cluster = Self::default();
        for resource in resources {
            let Some(node) = resource.node else { continue };
            match resource.resource_type.as_str() {
                "node" => cluster.nodes.push(NodeFacts {
                    online: resource.status.as_deref() == Some("online"),
                    maxmem: resource.maxmem.unwrap_or(0),
                    mem: resource.mem.unwrap_or(0),
                    name: node,
                }),
                "storage" => cluster.storages.push(StorageFacts {
                    storage: resource.storage.unwrap_or_default(),
                    shared: resource.shared,
                    images: resource
                        .content
                        .as_deref()
                        .is_some_and(|content| content.split(',').any(|c| c.trim() == "images")),
                    available: resource.status.as_deref() == Some("available"),
                    node,
                }),
                "qemu" => {
                    if let Some(vmid) = resource.vmid {
                        cluster.vms.push(VmFacts {
                            vmid,
                            node,
                            template: resource.template,
                            name: resource.name,
                            tags: resource.tags,
                        });
                    }
                }
                _ => {}
            }
        }
        cluster.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        cluster
    }

    /// Reads the cluster (one `GET /cluster/resources`).
    ///
    /// # Errors
    /// The API error, as [`DeployError::api`].
    pub async fn read(client: &Client) -> DeployResult<Self> {
        let resources = client
            .cluster_resources(None)
            .await
            .map_err(|error| DeployError::api("listing the cluster's resources", error))?;
        Ok(Self::from_resources(resources))
    }

    /// The node VM `vmid` is on, if it exists anywhere in the cluster.
    pub fn node_of(&self, vmid: u64) -> Option<&str> {
        self.vms
            .iter()
            .find(|vm| vm.vmid == vmid)
            .map(|vm| vm.node.as_str())
    }

    /// Whether `name` is a member of the cluster that is not online (a node the cluster
    /// does not list is not known to be down).
    pub fn is_down(&self, name: &str) -> bool {
        self.node(name).is_some_and(|node| !node.online)
    }

    fn node(&self, name: &str) -> Option<&NodeFacts> {
        self.nodes.iter().find(|node| node.name == name)
    }

    fn storage(&self, node: &str, storage: &str) -> Option<&StorageFacts> {
        self.storages
            .iter()
            .find(|s| s.node == node && s.storage == storage)
    }

    /// Whether `node` can clone a template that lives on `site`: the template is on it,
    /// or every one of the template's disks is on shared storage `node` sees.
    ///
    /// # Errors
    /// Why not, as a phrase for the plan (`template 9000 is on local-lvm, local to pve2`).
    pub fn can_use_template(&self, node: &str, site: &TemplateSite) -> Result<(), String> {
        if site.node == node {
            return Ok(());
        }
        for storage in &site.storages {
            match self.storage(node, storage) {
                Some(found) if found.shared && found.available => {}
                Some(found) if found.shared => {
                    return Err(format!("shared storage {storage} is not available on it"));
                }
                _ => {
                    return Err(format!(
                        "template {} is on {storage}, local to {}",
                        site.vmid, site.node
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `node` has `storage` for a full clone's disks; a clone sent to another node
    /// than the template's needs it shared (PVE: "can't clone to non-shared storage").
    fn has_disk_storage(&self, node: &str, storage: &str, remote: bool) -> Result<(), String> {
        match self.storage(node, storage) {
            Some(found) if !found.images || !found.available => {
                Err(format!("storage {storage} cannot take disk images there"))
            }
            Some(found) if remote && !found.shared => Err(format!(
                "a full clone to another node than the template's needs shared storage, and \
                 disk_storage {storage} is local"
            )),
            Some(_) => Ok(()),
            None => Err(format!("no storage {storage}")),
        }
    }

    /// Whether `node` can host the VM's clone: it can use the template, and has the disk
    /// storage (shared when the template is elsewhere).
    fn can_host(&self, node: &str, request: &Request<'_>) -> Result<(), String> {
        if let Some(site) = request.template {
            self.can_use_template(node, site)?;
        }
        match request.disk_storage {
            Some(storage) => {
                let remote = request.template.is_some_and(|site| site.node != node);
                self.has_disk_storage(node, storage, remote)
            }
            None => Ok(()),
        }
    }
}

/// Where a template lives: its node and the storages of its disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSite {
    pub vmid: u64,
    pub node: String,
    pub storages: Vec<String>,
}

impl TemplateSite {
    /// The template's node and the storages its disks (`scsi0`, `virtio1`, ...) are on;
    /// the cloud-init drive is regenerated for the clone, so it does not count.
    pub fn of(vmid: u64, node: &str, config: &VmConfig) -> Self {
        let mut storages: Vec<String> = config
            .disks()
            .unwrap_or_default()
            .into_values()
            .filter(|disk| !disk.is_cloudinit() && disk.media() != Some("cdrom"))
            .filter_map(|disk| {
                let (storage, _) = disk.volume().split_once(':')?;
                Some(storage.to_owned())
            })
            .collect();
        storages.sort();
        storages.dedup();
        Self {
            vmid,
            node: node.to_owned(),
            storages,
        }
    }
}

/// What a placement needs besides the cluster.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub choice: &'a NodeChoice,
    /// The VM's memory.
    pub memory_mib: u64,
    /// The template to clone.
    pub template: Option<&'a TemplateSite>,
    /// A full clone's disk storage (`None` for a linked clone, which stays on the
    /// template's storage).
    pub disk_storage: Option<&'a str>,
}

/// The node chosen and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub node: String,
    /// One line: `configured (node = "lloyd")`, `found there (...)`, or the rule's choice
    /// with the runner-up and the nodes set aside.
    pub reason: String,
}

const MIB: u64 = 1024 * 1024;

fn gib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / (1024.0 * MIB as f64);
    format!("{value:.1} GiB")
}

/// Places a new VM per the rule (see the module docs).
///
/// # Errors
/// A named node that is not in the cluster ([`DeployError::NodeUnknown`]) or not online
/// ([`DeployError::NodeOffline`]); no candidate fits ([`DeployError::NoNodeFits`], each
/// node with its reason).
pub fn choose(cluster: &Cluster, request: &Request<'_>) -> DeployResult<Placement> {
    let known = || cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let candidates: Vec<&NodeFacts> = match request.choice {
        NodeChoice::Named(name) => {
            let node = cluster.node(name).ok_or_else(|| DeployError::NodeUnknown {
                node: name.clone(),
                known: known(),
            })?;
            if !node.online {
                return Err(DeployError::NodeOffline {
                    node: name.clone(),
                    status: "offline".to_owned(),
                });
            }
            // A template on the named node itself: `plan`'s preflight names a missing
            // storage or bridge with its own hint. Elsewhere, only the rule knows why the
            // clone cannot come here.
            let remote = request.template.is_some_and(|site| site.node != *name);
            if let (true, Err(reason)) = (remote, cluster.can_host(name, request)) {
                return Err(DeployError::NoNodeFits {
                    choice: format!("{name:?}"),
                    reasons: vec![format!("{name}: {reason}")],
                });
            }
            return Ok(Placement {
                node: name.clone(),
                reason: format!("configured (node = {name:?})"),
            });
        }
        NodeChoice::Auto => cluster.nodes.iter().collect(),
        NodeChoice::Among(names) => names
            .iter()
            .map(|name| {
                cluster.node(name).ok_or_else(|| DeployError::NodeUnknown {
                    node: name.clone(),
                    known: known(),
                })
            })
            .collect::<DeployResult<_>>()?,
    };
    let need = request.memory_mib.saturating_mul(MIB);
    let mut fitting: Vec<(u64, &str)> = Vec::new();
    let mut set_aside: Vec<String> = Vec::new();
    for node in candidates {
        let verdict = if node.online {
            Ok(())
        } else {
            Err("offline".to_owned())
        }
        .and_then(|()| cluster.can_host(&node.name, request))
        .and_then(|()| {
            let free = node.maxmem.saturating_sub(node.mem);
            free.checked_sub(need).ok_or_else(|| {
                format!(
                    "{} free, the VM needs {} MiB",
                    gib(free),
                    request.memory_mib
                )
            })
        });
        match verdict {
            Ok(after) => fitting.push((after, &node.name)),
            Err(reason) => set_aside.push(format!("{}: {reason}", node.name)),
        }
    }
    // Most free memory after the VM's own first; equal memory: by name.
    fitting.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let Some(&(after, chosen)) = fitting.first() else {
        return Err(DeployError::NoNodeFits {
            choice: request.choice.to_string(),
            reasons: set_aside,
        });
    };
    let mut reason = format!(
        "node = {:?}: most free memory after the VM's {} MiB ({} left",
        match request.choice {
            NodeChoice::Among(names) => names.join(","),
            other => other.to_string(),
        },
        request.memory_mib,
        gib(after)
    );
    for (other_after, other) in fitting.iter().skip(1).take(3) {
        let _ = write!(reason, "; {other} {}", gib(*other_after));
    }
    reason.push(')');
    if !set_aside.is_empty() {
        let _ = write!(reason, "; set aside: {}", set_aside.join("; "));
    }
    Ok(Placement {
        node: chosen.to_owned(),
        reason,
    })
}

mod settle;

pub use settle::{Purpose, build_node, settle, settle_in};

#[cfg(test)]
mod tests;
