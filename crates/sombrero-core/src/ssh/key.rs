//! Finding the private half of the VM's SSH key.
//!
//! Why a search: the runbook configures the PUBLIC key (`TF_VAR_ci_ssh_key` is a key line),
//! and the original guessed `~/.ssh/jump-man-key` for the private one, which often did not
//! exist. The order is: the configured private key file (`ssh_private_key_file`,
//! `SOMBRERO_SSH_PRIVATE_KEY_FILE`); the configured `.pub` file's sibling; any
//! `~/.ssh/*.pub` holding the same key, whose sibling exists; a running ssh-agent holding
//! it. What was looked at is kept for the error when nothing is found.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::settings::values::SshPublicKey;

/// Where the private key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateKey {
    /// A key file (`ssh -i`).
    File(PathBuf),
    /// Held by the running ssh-agent (no file to name).
    Agent,
}

impl PrivateKey {
    /// The file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Agent => None,
        }
    }

    /// For messages: the file, or "the ssh-agent's key".
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Agent => "held by the ssh-agent".to_owned(),
        }
    }
}

/// No private key found.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    #[error("the configured private key {} ({from}) does not exist or is not a file", path.display())]
    ConfiguredMissing { path: PathBuf, from: String },
    #[error("no private key for the VM's public key; looked at: {}", looked.join("; "))]
    NotFound { looked: Vec<String> },
}

impl KeyError {
    pub fn hint(&self) -> &'static str {
        "set SOMBRERO_SSH_PRIVATE_KEY_FILE (or ssh_private_key_file in sombrero.toml) to the \
         private half of the key the VM authorizes, or load it into ssh-agent (`ssh-add`)"
    }
}

/// What to search with.
#[derive(Debug, Clone, Default)]
pub struct KeySearch<'a> {
    /// `ssh_private_key_file`, and where that setting came from (for the error).
    pub configured: Option<(&'a Path, String)>,
    /// The configured `.pub` file, when the public key came from a file.
    pub public_file: Option<&'a Path>,
    /// The public key the VM authorizes.
    pub public_key: Option<&'a SshPublicKey>,
    /// `~/.ssh`, searched for a matching `.pub`.
    pub ssh_dir: Option<PathBuf>,
}

/// `type base64` of a key line, without the comment.
fn key_identity(line: &str) -> Option<(String, String)> {
    let line = line.lines().find(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })?;
    let mut words = line.split_whitespace();
    Some((words.next()?.to_owned(), words.next()?.to_owned()))
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file())
}

/// The private key for `search`; `agent_keys` lists the ssh-agent's public keys (`None`
/// when no agent runs), called only when no file is found.
///
/// # Errors
/// [`KeyError`] saying what was looked at.
pub fn find(
    search: &KeySearch<'_>,
    agent_keys: impl FnOnce() -> Option<Vec<String>>,
) -> Result<PrivateKey, KeyError> {
    if let Some((path, from)) = &search.configured {
        return if is_file(path) {
            Ok(PrivateKey::File(path.to_path_buf()))
        } else {
            Err(KeyError::ConfiguredMissing {
                path: path.to_path_buf(),
                from: from.clone(),
            })
        };
    }
    let mut looked = Vec::new();
    if let Some(public) = search.public_file {
        let private = public.with_extension("");
        if public.extension().is_some_and(|ext| ext == "pub") && is_file(&private) {
            return Ok(PrivateKey::File(private));
        }
        looked.push(format!(
            "{} (beside the public key file)",
            private.display()
        ));
    }
    let Some(wanted) = search.public_key.and_then(|key| key_identity(key.as_str())) else {
        looked.push("no public key configured to match against".to_owned());
        return Err(KeyError::NotFound { looked });
    };
    if let Some(dir) = &search.ssh_dir {
        let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "pub"))
            .collect();
        candidates.sort();
        for public in candidates {
            let matches = std::fs::read_to_string(&public)
                .ok()
                .and_then(|text| key_identity(&text))
                .is_some_and(|found| found == wanted);
            let private = public.with_extension("");
            if matches && is_file(&private) {
                return Ok(PrivateKey::File(private));
            }
        }
        looked.push(format!("{}/*.pub holding the key", dir.display()));
    }
    match agent_keys() {
        Some(keys)
            if keys
                .iter()
                .any(|line| key_identity(line).as_ref() == Some(&wanted)) =>
        {
            return Ok(PrivateKey::Agent);
        }
        Some(_) => looked.push("the running ssh-agent (it does not hold the key)".to_owned()),
        None => looked.push("ssh-agent (none running: SSH_AUTH_SOCK unset)".to_owned()),
    }
    Err(KeyError::NotFound { looked })
}

/// The running ssh-agent's public keys (`ssh-add -L`), `None` without an agent.
pub fn agent_keys() -> Option<Vec<String>> {
    std::env::var_os("SSH_AUTH_SOCK")?;
    let output = std::process::Command::new("ssh-add")
        .arg("-L")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    // Exit 1: the agent holds no keys.
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{KeyError, KeySearch, PrivateKey, find};
    use crate::settings::values::parse_ssh_public_key;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+";

    #[test]
    fn a_matching_pub_in_ssh_dir_names_its_private_half() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("other.pub"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther x\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("other"), "private").unwrap();
        std::fs::write(dir.path().join("work.pub"), format!("{KEY} me@laptop\n")).unwrap();
        std::fs::write(dir.path().join("work"), "private").unwrap();
        let public = parse_ssh_public_key(&format!("{KEY} another-comment")).unwrap();
        let search = KeySearch {
            public_key: Some(&public),
            ssh_dir: Some(dir.path().to_path_buf()),
            ..KeySearch::default()
        };
        assert_eq!(
            find(&search, || panic!("no agent needed")),
            Ok(PrivateKey::File(dir.path().join("work")))
        );
        // The private half missing: the agent is asked, and holds it.
        std::fs::remove_file(dir.path().join("work")).unwrap();
        assert_eq!(
            find(&search, || Some(vec![format!("{KEY} agent-comment")])),
            Ok(PrivateKey::Agent)
        );
        // Nowhere: the error lists every place.
        let error = find(&search, || None).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("*.pub holding the key"), "{text}");
        assert!(text.contains("SSH_AUTH_SOCK unset"), "{text}");
    }

    #[test]
    fn a_configured_private_key_must_exist_and_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        let search = KeySearch {
            configured: Some((&path, "env SOMBRERO_SSH_PRIVATE_KEY_FILE".into())),
            ..KeySearch::default()
        };
        assert!(matches!(
            find(&search, || None),
            Err(KeyError::ConfiguredMissing { .. })
        ));
        std::fs::write(&path, "private").unwrap();
        assert_eq!(find(&search, || None), Ok(PrivateKey::File(path.clone())));
    }

    #[test]
    fn the_public_key_files_sibling_is_taken_first() {
        let dir = tempfile::tempdir().unwrap();
        let public_file = dir.path().join("jump.pub");
        std::fs::write(&public_file, format!("{KEY}\n")).unwrap();
        std::fs::write(dir.path().join("jump"), "private").unwrap();
        let search = KeySearch {
            public_file: Some(&public_file),
            ..KeySearch::default()
        };
        assert_eq!(
            find(&search, || None),
            Ok(PrivateKey::File(dir.path().join("jump")))
        );
    }
}
