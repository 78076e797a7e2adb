//! One multiplexed OpenSSH connection to a VM and the commands run over it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;

use super::key::PrivateKey;
use crate::deploy::StageOutputs;

/// Where and as whom to connect, with the pinned host keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PrivateKey,
    pub known_hosts: PathBuf,
}

impl SshTarget {
    /// The target stage 2's outputs describe (the lab's loopback forward, or the VM).
    pub fn from_outputs(outputs: &StageOutputs, key: PrivateKey) -> Self {
        Self {
            host: outputs.ssh_host.clone(),
            port: outputs.ssh_port,
            user: outputs.ssh_user.clone(),
            key,
            known_hosts: PathBuf::from(&outputs.known_hosts_file),
        }
    }

    /// `user@host:port`, for messages.
    pub fn display(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// What a remote command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOutput {
    /// The remote command's exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RemoteOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Why a remote command could not be run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SshError {
    #[error("cannot run ssh: {source} (install the OpenSSH client)")]
    Spawn {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the host key of {target} does not match the one pinned in {known_hosts}; the VM \
         was re-created or someone is in between"
    )]
    HostKeyMismatch {
        target: String,
        known_hosts: PathBuf,
    },
    #[error("{target} refused the key {key}: {detail}")]
    AuthRefused {
        target: String,
        key: String,
        detail: String,
    },
    #[error("{target} is unreachable: {detail}")]
    Unreachable { target: String, detail: String },
    #[error("`{command}` on {target} did not finish within {seconds} s")]
    Timeout {
        target: String,
        command: String,
        seconds: u64,
    },
}

impl SshError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::HostKeyMismatch { known_hosts, .. } => Some(format!(
                "if the VM was re-created on purpose, run `sombrero deploy` again to pin its \
                 new key (or remove its line from {})",
                known_hosts.display()
            )),
            Self::AuthRefused { .. } => Some(
                "the VM authorizes the public key from TF_VAR_ci_ssh_key or \
                 SOMBRERO_SSH_PUBLIC_KEY_FILE; set SOMBRERO_SSH_PRIVATE_KEY_FILE to its private half"
                    .to_owned(),
            ),
            Self::Unreachable { .. } => Some(
                "check `sombrero status` (is the VM running?) and `sombrero deploy` (it re-checks \
                 SSH and rewrites the outputs)"
                    .to_owned(),
            ),
            Self::Spawn { .. } | Self::Timeout { .. } => None,
        }
    }

    /// Classifies ssh's own failure (exit 255) from what it printed.
    fn classify(target: &SshTarget, stderr: &str) -> Self {
        let detail = stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("ssh failed without a message")
            .trim()
            .to_owned();
        if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("Host key verification failed")
        {
            Self::HostKeyMismatch {
                target: target.display(),
                known_hosts: target.known_hosts.clone(),
            }
        } else if stderr.contains("Permission denied") {
            Self::AuthRefused {
                target: target.display(),
                key: target.key.describe(),
                detail,
            }
        } else {
            Self::Unreachable {
                target: target.display(),
                detail,
            }
        }
    }
}

/// A connection shared by every command run through it (and by Ansible, given
/// [`Session::control_dir`]); closed when dropped.
#[derive(Debug)]
pub struct Session {
    target: SshTarget,
    control: tempfile::TempDir,
    /// `false`: every command opens its own connection (the original smoke test's way,
    /// kept for `verify`'s benchmark baseline).
    multiplex: bool,
}

/// How long an idle shared connection stays open after its last user.
const PERSIST_SECONDS: u32 = 60;

impl Session {
    /// Prepares a session; nothing connects until the first command.
    ///
    /// # Errors
    /// The control directory cannot be created.
    pub fn new(target: SshTarget) -> std::io::Result<Self> {
        // A short path: a control socket's path must fit in 108 bytes.
        let control = tempfile::Builder::new()
            .prefix("sombrero-ssh-")
            .tempdir_in(std::env::temp_dir())?;
        Ok(Self {
            target,
            control,
            multiplex: true,
        })
    }

    /// Like [`Session::new`], but every command connects anew (no `ControlMaster`).
    ///
    /// # Errors
    /// The control directory cannot be created.
    pub fn unshared(target: SshTarget) -> std::io::Result<Self> {
        let mut session = Self::new(target)?;
        session.multiplex = false;
        Ok(session)
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The directory of the control socket (`%C`-named, as Ansible names its own), so an
    /// `ansible-playbook` given `ANSIBLE_SSH_CONTROL_PATH_DIR` reuses this connection.
    pub fn control_dir(&self) -> &Path {
        self.control.path()
    }

    /// The options every connection of this session uses.
    pub fn options(&self) -> Vec<String> {
        let target = &self.target;
        let mut options = vec![
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            "-o".to_owned(),
            format!("UserKnownHostsFile={}", target.known_hosts.display()),
            "-o".to_owned(),
            "ConnectTimeout=15".to_owned(),
            "-o".to_owned(),
            "ServerAliveInterval=15".to_owned(),
            "-p".to_owned(),
            target.port.to_string(),
        ];
        if self.multiplex {
            options.extend([
                "-o".to_owned(),
                "ControlMaster=auto".to_owned(),
                "-o".to_owned(),
                format!("ControlPath={}/%C", self.control.path().display()),
                "-o".to_owned(),
                format!("ControlPersist={PERSIST_SECONDS}"),
            ]);
        } else {
            options.extend(["-o".to_owned(), "ControlPath=none".to_owned()]);
        }
        if let PrivateKey::File(path) = &target.key {
            options.extend([
                "-o".to_owned(),
                "IdentitiesOnly=yes".to_owned(),
                "-i".to_owned(),
                path.display().to_string(),
            ]);
        }
        options
    }

    /// `ssh` ready to run `remote` on the target.
    pub fn command(&self, remote: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ssh");
        command
            .args(self.options())
            .arg(format!("{}@{}", self.target.user, self.target.host))
            .arg("--")
            .arg(remote)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `remote` (a shell command line) and waits at most `limit` for it.
    ///
    /// # Errors
    /// ssh itself failed (host key, authentication, network) or the deadline passed; a
    /// remote command that fails is an `Ok` with its exit code.
    pub async fn run(&self, remote: &str, limit: Duration) -> Result<RemoteOutput, SshError> {
        let child = self
            .command(remote)
            .spawn()
            .map_err(|source| SshError::Spawn { source })?;
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| SshError::Timeout {
                target: self.target.display(),
                command: remote.to_owned(),
                seconds: limit.as_secs(),
            })?
            .map_err(|source| SshError::Spawn { source })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.code() == Some(255) {
            return Err(SshError::classify(&self.target, &stderr));
        }
        Ok(RemoteOutput {
            code: output.status.code(),
            stdout,
            stderr,
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.multiplex {
            return;
        }
        // Close the shared connection now rather than after ControlPersist.
        let _ = std::process::Command::new("ssh")
            .args(self.options())
            .args(["-O", "exit"])
            .arg(format!("{}@{}", self.target.user, self.target.host))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::{PrivateKey, SshError, SshTarget};
    use std::path::{Path, PathBuf};

    fn target() -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: 40022,
            user: "ansible".into(),
            key: PrivateKey::File(PathBuf::from("/k/id")),
            known_hosts: PathBuf::from("/o/known_hosts"),
        }
    }

    #[test]
    fn ssh_failures_are_told_apart_by_what_ssh_printed() {
        let changed = "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n";
        assert!(matches!(
            SshError::classify(&target(), changed),
            SshError::HostKeyMismatch { known_hosts, .. } if known_hosts == Path::new("/o/known_hosts")
        ));
        let denied = "ansible@127.0.0.1: Permission denied (publickey).\n";
        let error = SshError::classify(&target(), denied);
        assert!(matches!(&error, SshError::AuthRefused { .. }), "{error:?}");
        assert!(error.to_string().contains("/k/id"), "{error}");
        let refused = "ssh: connect to host 127.0.0.1 port 40022: Connection refused\n";
        let error = SshError::classify(&target(), refused);
        assert!(error.to_string().ends_with("Connection refused"), "{error}");
    }
}
