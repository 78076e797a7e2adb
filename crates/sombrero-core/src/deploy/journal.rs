//! The clone journal: what a deploy started and may not have seen finish.
//!
//! Why: a clone takes minutes, and the VM it creates carries sombrero's marker only once
//! the clone task finishes. A deploy interrupted meanwhile (Ctrl-C, a killed CI job) left
//! a locked VM without the marker, and the re-run refused it as "not managed by
//! sombrero", contradicting "run the command again". So before the clone request is sent,
//! the deploy writes down which VM it is cloning, on which node, from which template; a
//! later run that finds that VM unmarked knows it is its own half-made VM, waits for the
//! clone's lock to go, and carries on. The entry is removed once the VM carries the marker
//! (and with the environment's outputs by `destroy`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::desired::Desired;
use super::outputs::Layout;

/// The journal file in the environment's outputs directory.
pub const JOURNAL_FILE: &str = ".clone-in-progress.json";

/// One clone this project started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneEntry {
    pub node: String,
    pub vmid: u32,
    pub template: u32,
    /// RFC 3339.
    pub started: String,
}

/// The environment's journal.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn for_desired(desired: &Desired) -> Self {
        let layout = Layout::new(&desired.outputs_dir, &desired.environment);
        Self {
            path: layout.environment_dir().join(JOURNAL_FILE),
        }
    }

    /// Writes the entry before the clone is requested.
    ///
    /// # Errors
    /// The file cannot be written: the clone is then not started, since an interruption
    /// would leave a VM no later run could recognise.
    pub fn record_clone(&self, entry: &CloneEntry) -> std::io::Result<()> {
        if let Some(directory) = self.path.parent() {
            std::fs::create_dir_all(directory)?;
        }
        let text = serde_json::to_vec_pretty(entry).map_err(std::io::Error::other)?;
        let temporary = self.path.with_extension("tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &self.path)
    }

    /// The clone started for `vmid` on `node`, if this project started one and did not
    /// see it finish.
    pub fn clone_of(&self, node: &str, vmid: u32) -> Option<CloneEntry> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let entry: CloneEntry = serde_json::from_str(&text).ok()?;
        (entry.node == node && entry.vmid == vmid).then_some(entry)
    }

    /// Removes the entry (the VM carries the marker now, or is gone).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::{CloneEntry, Journal};

    #[test]
    fn an_entry_names_one_vm_on_one_node_until_cleared() {
        let directory = tempfile::tempdir().unwrap();
        let journal = Journal {
            path: directory.path().join("staging/.clone-in-progress.json"),
        };
        assert_eq!(journal.clone_of("lloyd", 152), None);
        let entry = CloneEntry {
            node: "lloyd".into(),
            vmid: 152,
            template: 1001,
            started: "2026-12-04T16:00:00Z".into(),
        };
        journal.record_clone(&entry).unwrap();
        assert_eq!(journal.clone_of("lloyd", 152), Some(entry));
        assert_eq!(journal.clone_of("pve2", 152), None, "another node's VM 152");
        assert_eq!(journal.clone_of("lloyd", 150), None);
        journal.clear();
        assert_eq!(journal.clone_of("lloyd", 152), None);
    }
}
