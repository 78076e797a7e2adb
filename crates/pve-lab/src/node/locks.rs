//! Lock files like PVE's: per-VM config locks and per-storage allocation locks.
//!
//! Why: PVE serializes operations with `flock`s (`/var/lock/qemu-server/lock-ID.conf`,
//! `/var/lock/pve-manager/pve-storage-ID`) and gives up after about 10 s with
//! `can't lock file '...' - got timeout`, one of the failures clients hit most under
//! parallel work. A clone holds its (stopped) source SHARED, so parallel clones of one
//! template proceed together; anything else holds a VM exclusively.
//!
//! Once a task holds a VM's lock file it reads the VM and checks its `lock` property
//! (`VM is locked (clone)`), like qemu-server's workers: [`read_checked`] is that step.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::Shared;
use super::state::{State, Vm};

/// Whether others may hold the same lock at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

#[derive(Debug)]
struct Holders {
    exclusive: bool,
    count: usize,
}

/// The locks currently held, by lock file path.
#[derive(Debug, Default)]
pub(crate) struct LockTable {
    holders: Mutex<BTreeMap<String, Holders>>,
}

impl LockTable {
    /// Takes the lock if it is free (or shared and wanted shared).
    pub fn try_acquire(&self, key: &str, mode: LockMode) -> bool {
        let mut holders = self.holders.lock();
        match holders.get_mut(key) {
            None => {
                holders.insert(
                    key.to_owned(),
                    Holders {
                        exclusive: mode == LockMode::Exclusive,
                        count: 1,
                    },
                );
                true
            }
            Some(held) if mode == LockMode::Shared && !held.exclusive => {
                held.count += 1;
                true
            }
            Some(_) => false,
        }
    }

    /// Releases one hold of the lock.
    pub fn release(&self, key: &str) {
        let mut holders = self.holders.lock();
        if let Some(held) = holders.get_mut(key) {
            held.count = held.count.saturating_sub(1);
            if held.count == 0 {
                holders.remove(key);
            }
        }
    }
}

/// The config lock file of a VM.
pub(crate) fn vm_lock(vmid: u32) -> String {
    format!("/var/lock/qemu-server/lock-{vmid}.conf")
}

/// The allocation lock file of a storage.
pub(crate) fn storage_lock(storage: &str) -> String {
    format!("/var/lock/pve-manager/pve-storage-{storage}")
}

/// PVE's message when a lock cannot be taken in time.
pub(crate) fn timeout_message(key: &str) -> String {
    format!("can't lock file '{key}' - got timeout")
}

/// What a task verifies when it reads the VM whose lock file it holds, in qemu-server's
/// order: the config `digest` the client sent (when it sent one), then the VM's `lock`
/// property unless `skiplock` (root only, refused at dispatch for anyone else).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConfigChecks<'digest> {
    pub digest: Option<&'digest str>,
    pub skiplock: bool,
}

/// Reads VM `vmid` in a task that holds its lock file: PVE's missing-config error, then
/// the `checks`, then `inspect` on the same snapshot of the state.
///
/// # Errors
/// The VM is gone, its digest changed (`checksum mismatch (file change by other
/// user?)`), it is locked (`VM is locked (LOCK)`), or `inspect` failed.
pub(crate) fn read_checked<R>(
    shared: &Shared,
    node: &str,
    vmid: u32,
    checks: ConfigChecks<'_>,
    inspect: impl FnOnce(&State, &Vm) -> Result<R, String>,
) -> Result<R, String> {
    shared.read(|state| {
        let vm = state.vm(node, vmid)?;
        if checks
            .digest
            .is_some_and(|digest| digest != super::config::digest(vm))
        {
            return Err("checksum mismatch (file change by other user?)".to_owned());
        }
        if !checks.skiplock {
            vm.check_lock()?;
        }
        inspect(state, vm)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_exclude_exclusive_ones() {
        let table = LockTable::default();
        assert!(table.try_acquire("a", LockMode::Shared));
        assert!(table.try_acquire("a", LockMode::Shared));
        assert!(!table.try_acquire("a", LockMode::Exclusive));
        table.release("a");
        table.release("a");
        assert!(table.try_acquire("a", LockMode::Exclusive));
        assert!(!table.try_acquire("a", LockMode::Shared));
    }
}
