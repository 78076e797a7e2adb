//! The QEMU backend: lab VMs as real QEMU machines booting a Debian image, configured by
//! cloud-init from their Proxmox settings. (State-only guests have no backend code: the
//! node answers for them from its state.) Also reachable as `pve_lab::guest`, its
//! earlier name.
//!
//! Why: state-only guests prove the API calls but not that a VM comes up with the right
//! address, user, key and hostname; real guests do, and let configuration and smoke
//! tests run against them. Everything here talks to local processes only: QEMU runs with
//! user-mode networking that reproduces the runbook's subnet inside QEMU, with outbound
//! traffic disabled (`restrict=on`) and SSH reached through a forward on 127.0.0.1.
//!
//! Parts: `image` (where the base image lives, the recipe hash), `build` (building it),
//! `docker_archive` (the busybox image `docker load` accepts), `seed_iso` (the cloud-init
//! `NoCloud` seed ISO, the one thing "seed" names in the lab's modules), `qmp` and `qga` (QEMU's two JSON protocols), `disks` (qcow2 files behind lab
//! volumes), `machine` (running QEMU processes), `probe` (does KVM really work, and what
//! `auto` picks).

pub mod build;
mod disks;
pub mod docker_archive;
pub mod image;
mod machine;
pub mod probe;
mod qga;
mod qmp;
mod seed_iso;
mod spec;

use std::sync::Arc;

pub use self::disks::DiskError;
pub use self::image::{Image, ImageStore};
pub use self::machine::QemuGuests;
pub use self::probe::{BackendChoice, GuestsRequest, choose_backend};
pub use self::qga::AgentError;
pub use self::spec::{Accelerator, ExitNotice, GuestError, MachineSpec, QemuOptions, SeedFiles};

/// Which guests a lab's VMs are.
#[derive(Debug, Clone, Default)]
pub enum Guests {
    /// Simulated from the config (no processes).
    #[default]
    State,
    /// QEMU machines.
    Qemu(Arc<QemuGuests>),
}

impl Guests {
    /// The QEMU backend, when the guests are real.
    pub fn qemu(&self) -> Option<&Arc<QemuGuests>> {
        match self {
            Self::State => None,
            Self::Qemu(guests) => Some(guests),
        }
    }

    /// `state` or `qemu`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Qemu(_) => "qemu",
        }
    }
}
