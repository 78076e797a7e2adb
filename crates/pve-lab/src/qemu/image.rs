//! Where the lab's guest base image lives, and which recipe built it.
//!
//! Why: building the image takes minutes and needs root and the network (Debian's
//! mirror), so it is built once and cached; the cache key is a hash of the recipe
//! compiled into this binary (`lab/` files and the Docker archive layout), so a changed
//! recipe is rebuilt and an image from another recipe is never booted by mistake. CI on
//! the same machine reuses the cache.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The recipe files, compiled in: (name, content).
pub const RECIPE: &[(&str, &str)] = &[
    (
        "build-image.sh",
        include_str!("../../../../lab/build-image.sh"),
    ),
    (
        "packages-base.txt",
        include_str!("../../../../lab/packages-base.txt"),
    ),
    (
        "packages-staged.txt",
        include_str!("../../../../lab/packages-staged.txt"),
    ),
    ("cloud.cfg", include_str!("../../../../lab/cloud.cfg")),
    ("docker-archive", super::docker_archive::LAYOUT_VERSION),
];

/// The environment variable that overrides the cache directory.
pub const CACHE_VARIABLE: &str = "SOMBRERO_LAB_IMAGES";

/// The recipe's hash (16 hex digits): the cache key.
pub fn recipe_hash() -> String {
    let mut hasher = Sha256::new();
    for (name, content) in RECIPE {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(content.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// A built image: what a guest boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its directory (`<cache>/<hash>`).
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The root filesystem disk (qcow2), never written: guests get overlays.
    pub disk: PathBuf,
}

impl Image {
    fn at(dir: PathBuf) -> Self {
        Self {
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
            disk: dir.join("disk.qcow2"),
            dir,
        }
    }

    /// The manifest the build writes last (its presence marks a complete build).
    pub fn manifest(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
}

/// The image cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// A cache at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$SOMBRERO_LAB_IMAGES`, else `$XDG_CACHE_HOME/sombrero/lab-images`, else
    /// `~/.cache/sombrero/lab-images`.
    pub fn default_location() -> Self {
        if let Some(dir) = std::env::var_os(CACHE_VARIABLE).filter(|dir| !dir.is_empty()) {
            return Self::new(dir);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/var/cache"));
        Self::new(cache.join("sombrero").join("lab-images"))
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where this recipe's image is (built or not).
    pub fn expected(&self) -> Image {
        Image::at(self.root.join(recipe_hash()))
    }

    /// This recipe's image, when it is completely built.
    pub fn find(&self) -> Option<Image> {
        let image = self.expected();
        let complete = [&image.kernel, &image.initrd, &image.disk, &image.manifest()]
            .iter()
            .all(|path| path.is_file());
        complete.then_some(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_short() {
        assert_eq!(recipe_hash(), recipe_hash());
        assert_eq!(recipe_hash().len(), 16);
    }

    #[test]
    fn an_incomplete_build_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path());
        let image = store.expected();
        std::fs::create_dir_all(&image.dir).expect("mkdir");
        for path in [&image.kernel, &image.initrd, &image.disk] {
            std::fs::write(path, b"x").expect("write");
        }
        assert_eq!(store.find(), None);
        std::fs::write(image.manifest(), b"{}").expect("write");
        assert_eq!(store.find(), Some(image));
    }
}
