//! The node's whole state as one serializable value.
//!
//! Why: every handler reads and changes the same few maps (VM configs, volumes, tasks), and
//! persistence saves them as one document. Keeping the state plain data (no handles, no
//! locks inside) makes a save a single `serde_json` call and a reload exact.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::tasks::TaskRecord;

/// Everything the node knows, saved as one document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct State {
    /// VMs by id.
    pub vms: BTreeMap<u32, Vm>,
    /// Volumes by storage key ([`volume_key`]: `node/local-lvm`, or `shared`), then by
    /// volume name (the part after `storage:`).
    pub volumes: BTreeMap<String, BTreeMap<String, Volume>>,
    /// Tasks, oldest first (running and finished).
    pub tasks: Vec<TaskRecord>,
    /// The next process id handed to a task or a VM.
    pub next_pid: u32,
    /// Unix time (seconds) the simulated node booted.
    pub boot_time: u64,
    /// Deterministic generator for MACs, UUIDs and host keys.
    pub random: SplitMix,
    /// Whether the cluster has the shared storage: configuration
    /// ([`super::NodeOptions::has_shared_storage`]), kept here so that every handler that
    /// holds the state can resolve storages; never saved.
    #[serde(skip)]
    pub has_shared_storage: bool,
}

impl State {
    /// A fresh process id, as PVE's workers and QEMU processes would get.
    pub fn allocate_pid(&mut self) -> u32 {
        let pid = self.next_pid;
        self.next_pid = self.next_pid.wrapping_add(1).max(1000);
        pid
    }

    /// The VM on `node`, or PVE's error for a missing config file (also when the VM
    /// exists but lives on another node: its config is under that node's directory).
    pub fn vm(&self, node: &str, vmid: u32) -> Result<&Vm, String> {
        self.vms
            .get(&vmid)
            .filter(|vm| vm.node == node)
            .ok_or_else(|| missing_config(node, vmid))
    }

    /// The VM on `node` (mutable), or PVE's error for a missing config file.
    pub fn vm_mut(&mut self, node: &str, vmid: u32) -> Result<&mut Vm, String> {
        self.vms
            .get_mut(&vmid)
            .filter(|vm| vm.node == node)
            .ok_or_else(|| missing_config(node, vmid))
    }

    /// The VMs that live on `node`.
    pub fn vms_on<'state>(
        &'state self,
        node: &'state str,
    ) -> impl Iterator<Item = (u32, &'state Vm)> + 'state {
        self.vms
            .iter()
            .filter(move |(_, vm)| vm.node == node)
            .map(|(vmid, vm)| (*vmid, vm))
    }

    /// The volumes of `storage` as `node` sees it (its own local storage, or the shared one).
    pub fn storage_volumes(&self, node: &str, storage: &str) -> Option<&BTreeMap<String, Volume>> {
        self.volumes.get(&volume_key(node, storage))
    }

    /// A volume by its full id `storage:name`, as `node` sees it.
    pub fn volume(&self, node: &str, volid: &str) -> Option<&Volume> {
        let (storage, name) = volid.split_once(':')?;
        self.storage_volumes(node, storage)?.get(name)
    }

    /// A volume by its full id, as `node` sees it (mutable).
    pub fn volume_mut(&mut self, node: &str, volid: &str) -> Option<&mut Volume> {
        let (storage, name) = volid.split_once(':')?;
        self.volumes
            .get_mut(&volume_key(node, storage))?
            .get_mut(name)
    }

    /// Adds or replaces a volume on `node`'s view of `storage`.
    pub fn put_volume(&mut self, node: &str, storage: &str, name: &str, volume: Volume) {
        self.volumes
            .entry(volume_key(node, storage))
            .or_default()
            .insert(name.to_owned(), volume);
    }

    /// Removes a volume by its full id; a missing volume is not an error (PVE warns).
    pub fn remove_volume(&mut self, node: &str, volid: &str) -> Option<Volume> {
        let (storage, name) = volid.split_once(':')?;
        self.volumes
            .get_mut(&volume_key(node, storage))?
            .remove(name)
    }

    /// The lowest free disk index `n` for `vm-{vmid}-disk-{n}` on `node`'s `storage`.
    pub fn free_disk_name(&self, node: &str, storage: &str, vmid: u32) -> String {
        let taken = self.storage_volumes(node, storage);
        (0..u32::MAX)
            .map(|index| format!("vm-{vmid}-disk-{index}"))
            .find(|name| {
                taken.is_none_or(|volumes| {
                    !volumes.contains_key(name)
                        && !volumes.keys().any(|key| key.ends_with(&format!("/{name}")))
                })
            })
            .unwrap_or_else(|| format!("vm-{vmid}-disk-0"))
    }

    /// Every volume `node` sees, as `(storage id, name, volume)`: its local storages and
    /// the shared one.
    pub fn visible_volumes<'state>(
        &'state self,
        node: &'state str,
    ) -> impl Iterator<Item = (&'state str, &'state String, &'state Volume)> + 'state {
        self.volumes.iter().flat_map(move |(key, volumes)| {
            let storage = match key.split_once('/') {
                Some((owner, storage)) if owner == node => Some(storage),
                Some(_) => None,
                None => Some(key.as_str()),
            };
            storage.into_iter().flat_map(move |storage| {
                volumes
                    .iter()
                    .map(move |(name, volume)| (storage, name, volume))
            })
        })
    }

    /// Brings a state saved by a single-node lab (before clusters existed) into the
    /// cluster layout: VMs without a node live on `first`, and the bare `local`/`local-lvm`
    /// volume maps become `first`'s.
    pub fn adopt_single_node(&mut self, first: &str) {
        for vm in self.vms.values_mut().filter(|vm| vm.node.is_empty()) {
            first.clone_into(&mut vm.node);
        }
        let legacy: Vec<String> = self
            .volumes
            .keys()
            .filter(|key| !key.contains('/') && !super::storage::is_shared(key))
            .cloned()
            .collect();
        for key in legacy {
            if let Some(volumes) = self.volumes.remove(&key) {
                self.volumes
                    .entry(format!("{first}/{key}"))
                    .or_default()
                    .extend(volumes);
            }
        }
    }

    /// The nodes this state has VMs or local volumes on.
    pub fn nodes_in_use(&self) -> BTreeSet<String> {
        let mut nodes: BTreeSet<String> = self.vms.values().map(|vm| vm.node.clone()).collect();
        nodes.extend(
            self.volumes
                .keys()
                .filter_map(|key| key.split_once('/').map(|(node, _)| node.to_owned())),
        );
        nodes
    }
}

/// Where a storage's volumes are kept: a node's local storage under `node/storage` (each
/// node has its own `local` and `local-lvm`), a shared storage under its id (one copy that
/// every node sees). Storage ids cannot contain `/`, so the two never clash.
pub(crate) fn volume_key(node: &str, storage: &str) -> String {
    if super::storage::is_shared(storage) {
        storage.to_owned()
    } else {
        format!("{node}/{storage}")
    }
}

/// PVE's message for a VM id without a config file.
pub(crate) fn missing_config(node: &str, vmid: u32) -> String {
    format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
}

/// One VM: its config file content and its simulated runtime.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Vm {
    /// The cluster node the VM lives on (its config is `nodes/NODE/qemu-server/ID.conf`).
    /// Empty only in a state saved before clusters; [`State::adopt_single_node`] fills it.
    #[serde(default)]
    pub node: String,
    /// The current config (`key: value` lines of `/etc/pve/qemu-server/ID.conf`).
    pub config: BTreeMap<String, String>,
    /// The `[PENDING]` section: values that apply at the next restart.
    #[serde(default)]
    pub pending: BTreeMap<String, String>,
    /// Keys whose deletion is pending.
    #[serde(default)]
    pub pending_delete: BTreeSet<String>,
    /// Cloud-init values used to generate the current cloud-init image (set at start).
    #[serde(default)]
    pub cloudinit: Option<BTreeMap<String, String>>,
    /// Set while the VM runs.
    #[serde(default)]
    pub run: Option<RunState>,
    /// The guest's SSH host public key line (generated with the VM, kept for its life).
    #[serde(default)]
    pub host_key: String,
    /// Guest-agent exec pids handed out so far.
    #[serde(default)]
    pub exec_pids: Vec<u32>,
}

impl Vm {
    /// Whether the config marks the VM as a template.
    pub fn is_template(&self) -> bool {
        self.config
            .get("template")
            .is_some_and(|value| value == "1")
    }

    /// The config lock (`clone`, `create`, ...), if any.
    pub fn lock(&self) -> Option<&str> {
        self.config.get("lock").map(String::as_str)
    }

    /// PVE's `check_lock`: fails with `VM is locked (LOCK)`.
    pub fn check_lock(&self) -> Result<(), String> {
        match self.lock() {
            Some(lock) => Err(format!("VM is locked ({lock})")),
            None => Ok(()),
        }
    }

    /// Whether the agent is enabled (`agent: 1` or `agent: enabled=1,...`).
    pub fn agent_enabled(&self) -> bool {
        self.config.get("agent").is_some_and(|value| {
            super::config::property_value(value, "enabled").is_some_and(|enabled| enabled == "1")
        })
    }

    /// Applies the pending section (what a stopped VM or a restart does).
    pub fn apply_pending(&mut self) {
        for key in std::mem::take(&mut self.pending_delete) {
            self.config.remove(&key);
        }
        let pending = std::mem::take(&mut self.pending);
        self.config.extend(pending);
    }
}

/// The runtime of a running VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// The simulated QEMU process id.
    pub pid: u32,
    /// Unix time (milliseconds) the VM started.
    pub started_ms: u64,
    /// Unix time (milliseconds) the guest agent answers from; `None`: never.
    pub agent_ready_ms: Option<u64>,
    /// The cloud-init values the guest booted with (`None`: no cloud-init drive).
    #[serde(default)]
    pub cloudinit: Option<BTreeMap<String, String>>,
}

/// One volume on a storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Volume {
    /// Virtual size in bytes.
    pub size: u64,
    /// `raw`, `qcow2`, `iso`, ...
    pub format: String,
    /// Content type: `images`, `import`, `iso`, ...
    pub content: String,
    /// Owner VM, for images.
    pub vmid: Option<u32>,
    /// Base volume for linked clones.
    pub parent: Option<String>,
    /// Creation time (unix seconds).
    pub ctime: u64,
}

/// `SplitMix64`: a tiny, stable, seedable generator.
///
/// Why not `rand`: the lab's generated values (MACs, UUIDs, host keys) must be the same for
/// the same seed across dependency upgrades, and the generator's state is persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SplitMix {
    pub state: u64,
}

impl SplitMix {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut value = self.state;
        value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        value ^ (value >> 31)
    }

    /// A uniform value in `[0, 1)`.
    pub fn next_fraction(&mut self) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "53 bits fit an f64 mantissa exactly"
        )]
        let fraction = (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
        fraction
    }

    /// `count` random bytes.
    pub fn bytes<const COUNT: usize>(&mut self) -> [u8; COUNT] {
        let mut out = [0_u8; COUNT];
        for chunk in out.chunks_mut(8) {
            let value = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&value[..chunk.len()]);
        }
        out
    }

    /// A MAC address with Proxmox's OUI (`BC:24:11`), as PVE generates for new NICs.
    pub fn mac(&mut self) -> String {
        let [a, b, c] = self.bytes::<3>();
        format!("BC:24:11:{a:02X}:{b:02X}:{c:02X}")
    }

    /// A random (version 4) UUID, lower case.
    pub fn uuid(&mut self) -> String {
        let mut bytes = self.bytes::<16>();
        bytes[6] = (bytes[6] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        let hex = hex::encode(bytes);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}
