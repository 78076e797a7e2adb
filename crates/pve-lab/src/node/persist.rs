//! Saving and loading the node state atomically.
//!
//! Why: `sombrero lab serve --state DIR` must survive restarts and crashes. A save writes a
//! temporary file, fsyncs it, renames it over `state.json` and fsyncs the directory, so a
//! crash at any moment leaves either the old or the new state, never a torn file. Saves
//! carry a version so that a slower writer never overwrites a newer state.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::state::State;

/// The state file name inside the state dir.
pub(crate) const STATE_FILE: &str = "node-state.json";

/// Where and how the state is saved.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    temporary: PathBuf,
    directory: PathBuf,
    /// The version last written; older snapshots are skipped.
    written: Mutex<u64>,
}

impl Store {
    /// Opens (creating) the state dir.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(directory: &Path) -> io::Result<Self> {
        fs::create_dir_all(directory)?;
        Ok(Self {
            path: directory.join(STATE_FILE),
            temporary: directory.join(format!("{STATE_FILE}.tmp")),
            directory: directory.to_path_buf(),
            written: Mutex::new(0),
        })
    }

    /// The saved state, or `None` on first start.
    ///
    /// # Errors
    /// The file cannot be read or does not parse.
    pub fn load(&self) -> io::Result<Option<State>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
    }

    /// Saves a serialized snapshot unless a newer one was already written.
    pub fn save(&self, version: u64, bytes: &[u8]) {
        let mut written = self.written.lock();
        if version <= *written {
            return;
        }
        match self.write_atomically(bytes) {
            Ok(()) => *written = version,
            Err(error) => {
                tracing::error!(%error, path = %self.path.display(), "cannot save the lab state");
            }
        }
    }

    fn write_atomically(&self, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.temporary, &self.path)?;
        File::open(&self.directory)?.sync_all()
    }
}
