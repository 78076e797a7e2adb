//! What Ansible reports while a playbook runs: the JSON lines of the repository's
//! `sombrero_events` callback (`ansible/callback_plugins/`), typed, and a reader that
//! follows the file as Ansible writes it.
//!
//! Why a file followed by polling: Ansible appends one line per event and flushes it; the
//! reader picks up complete lines every 100 ms. The file stays next to the log as the
//! record of what ran (the task timings the benchmark compares against).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A task's outcome on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// The recap counters of one host (`PLAY RECAP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recap {
    pub ok: u32,
    pub changed: u32,
    pub failed: u32,
    pub unreachable: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

/// One line of the events file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AnsibleEvent {
    PlaybookStart {
        playbook: String,
        time: f64,
    },
    PlayStart {
        play: String,
        time: f64,
    },
    TaskStart {
        task: String,
        role: Option<String>,
        handler: bool,
        time: f64,
    },
    TaskResult {
        task: String,
        role: Option<String>,
        host: String,
        status: TaskStatus,
        changed: bool,
        ignored: bool,
        message: String,
        duration: Option<f64>,
        time: f64,
    },
    Stats {
        hosts: BTreeMap<String, Recap>,
        time: f64,
    },
}

impl AnsibleEvent {
    /// When Ansible wrote it (seconds since the epoch).
    pub fn time(&self) -> f64 {
        match self {
            Self::PlaybookStart { time, .. }
            | Self::PlayStart { time, .. }
            | Self::TaskStart { time, .. }
            | Self::TaskResult { time, .. }
            | Self::Stats { time, .. } => *time,
        }
    }
}

/// Follows an events file: each call to [`Follower::poll`] returns the complete lines
/// written since the last call.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl Follower {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
        }
    }

    /// New events (lines that are not events are skipped).
    pub fn poll(&mut self) -> Vec<AnsibleEvent> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut reader = std::io::BufReader::new(file);
        let mut events = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    self.offset += read as u64;
                    if !line.ends_with('\n') {
                        // Ansible is still writing it: keep the piece for the next poll.
                        self.partial.push_str(&line);
                        continue;
                    }
                    let whole = std::mem::take(&mut self.partial) + &line;
                    if let Ok(event) = serde_json::from_str(whole.trim_end()) {
                        events.push(event);
                    }
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::{AnsibleEvent, Follower, TaskStatus};
    use std::io::Write as _;

    #[test]
    fn the_follower_returns_whole_lines_once_and_waits_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut follower = Follower::new(&path);
        assert!(follower.poll().is_empty(), "no file yet");
        let mut file = std::fs::File::create(&path).unwrap();
        let result = r#"{"event": "task_result", "task": "Install Docker", "role": "docker", "host": "jump-man", "status": "changed", "changed": true, "ignored": false, "message": "", "duration": 12.5, "time": 2.0}"#;
        let start = r#"{"event": "task_start", "task": "Install Docker", "role": "docker", "handler": false, "time": 1.0}"#;
        write!(file, "{start}\n{}", &result[..40]).unwrap();
        file.flush().unwrap();
        let first = follower.poll();
        assert_eq!(first.len(), 1);
        assert!(
            matches!(&first[0], AnsibleEvent::TaskStart { role: Some(role), .. } if role == "docker")
        );
        writeln!(file, "{}", &result[40..]).unwrap();
        let second = follower.poll();
        assert!(
            matches!(&second[..], [AnsibleEvent::TaskResult { status: TaskStatus::Changed, duration: Some(d), .. }] if (*d - 12.5).abs() < 1e-9),
            "{second:?}"
        );
        assert!(follower.poll().is_empty());
    }
}
