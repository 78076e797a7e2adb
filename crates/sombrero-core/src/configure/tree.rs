//! The Ansible tree the playbooks come from: a configured directory, the project's own
//! `ansible/`, or the copy built into the binary.
//!
//! Why a built-in copy: sombrero is one binary, and `configure` must work from any
//! directory with only `sombrero.toml`; operators who extend the playbooks keep them in
//! their repository's `ansible/` (found next to `sombrero.toml`) or point
//! `SOMBRERO_ANSIBLE_DIR` at them. The built-in copy is written once per content hash
//! under the cache directory, so Ansible reads ordinary files.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::error::ConfigureError;

/// The repository's `ansible/` directory, as it was when this binary was built.
static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../ansible");

/// The stage 3 playbook, relative to the tree.
pub const POST_DEPLOY: &str = "playbooks/post-deploy.yml";

/// Where the tree in use came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeOrigin {
    /// `paths.ansible_dir` or `SOMBRERO_ANSIBLE_DIR`.
    Configured,
    /// `ansible/` next to `sombrero.toml`.
    Project,
    /// The copy built into sombrero.
    BuiltIn,
}

/// The tree in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnsibleTree {
    pub dir: PathBuf,
    pub origin: TreeOrigin,
}

impl AnsibleTree {
    /// Picks the tree: `configured` (which must hold the playbook), else
    /// `project_dir/ansible` when it holds the playbook, else the built-in copy written
    /// under `cache`.
    ///
    /// # Errors
    /// [`ConfigureError::TreeMissing`] for a configured directory without the playbook;
    /// [`ConfigureError::Io`] when the built-in copy cannot be written.
    pub fn locate(
        configured: Option<(&Path, String)>,
        project_dir: &Path,
        cache: &Path,
    ) -> Result<Self, ConfigureError> {
        Self::locate_for(POST_DEPLOY, configured, project_dir, cache)
    }

    /// [`Self::locate`] for a tree that must hold `playbook` (e.g. the golden-image
    /// playbook for `build`).
    ///
    /// # Errors
    /// As [`Self::locate`].
    pub fn locate_for(
        playbook: &'static str,
        configured: Option<(&Path, String)>,
        project_dir: &Path,
        cache: &Path,
    ) -> Result<Self, ConfigureError> {
        if let Some((dir, from)) = configured {
            if dir.join(playbook).is_file() {
                return Ok(Self {
                    dir: dir.to_path_buf(),
                    origin: TreeOrigin::Configured,
                });
            }
            return Err(ConfigureError::TreeMissing {
                path: dir.to_path_buf(),
                from,
                playbook,
            });
        }
        let project = project_dir.join("ansible");
        if project.join(playbook).is_file() {
            return Ok(Self {
                dir: project,
                origin: TreeOrigin::Project,
            });
        }
        Ok(Self {
            dir: write_built_in(cache)?,
            origin: TreeOrigin::BuiltIn,
        })
    }

    pub fn playbook(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("ansible.cfg")
    }
}

/// Every built-in file as (relative path, contents), sorted.
pub fn built_in_files() -> Vec<(PathBuf, &'static [u8])> {
    fn walk(dir: &Dir<'static>, out: &mut Vec<(PathBuf, &'static [u8])>) {
        for file in dir.files() {
            out.push((file.path().to_path_buf(), file.contents()));
        }
        for sub in dir.dirs() {
            walk(sub, out);
        }
    }
    let mut files = Vec::new();
    walk(&BUILT_IN, &mut files);
    files.retain(|(path, _)| {
        !path.components().any(|part| {
            part.as_os_str()
                .to_string_lossy()
                .starts_with("__pycache__")
        })
    });
    files.sort();
    files
}

/// Writes the built-in tree to `cache/ansible-tree/HASH` once; returns its directory.
fn write_built_in(cache: &Path) -> Result<PathBuf, ConfigureError> {
    let files = built_in_files();
    let mut hash = Sha256::new();
    for (path, contents) in &files {
        hash.update(path.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(contents);
    }
    let digest = hex::encode(hash.finalize());
    let dir = cache.join("ansible-tree").join(&digest[..16]);
    if dir.join(POST_DEPLOY).is_file() {
        return Ok(dir);
    }
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigureError::Io { what, path, source }
    };
    let parent = dir.parent().unwrap_or(cache);
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    let staging = tempfile::tempdir_in(parent).map_err(io("create a directory in", parent))?;
    for (path, contents) in &files {
        let target = staging.path().join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::write(&target, contents).map_err(io("write", &target))?;
    }
    let staged = staging.keep();
    if let Err(error) = std::fs::rename(&staged, &dir) {
        let _ = std::fs::remove_dir_all(&staged);
        // Another run wrote it first: theirs is the same content.
        if !dir.join(POST_DEPLOY).is_file() {
            return Err(io("write", &dir)(error));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::{AnsibleTree, POST_DEPLOY, TreeOrigin, built_in_files};
    use std::path::{Path, PathBuf};

    /// Every file of the repository's `ansible/` (what the binary must carry).
    fn repository_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "__pycache__" {
                continue;
            }
            if path.is_dir() {
                repository_files(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }

    /// `ansible-playbook --syntax-check` on every playbook of the repository's tree, with
    /// its `ansible.cfg` (so the roles, the callback and the config itself must load).
    #[test]
    fn the_playbooks_pass_ansible_syntax_check() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible");
        let Ok(found) = std::process::Command::new("ansible-playbook")
            .arg("--version")
            .output()
        else {
            pve_lab::testing::skip(
                "the_playbooks_pass_ansible_syntax_check",
                "no ansible-playbook (python3 -m pip install ansible-core)",
            );
            return;
        };
        assert!(found.status.success());
        let mut playbooks: Vec<PathBuf> = std::fs::read_dir(root.join("playbooks"))
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
            .collect();
        playbooks.sort();
        assert!(playbooks.iter().any(|path| path.ends_with(POST_DEPLOY)));
        for playbook in playbooks {
            let output = std::process::Command::new("ansible-playbook")
                .args(["--syntax-check", "-i", "localhost,"])
                .arg(&playbook)
                .current_dir(&root)
                .env("ANSIBLE_CONFIG", root.join("ansible.cfg"))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}{}",
                playbook.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// `ansible-lint` (its `production` profile, from `ansible/.ansible-lint`) on the tree.
    #[test]
    fn ansible_lint_passes_with_the_production_profile() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible");
        let config = std::fs::read_to_string(root.join(".ansible-lint")).unwrap();
        assert!(config.contains("profile: production"), "{config}");
        let Ok(output) = std::process::Command::new("ansible-lint")
            .args(["--nocolor", "--offline"])
            .current_dir(&root)
            .output()
        else {
            pve_lab::testing::skip(
                "ansible_lint_passes_with_the_production_profile",
                "no ansible-lint (python3 -m pip install ansible-lint)",
            );
            return;
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{text}");
        assert!(
            text.contains("Profile 'production' was required, and it passed"),
            "{text}"
        );
    }

    #[test]
    fn the_built_in_tree_is_the_repository_tree_and_is_written_once() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible");
        let mut expected = Vec::new();
        repository_files(&root, &root, &mut expected);
        expected.sort();
        let built_in: Vec<PathBuf> = built_in_files().into_iter().map(|(path, _)| path).collect();
        assert_eq!(built_in, expected);
        assert!(built_in.iter().any(|path| path == Path::new(POST_DEPLOY)));

        let cache = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let tree = AnsibleTree::locate(None, project.path(), cache.path()).unwrap();
        assert_eq!(tree.origin, TreeOrigin::BuiltIn);
        assert_eq!(
            std::fs::read(tree.playbook(POST_DEPLOY)).unwrap(),
            std::fs::read(root.join(POST_DEPLOY)).unwrap()
        );
        let again = AnsibleTree::locate(None, project.path(), cache.path()).unwrap();
        assert_eq!(again.dir, tree.dir);

        // A project's own tree wins over the built-in one; a configured one over both,
        // and a configured directory without the playbook is an error naming it.
        std::fs::create_dir_all(project.path().join("ansible/playbooks")).unwrap();
        std::fs::write(project.path().join("ansible").join(POST_DEPLOY), "[]\n").unwrap();
        let own = AnsibleTree::locate(None, project.path(), cache.path()).unwrap();
        assert_eq!(own.origin, TreeOrigin::Project);
        let empty = tempfile::tempdir().unwrap();
        let error = AnsibleTree::locate(
            Some((empty.path(), "env SOMBRERO_ANSIBLE_DIR".into())),
            project.path(),
            cache.path(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("env SOMBRERO_ANSIBLE_DIR"),
            "{error}"
        );
    }
}
