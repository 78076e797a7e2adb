//! Task status and task logs.
//!
//! Why: a task's HTTP call succeeding says nothing about the operation; the outcome is in
//! `exitstatus`, where `WARNINGS: N` is a success and anything other than `OK` is the error
//! text. Encoding that once here keeps every caller from string-matching on its own.

use serde::{Deserialize, Serialize};

use super::upid::Upid;
use crate::lenient;

/// How a stopped task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExitStatus {
    /// `OK`.
    Ok,
    /// `WARNINGS: N`: the task succeeded and logged N warnings.
    Warnings(u32),
    /// Any other text: the task failed with this message.
    Failed(String),
}

impl ExitStatus {
    /// Reads PVE's `exitstatus` text.
    pub fn parse(text: &str) -> Self {
        let trimmed = text.trim();
        if trimmed == "OK" {
            return Self::Ok;
        }
        if let Some(count) = trimmed
            .strip_prefix("WARNINGS:")
            .and_then(|rest| rest.trim().parse().ok())
        {
            return Self::Warnings(count);
        }
        Self::Failed(trimmed.to_owned())
    }

    /// `OK` and `WARNINGS: N` are successes.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Ok | Self::Warnings(_))
    }
}

/// Whether a task still runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskState {
    Running,
    Stopped { exit: ExitStatus },
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskStatus {
    pub upid: Upid,
    pub state: TaskState,
    pub task_type: String,
    pub user: String,
}

#[derive(Deserialize)]
struct RawTaskStatus {
    upid: Upid,
    status: String,
    #[serde(default, deserialize_with = "lenient::option_string")]
    exitstatus: Option<String>,
    #[serde(default, rename = "type")]
    task_type: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawTaskStatus::deserialize(deserializer)?;
        let state = match raw.status.as_str() {
            "running" => TaskState::Running,
            "stopped" => TaskState::Stopped {
                exit: ExitStatus::parse(raw.exitstatus.as_deref().unwrap_or("unknown")),
            },
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown task status {other:?}"
                )));
            }
        };
        Ok(Self {
            task_type: raw
                .task_type
                .unwrap_or_else(|| raw.upid.task_type().to_owned()),
            user: raw.user.unwrap_or_else(|| raw.upid.user().to_owned()),
            upid: raw.upid,
            state,
        })
    }
}

impl TaskStatus {
    /// Whether the task has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, TaskState::Stopped { .. })
    }

    /// The exit status once stopped.
    pub fn exit(&self) -> Option<&ExitStatus> {
        match &self.state {
            TaskState::Stopped { exit } => Some(exit),
            TaskState::Running => None,
        }
    }
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLogLine {
    /// Line number, starting at 1.
    #[serde(rename = "n", deserialize_with = "lenient::u64")]
    pub number: u64,
    /// Line text.
    #[serde(rename = "t")]
    pub text: String,
}

/// One entry of `GET /nodes/{node}/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub upid: Upid,
    #[serde(rename = "type")]
    pub task_type: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// Exit status text once finished (`OK`, `WARNINGS: N`, error text); absent while running.
    #[serde(default, deserialize_with = "lenient::option_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub starttime: Option<u64>,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub endtime: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::{ExitStatus, TaskState, TaskStatus};
    use serde_json::json;

    const UPID: &str = "UPID:pve1:00001234:00ABCDEF:6745A1B2:qmclone:9000:root@pam:";

    #[test]
    fn exit_status_treats_warnings_as_success() {
        assert_eq!(ExitStatus::parse("OK"), ExitStatus::Ok);
        assert_eq!(ExitStatus::parse("WARNINGS: 3"), ExitStatus::Warnings(3));
        assert!(ExitStatus::parse("WARNINGS: 3").is_success());
        let failed = ExitStatus::parse("clone failed: can't lock file - got timeout");
        assert!(!failed.is_success());
        assert_eq!(
            failed,
            ExitStatus::Failed("clone failed: can't lock file - got timeout".into())
        );
    }

    #[test]
    fn decodes_running_and_stopped_statuses() {
        let running: TaskStatus = serde_json::from_value(json!({
            "upid": UPID, "status": "running", "type": "qmclone", "user": "root@pam",
            "pid": 4660, "pstart": 11_259_375, "starttime": 1_732_616_626, "node": "pve1", "id": "9000"
        }))
        .unwrap();
        assert_eq!(running.state, TaskState::Running);
        assert!(!running.is_finished());
        let stopped: TaskStatus = serde_json::from_value(json!({
            "upid": UPID, "status": "stopped", "exitstatus": "WARNINGS: 1"
        }))
        .unwrap();
        assert_eq!(stopped.exit(), Some(&ExitStatus::Warnings(1)));
        assert_eq!(stopped.task_type, "qmclone");
        assert!(
            serde_json::from_value::<TaskStatus>(json!({"upid": UPID, "status": "odd"})).is_err()
        );
    }
}
