//! The VM keys that say who may log in and how `sombrero configure` (stage 3) logs in:
//! `ssh_private_key_file`, `ssh_allow_users` and `extra_authorized_keys`.
//!
//! Why checked here: a bad user name or a mistyped key line would otherwise surface only
//! after the VM is deployed, half-way through `configure`; here it fails before any
//! command runs, with the key, the entry and its line. The private key file's existence
//! is *not* checked: only `configure` needs it, and it says so in its own error.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::env_vars;
use super::source::{Origin, Resolved, Source};
use super::values::{self, SshPublicKey};
use super::vm::is_user_name;
use super::vm_lookup::Builder;

impl Builder<'_, '_> {
    /// The private key `configure` logs in with: `SOMBRERO_SSH_PRIVATE_KEY_FILE`, else the
    /// file's key. `Err` when the value set is unusable (the error was pushed).
    pub(super) fn ssh_private_key_file(&mut self) -> Result<Option<Resolved<PathBuf>>, ()> {
        let found = self
            .layers
            .variable(&[env_vars::SOMBRERO_SSH_PRIVATE_KEY_FILE])
            .or_else(|| self.lookup("ssh_private_key_file", |t| t.ssh_private_key_file.as_ref()));
        let Some((value, origin)) = found else {
            return Ok(None);
        };
        let raw = value.trim();
        if raw.is_empty() {
            self.invalid(origin, "the private key file's path is empty".to_owned());
            return Err(());
        }
        let is_public = Path::new(raw)
            .extension()
            .is_some_and(|extension| extension.eq_ignore_ascii_case("pub"));
        if is_public {
            self.invalid(
                origin,
                format!(
                    "{raw:?} is a public key file; give the private key (the same path \
                     without .pub)"
                ),
            );
            return Err(());
        }
        let path = self.layers.path(raw, &origin.source);
        Ok(Some(Resolved::new(path, origin.source)))
    }

    /// Users sshd lets in besides `ciuser`; each a portable Linux user name.
    pub(super) fn ssh_allow_users(&mut self) -> Resolved<Vec<String>> {
        let key = "ssh_allow_users";
        let (items, source) = self.list(key, |t| t.ssh_allow_users.as_ref());
        let mut users = Vec::new();
        for item in &items {
            let name = item.get_ref();
            if is_user_name(name) {
                users.push(name.clone());
            } else {
                let at = self.item_origin(key, &source, item);
                self.invalid(
                    at,
                    format!(
                        "{name:?} is not a user name (a lowercase letter or _, then lowercase \
                         letters, digits, _ or -; at most 32)"
                    ),
                );
            }
        }
        Resolved::new(users, source)
    }

    /// Public keys authorized on the VM besides the cloud-init one; one key line each.
    pub(super) fn extra_authorized_keys(&mut self) -> Resolved<Vec<SshPublicKey>> {
        let key = "extra_authorized_keys";
        let (items, source) = self.list(key, |t| t.extra_authorized_keys.as_ref());
        let mut keys = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let text = item.get_ref();
            let parsed = if text.trim().contains('\n') {
                Err("an entry holds one key line, this one has several lines".to_owned())
            } else {
                values::parse_ssh_public_key(text)
            };
            match parsed {
                Ok(public_key) => keys.push(public_key),
                Err(reason) => {
                    let at = self.item_origin(key, &source, item);
                    let message = format!(
                        "entry {} ({}) is not an SSH public key: {reason}",
                        index + 1,
                        quoted_entry(text)
                    );
                    self.invalid(at, message);
                }
            }
        }
        Resolved::new(keys, source)
    }

    /// Where one entry of a list key is: the list's key path, the entry's position.
    fn item_origin(&self, key: &str, source: &Source, item: &Spanned<String>) -> Origin {
        let key_path = match source {
            Source::File { key, .. } => key.clone(),
            _ => key.to_owned(),
        };
        self.layers.file.origin(key_path, &item.span())
    }
}

/// An entry as an error shows it: a private key is never echoed, and a long line keeps
/// its start (type) and end (comment) with the middle cut.
fn quoted_entry(text: &str) -> String {
    if text.contains("PRIVATE KEY") {
        return "not shown".to_owned();
    }
    let chars: Vec<char> = text.trim().chars().collect();
    let shown: String = if chars.len() <= 100 {
        chars.iter().collect()
    } else {
        let head: String = chars.iter().take(48).collect();
        let tail: String = chars.iter().skip(chars.len() - 40).collect();
        format!("{head}...{tail}")
    };
    format!("{shown:?}")
}
