//! Options of a simulated node (or cluster): names, task durations, time scale, faults,
//! state dir.
//!
//! Why: the same node serves demos (realistic durations, so progress output looks like a
//! real cluster), tests (durations scaled down 10-100x) and fault drills; all of that is
//! configuration, not code paths.

use std::path::PathBuf;
use std::time::Duration;

/// How a node is built.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node name (`lloyd`): the node that answers the API (`local: 1` in
    /// `/cluster/status`), and the only node of a single-node lab.
    pub name: String,
    /// The other members of the cluster (`pve2`, `pve3`); empty: a single node, as a
    /// fresh PVE install is. Set both with [`NodeOptions::set_nodes`].
    pub peers: Vec<String>,
    /// Reopening a saved state whose VMs or disks are on nodes not in `peers`: add those
    /// nodes as members (`true`: `--lab`, which reopens whatever the project's lab was)
    /// instead of refusing (`false`: `lab serve`, whose `--nodes` is explicit).
    pub join_saved_nodes: bool,
    /// Whether the cluster has the shared storage `shared` (type `nfs`): `None` means
    /// "when there is more than one node" (decision 110).
    pub shared_storage: Option<bool>,
    /// Where template 1001 (`with_template`) keeps its disks, on the first node: `None`
    /// means `shared` when the cluster has it (cloneable to every node), else `local-lvm`
    /// (as a single-node lab always had); `Some("local-lvm")` or `Some("shared")` forces it.
    pub template_storage: Option<String>,
    /// Unscaled durations of each task type.
    pub durations: TaskDurations,
    /// Multiplies every duration (tasks, agent boot delay): `0.01` makes tests 100x faster.
    pub time_scale: f64,
    /// How long after a start the guest agent answers (unscaled).
    pub agent_boot_delay: Duration,
    /// Task-level faults (the HTTP layer applies the request-level ones).
    pub faults: TaskFaults,
    /// Where the state is saved; `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    /// Start with template 1001, ready to clone.
    pub with_template: bool,
    /// Random seed of generated MACs, UUIDs and host keys.
    pub seed: u64,
    /// The TLS certificate fingerprint `/nodes` reports (`AA:BB:...`), when serving TLS.
    pub ssl_fingerprint: Option<String>,
    /// State-only guests, or real QEMU machines (see [`crate::qemu`]).
    pub guests: crate::qemu::Guests,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            name: "lloyd".to_owned(),
            peers: Vec::new(),
            join_saved_nodes: false,
            shared_storage: None,
            template_storage: None,
            durations: TaskDurations::default(),
            time_scale: 1.0,
            agent_boot_delay: Duration::from_secs(8),
            faults: TaskFaults::default(),
            state_dir: None,
            with_template: false,
            seed: 1,
            ssl_fingerprint: None,
            guests: crate::qemu::Guests::State,
        }
    }
}

/// Why a list of node names cannot make a cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeNameError {
    #[error("no node name given")]
    Empty,
    #[error(
        "'{0}' is not a valid node name (PVE's rule: letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    Invalid(String),
    #[error("node '{0}' is named twice")]
    Duplicate(String),
}

/// Checks one node name against PVE's `pve-node` format (a host name label).
///
/// # Errors
/// [`NodeNameError::Invalid`] naming the value.
pub fn validate_node_name(name: &str) -> Result<(), NodeNameError> {
    let bytes = name.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-');
    let ends_ok = bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if inner_ok && ends_ok && bytes.len() <= 63 {
        Ok(())
    } else {
        Err(NodeNameError::Invalid(name.to_owned()))
    }
}

impl NodeOptions {
    /// Makes the lab a cluster of `names` (the first answers the API); one name is a
    /// single node.
    ///
    /// # Errors
    /// An empty list, an invalid name or a name given twice.
    pub fn set_nodes<Name: AsRef<str>>(
        &mut self,
        names: impl IntoIterator<Item = Name>,
    ) -> Result<(), NodeNameError> {
        let mut all: Vec<String> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            validate_node_name(name)?;
            if all.iter().any(|known| known == name) {
                return Err(NodeNameError::Duplicate(name.to_owned()));
            }
            all.push(name.to_owned());
        }
        let mut all = all.into_iter();
        self.name = all.next().ok_or(NodeNameError::Empty)?;
        self.peers = all.collect();
        Ok(())
    }

    /// Every member of the cluster, the API's node first.
    pub fn cluster_nodes(&self) -> Vec<String> {
        std::iter::once(self.name.clone())
            .chain(self.peers.iter().cloned())
            .collect()
    }

    /// Whether `name` is a member of the cluster.
    pub fn is_member(&self, name: &str) -> bool {
        self.name == name || self.peers.iter().any(|peer| peer == name)
    }

    /// Whether the cluster has the shared storage (decision 110).
    pub fn has_shared_storage(&self) -> bool {
        self.shared_storage.unwrap_or(!self.peers.is_empty())
    }

    /// The storage template 1001 is created on (see `template_storage`).
    pub fn template_storage(&self) -> &str {
        match &self.template_storage {
            Some(storage) => storage,
            None if self.has_shared_storage() => super::storage::SHARED_STORAGE_ID,
            None => "local-lvm",
        }
    }
}

/// Unscaled duration of each PVE task type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskDurations {
    pub clone_full: Duration,
    pub clone_linked: Duration,
    pub create: Duration,
    pub start: Duration,
    pub shutdown: Duration,
    pub stop: Duration,
    pub reboot: Duration,
    pub resize: Duration,
    pub config: Duration,
    pub destroy: Duration,
    pub template: Duration,
    /// An offline or online migration (`qmigrate`).
    pub migrate: Duration,
    /// `download-url` (the lab fetches nothing; this is only how long it appears to take).
    pub download: Duration,
    /// How long a lock waits before `got timeout` (PVE: 10 s).
    pub lock_timeout: Duration,
}

impl Default for TaskDurations {
    fn default() -> Self {
        Self {
            clone_full: Duration::from_secs(3),
            clone_linked: Duration::from_secs(1),
            create: Duration::from_secs(1),
            start: Duration::from_secs(1),
            shutdown: Duration::from_secs(2),
            stop: Duration::from_millis(300),
            reboot: Duration::from_secs(2),
            resize: Duration::from_millis(300),
            config: Duration::from_millis(200),
            destroy: Duration::from_millis(500),
            template: Duration::from_millis(500),
            migrate: Duration::from_secs(2),
            download: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// Task-level faults, drawn deterministically from `seed` (probabilities per task).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskFaults {
    /// Probability that a task fails with `can't lock file ... - got timeout`.
    pub lock_timeout: f64,
    /// Probability that a task fails with an error.
    pub task_fail: f64,
    /// Multiplies task durations (`2.0`: twice as slow).
    pub slow: f64,
    /// Probability that a started guest's agent never comes up.
    pub agent_never: f64,
    /// Seed of the fault draws.
    pub seed: u64,
}

impl Default for TaskFaults {
    fn default() -> Self {
        Self {
            lock_timeout: 0.0,
            task_fail: 0.0,
            slow: 1.0,
            agent_never: 0.0,
            seed: 0,
        }
    }
}
