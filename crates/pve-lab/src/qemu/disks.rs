//! The qcow2 files behind the lab's disk volumes in qemu mode.
//!
//! Why: a lab volume (`local-lvm:vm-100-disk-0`) is bookkeeping in the node's state; a
//! real guest needs a file. Files live under `<work>/disks/<storage>/<name>.qcow2`. A
//! volume without a parent (the starting template's disk, an imported cloud image) is a
//! thin overlay on the cached base image, which is never written; a linked clone is an
//! overlay on its template's disk (made read-only when the template was converted); a
//! full clone is a flattened copy. Files are created when first needed, so a volume that
//! no guest ever boots costs nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use super::machine::QemuGuests;
use super::qmp::Qmp;
use super::spec::GuestError;

/// Why a disk operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    #[error("qemu-img {action} failed: {message}")]
    QemuImg { action: String, message: String },
    #[error("cannot run qemu-img (apt-get install qemu-utils)")]
    Spawn(#[source] std::io::Error),
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the volume {0} has no file and no base to create it from")]
    NoBase(String),
}

/// Where the disk files live.
#[derive(Debug, Clone)]
pub(crate) struct DiskStore {
    root: PathBuf,
}

async fn qemu_img(action: &str, arguments: &[&std::ffi::OsStr]) -> Result<String, DiskError> {
    let output = tokio::process::Command::new("qemu-img")
        .arg(action)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(DiskError::Spawn)?;
    if !output.status.success() {
        return Err(DiskError::QemuImg {
            action: action.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl DiskStore {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The file of a volume id (`storage:name`; a `/` in the name becomes `__`).
    pub fn path(&self, volid: &str) -> PathBuf {
        let (storage, name) = volid.split_once(':').unwrap_or(("local", volid));
        self.root
            .join(storage)
            .join(format!("{}.qcow2", name.replace('/', "__")))
    }

    /// The virtual size of a qcow2 file in bytes.
    pub async fn virtual_size(path: &Path) -> Result<u64, DiskError> {
        let text = qemu_img(
            "info",
            &["--output=json".as_ref(), "-U".as_ref(), path.as_os_str()],
        )
        .await?;
        let info: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| DiskError::QemuImg {
                action: "info".to_owned(),
                message: error.to_string(),
            })?;
        Ok(info
            .get("virtual-size")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0))
    }

    /// Makes sure `volid`'s file exists and is at least `size` bytes: an overlay on
    /// `backing` (the parent volume's file, or the base image) when it is new.
    pub async fn ensure(
        &self,
        volid: &str,
        size: u64,
        backing: &Path,
    ) -> Result<PathBuf, DiskError> {
        let path = self.path(volid);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            self.grow(&path, size).await?;
            return Ok(path);
        }
        let io = |action| {
            let path = path.clone();
            move |source| DiskError::Io {
                action,
                path,
                source,
            }
        };
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io("create the directory of"))?;
        }
        let backing_size = Self::virtual_size(backing).await?;
        let size = size.max(backing_size).to_string();
        qemu_img(
            "create",
            &[
                "-q".as_ref(),
                "-f".as_ref(),
                "qcow2".as_ref(),
                "-F".as_ref(),
                "qcow2".as_ref(),
                "-b".as_ref(),
                backing.as_os_str(),
                path.as_os_str(),
                size.as_ref(),
            ],
        )
        .await?;
        Ok(path)
    }

    /// Grows a file to `size` bytes when it is smaller (never shrinks).
    pub async fn grow(&self, path: &Path, size: u64) -> Result<(), DiskError> {
        if Self::virtual_size(path).await? < size {
            let size = size.to_string();
            qemu_img("resize", &["-q".as_ref(), path.as_os_str(), size.as_ref()]).await?;
        }
        Ok(())
    }

    /// A full clone: a flattened copy of `source` as `target`'s file.
    pub async fn copy(&self, source: &Path, target_volid: &str) -> Result<PathBuf, DiskError> {
        let path = self.path(target_volid);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| DiskError::Io {
                    action: "create the directory of",
                    path: path.clone(),
                    source,
                })?;
        }
        qemu_img(
            "convert",
            &[
                "-q".as_ref(),
                "-U".as_ref(),
                "-O".as_ref(),
                "qcow2".as_ref(),
                source.as_os_str(),
                path.as_os_str(),
            ],
        )
        .await?;
        Ok(path)
    }

    /// Template conversion: the file follows its volume's new name and becomes read-only
    /// (linked clones' overlays sit on it from now on).
    pub async fn make_base(&self, old_volid: &str, new_volid: &str) -> Result<(), DiskError> {
        let old = self.path(old_volid);
        if !tokio::fs::try_exists(&old).await.unwrap_or(false) {
            return Ok(());
        }
        let new = self.path(new_volid);
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| DiskError::Io {
                action,
                path,
                source,
            }
        };
        tokio::fs::rename(&old, &new)
            .await
            .map_err(io("rename", &old))?;
        let mut permissions = tokio::fs::metadata(&new)
            .await
            .map_err(io("read", &new))?
            .permissions();
        permissions.set_readonly(true);
        tokio::fs::set_permissions(&new, permissions)
            .await
            .map_err(io("make read-only", &new))
    }

    /// Removes a volume's file; a missing file is fine.
    pub async fn remove(&self, volid: &str) -> Result<(), DiskError> {
        let path = self.path(volid);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(DiskError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }
}

/// The disk operations of the qemu backend (the node's hooks call these).
impl QemuGuests {
    /// Makes sure `volid`'s file exists with at least `size` bytes: an overlay on
    /// `parent`'s file (linked clones) or on the base image.
    ///
    /// # Errors
    /// qemu-img or the filesystem failed.
    pub async fn ensure_disk(
        &self,
        volid: &str,
        size: u64,
        parent: Option<&str>,
    ) -> Result<PathBuf, GuestError> {
        let backing = match parent {
            Some(parent) => Box::pin(self.ensure_disk(parent, 0, None)).await?,
            None => self.image().disk.clone(),
        };
        Ok(self.disk_store().ensure(volid, size, &backing).await?)
    }

    /// A full clone of `source` (created from the base image first if it never booted).
    ///
    /// # Errors
    /// qemu-img or the filesystem failed.
    pub async fn copy_disk(
        &self,
        source: &str,
        source_parent: Option<&str>,
        target: &str,
    ) -> Result<(), GuestError> {
        let source = self.ensure_disk(source, 0, source_parent).await?;
        self.disk_store().copy(&source, target).await?;
        Ok(())
    }

    /// Template conversion of one disk: renamed to its base name, read-only.
    ///
    /// # Errors
    /// The file cannot be renamed.
    pub async fn make_base(&self, old: &str, new: &str) -> Result<(), GuestError> {
        Ok(self.disk_store().make_base(old, new).await?)
    }

    /// Removes a volume's file.
    ///
    /// # Errors
    /// The file cannot be removed.
    pub async fn remove_disk(&self, volid: &str) -> Result<(), GuestError> {
        Ok(self.disk_store().remove(volid).await?)
    }

    /// Grows a disk: through QMP `block_resize` when its VM runs (the guest sees the new
    /// size at once), else the file (seen at the next boot).
    ///
    /// # Errors
    /// QMP or qemu-img failed.
    pub async fn resize_disk(&self, vmid: u32, volid: &str, size: u64) -> Result<(), GuestError> {
        if let Some(qmp_path) = self.machine_qmp(vmid) {
            let mut qmp = Qmp::connect(&qmp_path, Duration::from_secs(5)).await?;
            qmp.execute(
                "block_resize",
                Some(json!({"device": "disk0", "size": size})),
            )
            .await?;
            return Ok(());
        }
        let path = self.disk_store().path(volid);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            self.disk_store().grow(&path, size).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_map_to_files_under_their_storage() {
        let store = DiskStore::new(PathBuf::from("/w/disks"));
        assert_eq!(
            store.path("local-lvm:vm-100-disk-0"),
            PathBuf::from("/w/disks/local-lvm/vm-100-disk-0.qcow2")
        );
        assert_eq!(
            store.path("local:1001/base-1001-disk-0.qcow2/100/vm-100-disk-0.qcow2"),
            PathBuf::from(
                "/w/disks/local/1001__base-1001-disk-0.qcow2__100__vm-100-disk-0.qcow2.qcow2"
            )
        );
    }
}
