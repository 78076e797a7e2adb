//! Running `ansible-playbook` with sombrero's settings, its output saved to a log and its
//! events followed as they happen.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::ansible::AnsibleInstall;
use super::error::ConfigureError;
use super::events::{AnsibleEvent, Follower, Recap};
use super::tree::AnsibleTree;

/// One playbook run.
#[derive(Debug, Clone)]
pub struct PlaybookRun<'a> {
    pub ansible: &'a AnsibleInstall,
    pub tree: &'a AnsibleTree,
    /// Relative to the tree, e.g. `playbooks/post-deploy.yml`.
    pub playbook: &'a str,
    pub inventory: &'a Path,
    /// Passed with `-e @file` (a temporary file).
    pub extra_vars: &'a Value,
    /// The SSH control directory to share (a [`crate::ssh::Session`]'s).
    pub control_dir: Option<&'a Path>,
    /// Where Ansible's own output goes.
    pub log: &'a Path,
    /// Where the events go (JSON lines).
    pub events_file: &'a Path,
}

/// How a playbook run ended.
#[derive(Debug, Clone)]
pub struct PlaybookOutcome {
    /// `ansible-playbook`'s exit code (`None`: killed).
    pub code: Option<i32>,
    pub events: Vec<AnsibleEvent>,
}

impl PlaybookOutcome {
    /// The recap of `host` (from the final stats event).
    pub fn recap(&self, host: &str) -> Option<Recap> {
        self.events.iter().rev().find_map(|event| match event {
            AnsibleEvent::Stats { hosts, .. } => hosts.get(host).copied(),
            _ => None,
        })
    }

    /// Seconds from the playbook's start to its stats, by Ansible's own clock.
    pub fn ansible_seconds(&self) -> f64 {
        let start = self.events.iter().find_map(|event| match event {
            AnsibleEvent::PlaybookStart { time, .. } => Some(*time),
            _ => None,
        });
        let end = self.events.last().map(AnsibleEvent::time);
        match (start, end) {
            (Some(start), Some(end)) if end >= start => end - start,
            _ => 0.0,
        }
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ConfigureError {
    let path = path.to_path_buf();
    move |source| ConfigureError::Io { what, path, source }
}

/// Runs the playbook, calling `on_event` for each event as Ansible reports it.
///
/// # Errors
/// [`ConfigureError::Io`] when the log, the events file or the process cannot be set up.
/// A playbook that fails is an `Ok` outcome: the caller reads the events.
pub async fn run(
    run: &PlaybookRun<'_>,
    on_event: &(dyn Fn(&AnsibleEvent) + Send + Sync),
) -> Result<PlaybookOutcome, ConfigureError> {
    for path in [run.log, run.events_file] {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        }
    }
    let log = std::fs::File::create(run.log).map_err(io_error("create", run.log))?;
    let log_err = log.try_clone().map_err(io_error("open", run.log))?;
    std::fs::File::create(run.events_file).map_err(io_error("create", run.events_file))?;
    let mut vars = tempfile::Builder::new()
        .prefix("sombrero-vars-")
        .suffix(".json")
        .tempfile()
        .map_err(io_error("create", &std::env::temp_dir()))?;
    std::io::Write::write_all(&mut vars, run.extra_vars.to_string().as_bytes())
        .map_err(io_error("write", vars.path()))?;

    let playbook = run.tree.playbook(run.playbook);
    let mut command = tokio::process::Command::new(&run.ansible.playbook);
    command
        .arg("-i")
        .arg(run.inventory)
        .arg(&playbook)
        .arg("-e")
        .arg(format!("@{}", vars.path().display()))
        .current_dir(&run.tree.dir)
        .env("ANSIBLE_CONFIG", run.tree.config())
        .env(
            crate::settings::env_vars::SOMBRERO_ANSIBLE_EVENTS,
            run.events_file,
        )
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true);
    if let Some(dir) = run.control_dir {
        command.env("ANSIBLE_SSH_CONTROL_PATH_DIR", dir);
    }
    tracing::info!(
        "running {} {} with {}",
        run.ansible.playbook.display(),
        playbook.display(),
        run.tree.config().display()
    );
    let mut child = command
        .spawn()
        .map_err(io_error("run", &run.ansible.playbook))?;
    let mut follower = Follower::new(run.events_file);
    let mut events = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.map_err(io_error("wait for", &run.ansible.playbook))?,
            _ = tick.tick() => {
                for event in follower.poll() {
                    on_event(&event);
                    events.push(event);
                }
            }
        }
    };
    for event in follower.poll() {
        on_event(&event);
        events.push(event);
    }
    Ok(PlaybookOutcome {
        code: status.code(),
        events,
    })
}

/// The last `lines` lines of `path` (for errors that happen before any task).
pub fn tail(path: &PathBuf, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .rev()
        .take(lines)
        .collect();
    kept.into_iter().rev().collect::<Vec<_>>().join(" / ")
}
