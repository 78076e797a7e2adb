//! The state a fresh node starts with.
//!
//! Why: the README's demo and the tests need a node that looks like a freshly installed
//! PVE host (storages `local` and `local-lvm`, a downloaded cloud image) and, on request,
//! the golden template 1001 that stage 1 would have built, so stage 2 can run before
//! stage 1 exists. In a cluster every member is such a host (each has the cloud image in
//! its own `local`); the template lives on the first node, on `local-lvm` or `shared`.

use std::collections::BTreeMap;

use super::NodeOptions;
use super::agent::generate_host_key;
use super::state::{SplitMix, State, Vm, Volume};

/// The cloud image a fresh node has in `local` import content.
pub(crate) const BASE_IMAGE: &str = "import/debian-12-genericcloud-amd64.qcow2";

/// The id of the template a fresh node can start with.
pub(crate) const TEMPLATE_ID: u32 = 1001;

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// A fresh node's state.
pub(crate) fn fresh(options: &NodeOptions) -> State {
    let now = super::unix_seconds();
    let mut state = State {
        next_pid: 4_000 + u32::try_from(options.seed % 20_000).unwrap_or(0),
        boot_time: now.saturating_sub(3 * 24 * 3600),
        random: SplitMix::new(options.seed),
        ..State::default()
    };
    add_missing_nodes(&mut state, options);
    if options.with_template {
        add_template(&mut state, options, now);
    }
    state
}

/// Gives every member without one the cloud image a fresh PVE host has in `local` (a
/// saved state reloaded with more `--nodes` than it was saved with).
pub(crate) fn add_missing_nodes(state: &mut State, options: &NodeOptions) {
    let now = super::unix_seconds();
    for node in options.cluster_nodes() {
        if state.storage_volumes(&node, "local").is_some() {
            continue;
        }
        state.put_volume(
            &node,
            "local",
            BASE_IMAGE,
            Volume {
                size: 3 * GIB,
                format: "qcow2".to_owned(),
                content: "import".to_owned(),
                vmid: None,
                parent: None,
                ctime: now.saturating_sub(86_400),
            },
        );
    }
}

fn add_template(state: &mut State, options: &NodeOptions, now: u64) {
    let vmid = TEMPLATE_ID;
    let node = options.name.as_str();
    let storage = options.template_storage();
    let disk = format!("base-{vmid}-disk-0");
    let cloudinit = format!("vm-{vmid}-cloudinit");
    let format = if storage == "local-lvm" {
        "raw"
    } else {
        "qcow2"
    };
    state.put_volume(node, storage, &disk, image(3584 * MIB, format, vmid, now));
    state.put_volume(node, storage, &cloudinit, image(4 * MIB, "raw", vmid, now));
    let mac = state.random.mac();
    let uuid = state.random.uuid();
    let generation = state.random.uuid();
    let name = "ubuntu-server-numbat-docker";
    let entries = [
        ("agent", "1".to_owned()),
        ("boot", "order=scsi0;ide2;net0".to_owned()),
        ("cores", "2".to_owned()),
        ("cpu", "host".to_owned()),
        (
            "description",
            "Golden image built by sombrero build (Packer-compatible)".to_owned(),
        ),
        ("ide2", format!("{storage}:{cloudinit},media=cdrom")),
        ("memory", "2048".to_owned()),
        ("meta", format!("creation-qemu=9.2.0,ctime={now}")),
        ("name", name.to_owned()),
        ("net0", format!("virtio={mac},bridge=vmbr0,firewall=0")),
        ("numa", "0".to_owned()),
        ("ostype", "l26".to_owned()),
        (
            "scsi0",
            format!("{storage}:{disk},discard=on,iothread=1,size=3584M"),
        ),
        ("scsihw", "virtio-scsi-single".to_owned()),
        ("serial0", "socket".to_owned()),
        ("smbios1", format!("uuid={uuid}")),
        ("sockets", "1".to_owned()),
        ("tags", "packer-built;ubuntu-24-04".to_owned()),
        ("template", "1".to_owned()),
        ("vga", "serial0".to_owned()),
        ("vmgenid", generation),
    ];
    let config: BTreeMap<String, String> = entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    let host_key = generate_host_key(&mut state.random, name);
    state.vms.insert(
        vmid,
        Vm {
            node: node.to_owned(),
            config,
            host_key,
            ..Vm::default()
        },
    );
}

/// A VM image volume.
pub(crate) fn image(size: u64, format: &str, vmid: u32, ctime: u64) -> Volume {
    Volume {
        size,
        format: format.to_owned(),
        content: "images".to_owned(),
        vmid: Some(vmid),
        parent: None,
        ctime,
    }
}
