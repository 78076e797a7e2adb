//! Waiting for cloud-init on the VM before Ansible touches it.
//!
//! Why: a freshly cloned VM may still be running cloud-init (package upgrades, user
//! creation, SSH keys); a playbook racing it fails on the apt lock or on a missing user.
//! `cloud-init status --wait` blocks until it is done; the deadline is sombrero's
//! (`timeout` on the guest, so a hung cloud-init ends the wait, not the connection).
//! `error` and `degraded` are failures with cloud-init's own words.

use std::time::Duration;

use super::error::ConfigureError;
use crate::ssh::Session;

/// Printed after the status when the guest has the Python Ansible needs (asked in the same
/// round trip).
const PYTHON_PRESENT: &str = "python3-present";
/// Written by cloud-init when the final stage of this boot ended (tmpfs: gone on reboot).
const RESULT_JSON: &str = "/run/cloud-init/result.json";

/// `done` when the quick probe's output holds a `result.json` with no errors and no
/// recoverable errors (cloud-init 23.4+); `None` sends the caller to the full wait.
fn finished_without_errors(probe: &str) -> Option<CloudInitStatus> {
    let start = probe.find('{')?;
    let result: serde_json::Value = serde_json::from_str(probe[start..].trim()).ok()?;
    let v1 = result.get("v1")?;
    let empty = |key: &str| match v1.get(key) {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Array(items)) => items.is_empty(),
        Some(serde_json::Value::Object(map)) => map.values().all(|value| match value {
            serde_json::Value::Array(items) => items.is_empty(),
            _ => false,
        }),
        Some(_) => false,
    };
    (empty("errors") && empty("recoverable_errors")).then(|| CloudInitStatus {
        status: "done".to_owned(),
        detail: v1
            .get("datasource")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        python: true,
    })
}

/// cloud-init's final state as `cloud-init status --long` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudInitStatus {
    /// `done`, `error`, `degraded done`, `running`, `disabled`, ...
    pub status: String,
    /// The `detail`/`errors` lines, joined.
    pub detail: String,
    /// Whether `/usr/bin/python3` exists on the guest.
    pub python: bool,
}

impl CloudInitStatus {
    /// Reads `cloud-init status --long` output (22.4 to 24.x formats).
    pub fn parse(text: &str) -> Self {
        let mut status = String::new();
        let mut extended = None;
        let mut detail = Vec::new();
        let mut in_detail = false;
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("status:") {
                value.trim().clone_into(&mut status);
                in_detail = false;
            } else if let Some(value) = line.strip_prefix("extended_status:") {
                extended = Some(value.trim().to_owned());
                in_detail = false;
            } else if line.starts_with("detail:")
                || line.starts_with("errors:")
                || line.starts_with("recoverable_errors:")
            {
                in_detail = true;
                let rest = line.split_once(':').map_or("", |(_, rest)| rest).trim();
                if !rest.is_empty() && rest != "[]" && rest != "{}" {
                    detail.push(rest.to_owned());
                }
            } else if in_detail && !is_key_line(line) && line != PYTHON_PRESENT {
                let item = line.trim().trim_start_matches("- ").to_owned();
                if !item.is_empty() {
                    detail.push(item);
                }
            } else {
                in_detail = false;
            }
        }
        Self {
            status: extended.unwrap_or(status),
            detail: detail.join("; "),
            python: text.lines().any(|line| line == PYTHON_PRESENT),
        }
    }

    /// Whether Ansible may go on.
    pub fn is_finished_well(&self) -> bool {
        let words: Vec<&str> = self.status.split_whitespace().collect();
        !words
            .iter()
            .any(|word| *word == "error" || *word == "degraded")
            && (words.contains(&"done") || words.contains(&"disabled"))
    }
}

/// `key:` at the start of a line (`time:`, `boot_status_code:`), which ends a detail block.
fn is_key_line(line: &str) -> bool {
    line.split_once(':').is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

/// Waits at most `limit` for cloud-init on the VM behind `session`; `vm` names it in errors.
///
/// # Errors
/// SSH failures, no `/usr/bin/python3`, the deadline, and cloud-init ending `error` or
/// `degraded`.
pub async fn wait(
    session: &Session,
    vm: &str,
    limit: Duration,
) -> Result<CloudInitStatus, ConfigureError> {
    // Fast path, no Python on the guest (each cloud-init call costs seconds under TCG):
    // cloud-init writes /run/cloud-init/result.json when its last stage of this boot
    // ended; without errors that is `done`, as `cloud-init status` itself reads it.
    let quick = format!(
        "test -x /usr/bin/python3 && echo {PYTHON_PRESENT}; \
         test -s {RESULT_JSON} && cat {RESULT_JSON}"
    );
    let output = session.run(&quick, Duration::from_secs(60)).await?;
    let python = output.stdout.lines().any(|line| line == PYTHON_PRESENT);
    if !python {
        return Err(ConfigureError::NoPython { vm: vm.to_owned() });
    }
    if let Some(done) = finished_without_errors(&output.stdout) {
        return Ok(done);
    }
    let seconds = limit.as_secs().max(1);
    let script = format!(
        "timeout {seconds} cloud-init status --wait >/dev/null 2>&1; echo \"wait-exit: $?\"; \
         cloud-init status --long 2>&1; test -x /usr/bin/python3 && echo {PYTHON_PRESENT}"
    );
    // The connection itself gets a minute beyond the guest-side deadline.
    let output = session
        .run(&script, Duration::from_secs(seconds + 60))
        .await?;
    let status = CloudInitStatus::parse(&output.stdout);
    // First: without Python neither cloud-init (a Python program) nor Ansible runs, and
    // cloud-init's own status would only be empty.
    if !status.python {
        return Err(ConfigureError::NoPython { vm: vm.to_owned() });
    }
    if output.stdout.contains("wait-exit: 124") {
        return Err(ConfigureError::CloudInitTimeout {
            vm: vm.to_owned(),
            seconds,
            status: status.status,
        });
    }
    if !status.is_finished_well() {
        return Err(ConfigureError::CloudInitFailed {
            vm: vm.to_owned(),
            detail: if status.detail.is_empty() {
                "no detail given".to_owned()
            } else {
                status.detail.clone()
            },
            status: if status.status.is_empty() {
                "no status".to_owned()
            } else {
                status.status
            },
        });
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::CloudInitStatus;

    #[test]
    fn a_result_json_without_errors_is_done_and_any_error_is_not() {
        let quick =
            |json: &str| super::finished_without_errors(&format!("python3-present\n{json}\n"));
        let done =
            quick(r#"{"v1": {"datasource": "DataSourceNoCloud [seed=/dev/sr0]", "errors": []}}"#)
                .expect("no errors: done");
        assert_eq!(done.status, "done");
        assert!(done.detail.contains("NoCloud"));
        assert!(done.is_finished_well());
        let newer = r#"{"v1": {"datasource": "x", "errors": [], "recoverable_errors": {}}}"#;
        assert!(quick(newer).is_some());
        let failed =
            r#"{"v1": {"datasource": "x", "errors": ["('scripts_user', RuntimeError())"]}}"#;
        assert!(quick(failed).is_none());
        let degraded = r#"{"v1": {"errors": [], "recoverable_errors": {"WARNING": ["Failed to set locale"]}}}"#;
        assert!(quick(degraded).is_none());
        // Not finished yet (no file) or unreadable: the full wait decides.
        assert!(super::finished_without_errors("python3-present\n").is_none());
        assert!(quick("{not json").is_none());
    }

    #[test]
    fn statuses_of_old_and_new_cloud_init_are_read() {
        let done = CloudInitStatus::parse(
            "wait-exit: 0\nstatus: done\ntime: Fri, 04 Dec 2026 18:00:00 +0000\ndetail:\nDataSourceNoCloud [seed=/dev/sr0][dsmode=net]\n",
        );
        assert_eq!(done.status, "done");
        assert!(!done.python);
        assert!(CloudInitStatus::parse("status: done\npython3-present\n").python);
        assert!(done.is_finished_well());
        let error = CloudInitStatus::parse(
            "status: error\ntime: x\ndetail:\n('package_update_upgrade_install', ProcessExecutionError('apt-get failed'))\n",
        );
        assert!(!error.is_finished_well());
        assert!(error.detail.contains("apt-get failed"), "{error:?}");
        // cloud-init 23.4+: degraded is told in extended_status.
        let degraded = CloudInitStatus::parse(
            "status: done\nextended_status: degraded done\nboot_status_code: enabled-by-generator\nrecoverable_errors:\n  WARNING:\n    - Failed to set locale\n",
        );
        assert_eq!(degraded.status, "degraded done");
        assert!(!degraded.is_finished_well());
        assert!(
            degraded.detail.contains("Failed to set locale"),
            "{degraded:?}"
        );
        assert!(!CloudInitStatus::parse("status: running\n").is_finished_well());
    }
}
