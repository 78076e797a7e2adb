//! Data types of the PVE API, free of IO.
//!
//! Why a separate module tree: these are the types the lab shares with the client and the
//! stages read, and they carry all of PVE's encoding quirks (UPIDs, property strings,
//! sizes, `sshkeys`, 0/1 booleans) so nothing else has to.

pub mod agent;
pub mod cluster;
pub mod config;
pub mod devices;
pub mod ipconfig;
pub mod property;
pub mod size;
pub mod sshkeys;
pub mod task;
pub mod upid;
pub mod vm;

pub use agent::{
    ExecStarted, ExecStatus, FileRead, GuestInterface, GuestInterfaces, select_address,
};
pub use cluster::ClusterStatusEntry;
pub use config::{ConfigUpdate, VmConfig};
pub use devices::{AgentConfig, Disk, Memory, NetDevice};
pub use ipconfig::{IpConfig, Ipv4Setting, Ipv6Setting};
pub use property::{PropertyError, PropertyString};
pub use size::{DiskSize, SizeParseError};
pub use sshkeys::{decode_sshkeys, encode_sshkeys};
pub use task::{ExitStatus, TaskLogLine, TaskState, TaskStatus, TaskSummary};
pub use upid::{Upid, UpidParseError};
pub use vm::{
    CloudinitEntry, ClusterResource, NodeSummary, ResourceType, StorageContent, StorageSummary,
    Version, VmState, VmStatus, VmSummary,
};
