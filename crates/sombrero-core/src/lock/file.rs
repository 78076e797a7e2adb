//! Locks of one machine: one file per environment under the user's state directory,
//! locked with the operating system's advisory lock (`flock` on Linux).
//!
//! Why an OS lock and not a file that exists: the kernel releases the lock when the
//! holding process ends, however it ends (SIGKILL, a crash, a reboot), so a lock is
//! never left behind. The file keeps the holder's description (JSON) while it is held
//! and is emptied on release, so a description found under a free lock names a run that
//! was killed: the next run takes the lock over and says whose it was.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::{Acquired, HeldLock, Holder, HolderText, LockBackend, LockError, LockScope};

/// Lock files in one directory (`$XDG_STATE_HOME/sombrero/locks` by default).
#[derive(Debug, Clone)]
pub struct FileLocks {
    directory: PathBuf,
}

impl FileLocks {
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
        }
    }

    /// The directory the lock files are in.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn path(&self, scope: &LockScope) -> PathBuf {
        self.directory.join(format!("{}.lock", scope.key()))
    }
}

/// A held file lock: the open, locked file. Dropping it empties the description and
/// closes the file, which releases the lock.
#[derive(Debug)]
struct HeldFile {
    file: File,
}

impl HeldLock for HeldFile {}

impl Drop for HeldFile {
    fn drop(&mut self) {
        // An empty file under a free lock means "released cleanly".
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The holder described in a lock file, if it holds a readable description.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

impl LockBackend for FileLocks {
    fn acquire(&self, scope: &LockScope, holder: &Holder) -> Result<Acquired, LockError> {
        let path = self.path(scope);
        let io_error = |source: std::io::Error| LockError::Io {
            environment: scope.environment.clone(),
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.directory).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    environment: scope.environment.clone(),
                    holder: Box::new(HolderText(read_holder(&mut file))),
                });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(error)),
        }
        let took_over = read_holder(&mut file);
        let description = serde_json::to_vec(holder).map_err(|error| io_error(error.into()))?;
        file.set_len(0).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        file.write_all(&description).map_err(io_error)?;
        file.sync_data().map_err(io_error)?;
        Ok(Acquired {
            lock: Box::new(HeldFile { file }),
            took_over,
        })
    }
}
