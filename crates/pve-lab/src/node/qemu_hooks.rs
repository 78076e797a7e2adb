//! The node's hooks into the QEMU backend: what a task does to real guests in qemu mode.
//!
//! Why: the handlers keep PVE's bookkeeping (locks, tasks, volumes, pending values) for
//! both kinds of guests; in qemu mode they also call these hooks, which translate the
//! VM's config into a machine (memory, cores, boot disk, MAC, the address cloud-init
//! configures, the seed generated exactly like `.../cloudinit/dump` shows it); the agent
//! endpoints are in `agent::qemu`. For state-only guests every hook does nothing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::config::{drive_is_cdrom, is_drive_key, parse_drive, parse_properties};
use super::{Node, Shared};
use crate::qemu::{MachineSpec, QemuGuests, SeedFiles};

impl Node {
    /// The guests behind this node's VMs.
    pub fn guests(&self) -> &crate::qemu::Guests {
        &self.shared.options.guests
    }

    /// What `GET /lab/guests` answers: the kind of guests, the accelerator and the import
    /// volume that holds the guest base image.
    pub fn guests_summary(&self) -> serde_json::Value {
        let qemu = self.guests().qemu();
        serde_json::json!({
            "guests": self.guests().name(),
            "accelerator": qemu.map(|guests| guests.accelerator().name()),
            "base_image": format!("local:{}", super::initial_state::BASE_IMAGE),
        })
    }

    /// The 127.0.0.1 address forwarding to VM `vmid`'s SSH port: `Ok(None)` for a
    /// state-only guest or a stopped VM.
    ///
    /// # Errors
    /// PVE's missing-config message when the VM does not exist.
    pub fn ssh_forward(&self, vmid: u32) -> Result<Option<SocketAddr>, String> {
        // A VM is found on whichever node it lives: the forward belongs to its QEMU
        // process, which a migration keeps (decision 112).
        let node = self
            .shared
            .read(|state| state.vms.get(&vmid).map(|vm| vm.node.clone()));
        if node.is_none() {
            return Err(super::state::missing_config(
                &self.shared.options.name,
                vmid,
            ));
        }
        Ok(self
            .guests()
            .qemu()
            .and_then(|guests| guests.ssh_forward(vmid)))
    }

    /// After a restart on a saved state: no VM runs (a previous lab's QEMU processes were
    /// reaped), so qemu mode marks every VM stopped.
    pub fn forget_previous_guests(&self) {
        if self.guests().qemu().is_some() {
            self.shared.write(|state| {
                for vm in state.vms.values_mut() {
                    vm.run = None;
                }
            });
        }
    }

    /// Stops every QEMU process (the lab is shutting down).
    pub async fn stop_guests(&self) {
        if let Some(guests) = self.guests().qemu() {
            guests.stop_all().await;
        }
    }
}

impl super::NodeOptions {
    /// Sets the guests. With real guests, the tasks whose work is now real (start, stop,
    /// shutdown, reboot, clones, resize, destroy, template) take the time that work takes
    /// instead of a simulated duration.
    pub fn set_guests(&mut self, guests: crate::qemu::Guests) {
        if guests.qemu().is_some() {
            let durations = &mut self.durations;
            for duration in [
                &mut durations.start,
                &mut durations.stop,
                &mut durations.shutdown,
                &mut durations.reboot,
                &mut durations.clone_full,
                &mut durations.clone_linked,
                &mut durations.resize,
                &mut durations.destroy,
                &mut durations.template,
            ] {
                *duration = Duration::ZERO;
            }
        }
        self.guests = guests;
    }
}

fn qemu(shared: &Shared) -> Option<&Arc<QemuGuests>> {
    shared.options.guests.qemu()
}

/// The boot disk's config key: the first disk of the boot order, else the first disk.
fn boot_disk(config: &BTreeMap<String, String>) -> Option<String> {
    let is_disk = |key: &String| {
        is_drive_key(key)
            && config.get(key).is_some_and(|value| {
                let (file, options) = parse_drive(value);
                !drive_is_cdrom(&options) && !file.contains("cloudinit") && file.contains(':')
            })
    };
    super::vm::boot_order(config)
        .into_iter()
        .find(|key| is_disk(key))
        .or_else(|| config.keys().find(|key| is_disk(key)).cloned())
}

/// The address eth0 gets from `ipconfig0` (static), else the first DHCP lease QEMU hands
/// out (`dhcpstart`).
fn guest_address(config: &BTreeMap<String, String>) -> Ipv4Addr {
    config
        .get("ipconfig0")
        .and_then(|ipconfig| {
            parse_properties(ipconfig, "ip")
                .into_iter()
                .find(|(key, _)| key == "ip")
                .and_then(|(_, cidr)| cidr.split('/').next().and_then(|ip| ip.parse().ok()))
        })
        .unwrap_or(Ipv4Addr::new(192, 168, 10, 100))
}

/// Boots VM `vmid`'s machine from its config (pending values applied, as the start does);
/// returns the QEMU pid, `None` in state mode.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    node: &str,
    vmid: u32,
) -> Result<Option<u32>, String> {
    let Some(guests) = qemu(shared) else {
        return Ok(None);
    };
    let (config, disk) = shared.read(|state| {
        let vm = state.vm(node, vmid)?;
        let mut preview = vm.clone();
        preview.apply_pending();
        let key = boot_disk(&preview.config).ok_or("no bootable disk")?;
        let volid = parse_drive(preview.config.get(&key).map_or("", String::as_str)).0;
        let volume = state.volume(node, &volid);
        let size = volume.map_or(0, |volume| volume.size);
        let parent = volume.and_then(|volume| volume.parent.clone());
        Ok::<_, String>((preview.config, (volid, size, parent)))
    })?;
    let (volid, size, parent) = disk;
    let disk = guests
        .ensure_disk(&volid, size, parent.as_deref())
        .await
        .map_err(|error| format!("disk {volid}: {}", error_chain(&error)))?;
    let has_cloudinit = config
        .iter()
        .any(|(key, value)| is_drive_key(key) && parse_drive(value).0.contains("cloudinit"));
    let seed = has_cloudinit.then(|| {
        let files = super::cloudinit::generate(vmid, &config);
        SeedFiles {
            user: files.user,
            network: files.network,
            meta: files.meta,
            vendor: String::new(),
        }
    });
    let spec = MachineSpec {
        vmid,
        memory_mib: super::vm::memory_bytes(&config) / (1024 * 1024),
        cores: u32::try_from(super::vm::cpu_count(&config)).unwrap_or(1),
        disk,
        mac: config
            .get("net0")
            .and_then(|net| super::agent::net_mac(net)),
        guest_address: guest_address(&config),
        seed,
    };
    let weak: Weak<Shared> = Arc::downgrade(shared);
    let on_exit = Box::new(move |notice: crate::qemu::ExitNotice| {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        // By vmid alone: the VM may have migrated to another node since it started.
        shared.write(|state| {
            if let Some(vm) = state.vms.get_mut(&notice.vmid)
                && vm.run.as_ref().is_some_and(|run| run.pid == notice.pid)
            {
                vm.run = None;
                vm.apply_pending();
            }
        });
    });
    let pid = guests
        .start(&spec, on_exit)
        .await
        .map_err(|error| format!("start failed: {}", error_chain(&error)))?;
    Ok(Some(pid))
}

/// Records the QEMU pid in the run state; the agent's readiness is the real agent's.
pub(crate) fn booted(state: &mut super::state::State, node: &str, vmid: u32, pid: Option<u32>) {
    let Some(pid) = pid else {
        return;
    };
    if let Ok(vm) = state.vm_mut(node, vmid)
        && let Some(run) = vm.run.as_mut()
    {
        run.pid = pid;
        run.agent_ready_ms = Some(run.started_ms);
    }
}

/// `stop` (quit) or `shutdown` (ACPI, at most `timeout`, then quit when `force`).
pub(crate) async fn stop(
    shared: &Shared,
    vmid: u32,
    graceful: bool,
    timeout: Duration,
    force: bool,
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    if graceful {
        let stopped = guests
            .shutdown(vmid, timeout)
            .await
            .map_err(|error| error_chain(&error))?;
        if stopped {
            return Ok(());
        }
        if !force {
            return Err("VM quit/powerdown failed - got timeout".to_owned());
        }
    }
    guests.stop(vmid).await.map_err(|error| error_chain(&error))
}

/// A full clone's disks: flattened copies (linked clones get overlays at their start).
pub(crate) async fn clone_disks(
    shared: &Shared,
    copies: &[(String, Option<String>, String)],
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    for (source, source_parent, target) in copies {
        guests
            .copy_disk(source, source_parent.as_deref(), target)
            .await
            .map_err(|error| format!("clone of {source} failed: {}", error_chain(&error)))?;
    }
    Ok(())
}

/// Template conversion: each renamed volume's file becomes the read-only base.
pub(crate) async fn make_base(
    shared: &Shared,
    renames: &[(String, String, String)],
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    for (storage, old, new) in renames {
        guests
            .make_base(&format!("{storage}:{old}"), &format!("{storage}:{new}"))
            .await
            .map_err(|error| error_chain(&error))?;
    }
    Ok(())
}

/// Grows a disk's file (or, running, the guest's disk through QMP).
pub(crate) async fn resize(
    shared: &Shared,
    vmid: u32,
    volid: &str,
    size: u64,
) -> Result<(), String> {
    let Some(guests) = qemu(shared) else {
        return Ok(());
    };
    guests
        .resize_disk(vmid, volid, size)
        .await
        .map_err(|error| error_chain(&error))
}

/// Removes destroyed volumes' files.
pub(crate) async fn remove_disks(shared: &Shared, volumes: &[String]) {
    let Some(guests) = qemu(shared) else {
        return;
    };
    for volid in volumes {
        if let Err(error) = guests.remove_disk(volid).await {
            tracing::warn!(volid, error = %error_chain(&error), "cannot remove a disk file");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn the_boot_disk_follows_the_boot_order_and_skips_cloudinit() {
        let vm = config(&[
            ("boot", "order=scsi0;ide2;net0"),
            ("ide2", "local-lvm:vm-100-cloudinit,media=cdrom"),
            ("scsi0", "local-lvm:vm-100-disk-0,size=8G"),
        ]);
        assert_eq!(boot_disk(&vm).as_deref(), Some("scsi0"));
        let no_order = config(&[
            ("ide2", "local-lvm:vm-100-cloudinit,media=cdrom"),
            ("virtio0", "local-lvm:vm-100-disk-1"),
        ]);
        assert_eq!(boot_disk(&no_order).as_deref(), Some("virtio0"));
    }

    /// The seed a deploy's settings produce, in qemu-server's exact `NoCloud` format
    /// (`Cloudinit.pm`: `cloudinit_userdata`, `nocloud_network`, instance-id = sha1 of
    /// user-data followed by network-config).
    #[test]
    fn the_seed_is_what_proxmox_writes_for_a_deploy() {
        let vm = config(&[
            ("name", "jump-man"),
            ("ciuser", "ansible"),
            (
                "sshkeys",
                "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIH%2B%2Fx%3D%20ansible%40jump-man%0A",
            ),
            ("ipconfig0", "ip=192.168.10.250/24,gw=192.168.10.1"),
            ("nameserver", "192.168.10.1"),
            ("searchdomain", "example.internal"),
            ("net0", "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=0"),
            ("ide2", "local-lvm:vm-150-cloudinit,media=cdrom"),
        ]);
        let files = super::super::cloudinit::generate(150, &vm);
        assert_eq!(
            files.user,
            "#cloud-config\nhostname: jump-man\nmanage_etc_hosts: true\n\
             fqdn: jump-man.example.internal\nuser: ansible\nssh_authorized_keys:\n  \
             - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+/x= ansible@jump-man\nchpasswd:\n  \
             expire: False\nusers:\n  - default\npackage_upgrade: true\n"
        );
        assert_eq!(
            files.network,
            "version: 1\nconfig:\n    - type: physical\n      name: eth0\n      \
             mac_address: 'bc:24:11:aa:bb:cc'\n      subnets:\n      - type: static\n        \
             address: '192.168.10.250'\n        netmask: '255.255.255.0'\n        \
             gateway: '192.168.10.1'\n    - type: nameserver\n      address:\n      \
             - '192.168.10.1'\n      search:\n      - 'example.internal'\n"
        );
        let digest = {
            use sha1::Digest as _;
            hex::encode(sha1::Sha1::digest(format!(
                "{}{}",
                files.user, files.network
            )))
        };
        assert_eq!(files.meta, format!("instance-id: {digest}\n"));
        let mut changed = vm.clone();
        changed.insert(
            "ipconfig0".into(),
            "ip=192.168.10.251/24,gw=192.168.10.1".into(),
        );
        assert_ne!(
            super::super::cloudinit::generate(150, &changed).meta,
            files.meta
        );
    }

    #[test]
    fn the_forward_targets_the_static_address_or_the_first_lease() {
        let fixed = config(&[("ipconfig0", "ip=192.168.10.251/24,gw=192.168.10.1")]);
        assert_eq!(guest_address(&fixed), Ipv4Addr::new(192, 168, 10, 251));
        let dhcp = config(&[("ipconfig0", "ip=dhcp")]);
        assert_eq!(guest_address(&dhcp), Ipv4Addr::new(192, 168, 10, 100));
    }
}
