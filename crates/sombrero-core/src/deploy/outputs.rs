//! Stage 2's outputs: `terraform-outputs.json` and `inventory.yml`, per environment, plus
//! the runbook's top-level copies for the environment deployed last.
//!
//! Why this layout: stage 3 and the runbook's scripts read
//! `deployments/outputs/terraform-outputs.json`, but three environments must not clobber
//! each other. Each environment owns `deployments/outputs/<env>/` (outputs, inventory,
//! `known_hosts`); the top-level files are copies of the last deployed environment's, and
//! `destroy` removes them only when they belong to the environment it destroys.
//! Documented in docs/outputs.md.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{DeployError, DeployResult};

/// The runbook's file name.
pub const OUTPUTS_FILE: &str = "terraform-outputs.json";
/// The inventory's file name.
pub const INVENTORY_FILE: &str = "inventory.yml";
/// The pinned host keys' file name.
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

/// `terraform-outputs.json`: the runbook's keys (with its string ids) plus sombrero's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageOutputs {
    pub vm_ip: String,
    pub vm_hostname: String,
    /// A string, as in the runbook's example (`"150"`).
    pub vm_id: String,
    pub ssh_user: String,
    /// The private key file found for the VM's public key (`null`: held by the ssh-agent,
    /// or none found at deploy time).
    pub ssh_key_path: Option<String>,
    /// An object (never a JSON string inside JSON).
    pub ansible_inventory: Value,
    pub node: String,
    /// A string like `vm_id` (`null` when unknown, e.g. an adopted VM).
    pub template_id: Option<String>,
    pub environment: String,
    /// Where SSH is reached: the VM's address, or 127.0.0.1 for a lab forward.
    pub ssh_host: String,
    pub ssh_port: u16,
    /// The `known_hosts` file holding the VM's pinned host key.
    pub known_hosts_file: String,
    /// The inventory file Ansible reads.
    pub inventory_file: String,
    /// RFC 3339 time of the deploy that wrote this.
    pub deployed_at: String,
}

/// The files of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub outputs_dir: PathBuf,
    pub environment: String,
}

impl Layout {
    pub fn new(outputs_dir: &Path, environment: &str) -> Self {
        Self {
            outputs_dir: outputs_dir.to_path_buf(),
            environment: environment.to_owned(),
        }
    }

    /// `deployments/outputs/<env>/`.
    pub fn environment_dir(&self) -> PathBuf {
        self.outputs_dir.join(&self.environment)
    }

    pub fn outputs(&self) -> PathBuf {
        self.environment_dir().join(OUTPUTS_FILE)
    }

    pub fn inventory(&self) -> PathBuf {
        self.environment_dir().join(INVENTORY_FILE)
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.environment_dir().join(KNOWN_HOSTS_FILE)
    }

    /// The runbook's `deployments/outputs/terraform-outputs.json`.
    pub fn top_outputs(&self) -> PathBuf {
        self.outputs_dir.join(OUTPUTS_FILE)
    }

    /// `deployments/outputs/inventory.yml`.
    pub fn top_inventory(&self) -> PathBuf {
        self.outputs_dir.join(INVENTORY_FILE)
    }
}

/// An absolute form of `path` (relative to the working directory), for files other tools
/// read from elsewhere.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Replaces `path` with `text` atomically (a temporary file in the same directory, renamed).
pub(crate) fn write_atomically(path: &Path, text: &str) -> DeployResult<()> {
    let failed = |source| DeployError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.persist(path).map_err(|error| failed(error.error))?;
    Ok(())
}

/// Writes the environment's outputs and inventory, and the top-level copies.
///
/// # Errors
/// [`DeployError::Write`].
pub fn write(layout: &Layout, outputs: &StageOutputs, inventory_yaml: &str) -> DeployResult<()> {
    let json = serde_json::to_string_pretty(outputs).unwrap_or_default() + "\n";
    write_atomically(&layout.inventory(), inventory_yaml)?;
    write_atomically(&layout.outputs(), &json)?;
    write_atomically(&layout.top_inventory(), inventory_yaml)?;
    write_atomically(&layout.top_outputs(), &json)?;
    Ok(())
}

/// Whether the top-level copies are this environment's (it was deployed last).
fn top_is_ours(layout: &Layout) -> bool {
    std::fs::read_to_string(layout.top_outputs())
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|value| value["environment"] == layout.environment.as_str())
}

/// Rewrites the environment's outputs and inventory for a VM that moved to `node` (the
/// address, port and pinned host key stay: a migration does not change them); the
/// top-level copies only when they are this environment's. Returns the files written;
/// none when the environment has no outputs.
///
/// # Errors
/// [`DeployError::Write`].
pub fn rewrite_node(layout: &Layout, node: &str) -> DeployResult<Vec<PathBuf>> {
    let Some(mut outputs) = read(layout) else {
        return Ok(Vec::new());
    };
    node.clone_into(&mut outputs.node);
    if let Some(hosts) = outputs.ansible_inventory["all"]["hosts"].as_object_mut() {
        for host in hosts.values_mut() {
            if let Some(vars) = host.as_object_mut() {
                vars.insert("proxmox_node".to_owned(), Value::from(node));
            }
        }
    }
    let yaml = super::inventory::to_yaml(&outputs.ansible_inventory, &layout.environment);
    let json = serde_json::to_string_pretty(&outputs).unwrap_or_default() + "\n";
    let mut written = vec![layout.inventory(), layout.outputs()];
    write_atomically(&layout.inventory(), &yaml)?;
    write_atomically(&layout.outputs(), &json)?;
    let top_is_ours = top_is_ours(layout);
    if top_is_ours {
        write_atomically(&layout.top_inventory(), &yaml)?;
        write_atomically(&layout.top_outputs(), &json)?;
        written.extend([layout.top_inventory(), layout.top_outputs()]);
    }
    Ok(written)
}

/// Reads the environment's outputs; `None` when it has none.
pub fn read(layout: &Layout) -> Option<StageOutputs> {
    let text = std::fs::read_to_string(layout.outputs()).ok()?;
    serde_json::from_str(&text).ok()
}

/// Removes the environment's directory, and the top-level files when they are its copies.
/// Returns the paths removed.
///
/// # Errors
/// [`DeployError::Write`] when a file exists but cannot be removed.
pub fn remove(layout: &Layout) -> DeployResult<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Write { path, source }
    };
    let top_is_ours = top_is_ours(layout);
    if top_is_ours {
        for path in [layout.top_outputs(), layout.top_inventory()] {
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(failed(&path)(error)),
            }
        }
    }
    let dir = layout.environment_dir();
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => removed.push(dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(failed(&dir)(error)),
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::{Layout, StageOutputs, read, remove, write};
    use serde_json::json;

    fn outputs(environment: &str) -> StageOutputs {
        StageOutputs {
            vm_ip: "192.168.10.252".into(),
            vm_hostname: "jump-man".into(),
            vm_id: "152".into(),
            ssh_user: "ansible".into(),
            ssh_key_path: Some("~/.ssh/jump-man-key".into()),
            ansible_inventory: json!({"all": {}}),
            node: "lloyd".into(),
            template_id: Some("1001".into()),
            environment: environment.into(),
            ssh_host: "192.168.10.252".into(),
            ssh_port: 22,
            known_hosts_file: "/x/known_hosts".into(),
            inventory_file: "/x/inventory.yml".into(),
            deployed_at: "2026-11-26T13:00:00Z".into(),
        }
    }

    #[test]
    fn environments_do_not_clobber_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Layout::new(dir.path(), "staging");
        let production = Layout::new(dir.path(), "production");
        write(&production, &outputs("production"), "# p\n").unwrap();
        write(&staging, &outputs("staging"), "# s\n").unwrap();
        assert_eq!(read(&production).unwrap().environment, "production");
        // The top level is the last deployed environment's.
        let top = std::fs::read_to_string(staging.top_outputs()).unwrap();
        assert!(top.contains("\"environment\": \"staging\""));
        // Destroying production keeps staging's top-level files.
        remove(&production).unwrap();
        assert!(read(&production).is_none());
        assert!(staging.top_outputs().exists() && read(&staging).is_some());
        remove(&staging).unwrap();
        assert!(!staging.top_outputs().exists() && !staging.top_inventory().exists());
    }
}
