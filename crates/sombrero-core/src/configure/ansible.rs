//! Which `ansible-playbook` runs the playbooks: the one on `PATH` when it is recent
//! enough, else a private one sombrero installs from `PyPI` into its cache.
//!
//! Why a private virtual environment rather than asking the user: the runbook's
//! prerequisites list Ansible, but a distribution's ansible can be years old, and a
//! jump-host deploy should not fail on a laptop for that. The venv lives under
//! `$XDG_CACHE_HOME/sombrero/ansible/core-VERSION` (a venv cannot be moved, so it is built
//! in place and marked complete last), pins one ansible-core, and is reused by every
//! project on the machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use super::error::ConfigureError;

/// The oldest ansible-core the playbooks support.
pub const MIN_VERSION: (u32, u32) = (2, 15);
/// The ansible-core installed privately (runs on Python 3.11 and newer).
pub const PINNED_VERSION: &str = "2.19.14";

/// Where the `ansible-playbook` in use came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsibleOrigin {
    /// Found on `PATH`.
    Path,
    /// sombrero's private virtual environment.
    Private,
}

/// The `ansible-playbook` in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsibleInstall {
    pub playbook: PathBuf,
    /// ansible-core's version, e.g. `2.19.14`.
    pub version: String,
    pub origin: AnsibleOrigin,
}

impl AnsibleInstall {
    /// One line for `-v` output and `config show`.
    pub fn describe(&self) -> String {
        let from = match self.origin {
            AnsibleOrigin::Path => "from PATH",
            AnsibleOrigin::Private => "sombrero's private install",
        };
        format!(
            "ansible-core {} ({from}: {})",
            self.version,
            self.playbook.display()
        )
    }
}

/// `2.19.14` from `ansible-playbook --version`'s first line
/// (`ansible-playbook [core 2.19.14]`).
pub fn parse_version(text: &str) -> Option<String> {
    let first = text.lines().next()?;
    let start = first.find("[core ")? + "[core ".len();
    let rest = &first[start..];
    let version = &rest[..rest.find(']')?];
    Some(version.trim().to_owned())
}

/// Whether `version` is at least [`MIN_VERSION`].
pub fn is_supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|part| {
        part.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= MIN_VERSION
}

/// `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| std::fs::metadata(path).is_ok_and(|meta| meta.is_file()))
    })
}

/// The version `program --version` reports, if it runs.
fn version_of(program: &Path) -> Option<String> {
    let output = std::process::Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| parse_version(&String::from_utf8_lossy(&output.stdout)))
        .flatten()
}

/// The private install's directory under `cache` (`.../sombrero`).
pub fn private_dir(cache: &Path) -> PathBuf {
    cache.join("ansible").join(format!("core-{PINNED_VERSION}"))
}

const COMPLETE: &str = ".sombrero-complete";

/// The usable `ansible-playbook`, without installing anything: `PATH` first, then the
/// private install. `None` when neither is there (see [`install_private`]).
pub fn find(cache: &Path) -> Option<AnsibleInstall> {
    if let Some(playbook) = which("ansible-playbook")
        && let Some(version) = version_of(&playbook)
    {
        if is_supported(&version) {
            return Some(AnsibleInstall {
                playbook,
                version,
                origin: AnsibleOrigin::Path,
            });
        }
        tracing::info!(
            "ansible-playbook on PATH is ansible-core {version}, older than {}.{}; using a private install",
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    }
    let dir = private_dir(cache);
    let playbook = dir.join("bin/ansible-playbook");
    if dir.join(COMPLETE).exists()
        && let Some(version) = version_of(&playbook)
    {
        return Some(AnsibleInstall {
            playbook,
            version,
            origin: AnsibleOrigin::Private,
        });
    }
    None
}

/// Installs the pinned ansible-core into the private venv (`python3 -m venv`, then pip
/// from `PyPI`), reporting each step through `progress`.
///
/// # Errors
/// [`ConfigureError::AnsibleNotInstallable`] naming the step that failed and why.
pub async fn install_private(
    cache: &Path,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<AnsibleInstall, ConfigureError> {
    let dir = private_dir(cache);
    let failed = |step: &str, reason: String| ConfigureError::AnsibleNotInstallable {
        step: step.to_owned(),
        reason,
    };
    let python = which("python3").ok_or_else(|| {
        failed(
            "find python3",
            "no python3 on PATH (ansible-core needs Python 3.11 or newer)".to_owned(),
        )
    })?;
    // A venv cannot be moved once built: a half-built one is removed and built again.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap_or(cache))
        .map_err(|error| failed("create the cache directory", error.to_string()))?;
    progress(&format!(
        "creating a virtual environment in {}",
        dir.display()
    ));
    run_step(&python, &["-m", "venv", &dir.display().to_string()])
        .await
        .map_err(|reason| failed("python3 -m venv", reason))?;
    progress(&format!(
        "installing ansible-core {PINNED_VERSION} from PyPI"
    ));
    let pip = dir.join("bin/pip");
    run_step(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("ansible-core=={PINNED_VERSION}"),
        ],
    )
    .await
    .map_err(|reason| failed("pip install ansible-core", reason))?;
    let playbook = dir.join("bin/ansible-playbook");
    let version = version_of(&playbook).ok_or_else(|| {
        failed(
            "ansible-playbook --version",
            "the installed ansible-playbook does not run".to_owned(),
        )
    })?;
    std::fs::write(dir.join(COMPLETE), format!("{version}\n"))
        .map_err(|error| failed("mark the install complete", error.to_string()))?;
    Ok(AnsibleInstall {
        playbook,
        version,
        origin: AnsibleOrigin::Private,
    })
}

/// Runs one install step; its stderr's last lines are the reason when it fails.
async fn run_step(program: &Path, args: &[&str]) -> Result<(), String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|error| format!("{}: {error}", program.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Err(tail.into_iter().rev().collect::<Vec<_>>().join(" / "))
}

#[cfg(test)]
mod tests {
    use super::{is_supported, parse_version};

    #[test]
    fn versions_are_read_and_compared_by_number() {
        let text = "ansible-playbook [core 2.19.14]\n  config file = None\n";
        assert_eq!(parse_version(text).as_deref(), Some("2.19.14"));
        assert_eq!(parse_version("ansible-playbook 2.9.6\n"), None);
        assert!(is_supported("2.15.0"));
        assert!(is_supported("2.19.14"));
        assert!(!is_supported("2.14.18"));
        assert!(!is_supported("2.9.27"), "2.9 < 2.15 by number, not by text");
        assert!(is_supported("2.20.0rc1"));
    }
}
