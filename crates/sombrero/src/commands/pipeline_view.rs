//! What `up` and `rollback` print at the end: the runbook's summary (each stage with its
//! time, the VM, the SSH command with the pinned host key, where the outputs are).
//!
//! Why its own module: the same table ends a finished run (stdout, the command's result)
//! and a failed one (stderr, how far it got), and the SSH command must be exactly the
//! one stage 3 and verify use, so an operator's first login checks the same host key.

use std::fmt::Write as _;

use serde::Serialize;
use sombrero_core::deploy::outputs::StageOutputs;

use super::up::UpReport;

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    Done,
    Skipped,
    Failed,
}

/// One stage of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct StageLine {
    pub name: String,
    pub status: StageStatus,
    pub seconds: f64,
    pub detail: String,
}

/// `value` as one shell word (single-quoted when it holds anything special).
fn shell_word(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_~".contains(c));
    if plain && !value.is_empty() {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// The SSH command that reaches the VM with its pinned host key (and the key stage 3
/// uses, when one was found at deploy time).
pub fn ssh_command(outputs: &StageOutputs) -> String {
    let mut command = "ssh".to_owned();
    if let Some(key) = &outputs.ssh_key_path {
        let _ = write!(command, " -i {}", shell_word(key));
    }
    let _ = write!(
        command,
        " -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
        shell_word(&outputs.known_hosts_file)
    );
    if outputs.ssh_port != 22 {
        let _ = write!(command, " -p {}", outputs.ssh_port);
    }
    let _ = write!(command, " {}@{}", outputs.ssh_user, outputs.ssh_host);
    command
}

/// The summary; `complete` false for a run that stopped (no VM lines then).
pub fn render_summary(report: &UpReport, complete: bool) -> String {
    let mut text = format!("environment {}:\n", report.environment);
    for stage in &report.stages {
        let mark = match stage.status {
            StageStatus::Done => "✓",
            StageStatus::Skipped => "-",
            StageStatus::Failed => "✗",
        };
        let detail = stage.detail.lines().next().unwrap_or_default();
        let detail = match stage.status {
            StageStatus::Skipped => format!("skipped: {detail}"),
            _ => detail.to_owned(),
        };
        let _ = writeln!(
            text,
            "  {mark} {:<10} {:>7.1} s  {detail}",
            stage.name, stage.seconds
        );
    }
    let _ = writeln!(text, "  total        {:>7.1} s", report.total_seconds);
    if complete {
        if let (Some(id), Some(ip), Some(node)) = (&report.vm_id, &report.vm_ip, &report.node) {
            let _ = writeln!(text, "VM:       {id} on {node}, address {ip}");
        }
        if let Some(ssh) = &report.ssh_command {
            let _ = writeln!(text, "SSH:      {ssh}");
        }
        let _ = writeln!(
            text,
            "outputs:  {} (`sombrero outputs` shows them)",
            report.outputs_dir
        );
    }
    if let Some(lab) = &report.state_only {
        let skipped: Vec<&str> = report
            .stages
            .iter()
            .filter(|stage| stage.status == StageStatus::Skipped && stage.name != "build")
            .map(|stage| stage.name.as_str())
            .collect();
        let _ = writeln!(
            text,
            "the lab's guests are state-only here, so {} did not run: {}",
            if skipped.is_empty() {
                "stage 3 and verify".to_owned()
            } else {
                skipped.join(" and ")
            },
            lab.reasons.join("; ")
        );
        if !lab.fix.is_empty() {
            let _ = writeln!(text, "fix:      {}", lab.fix);
        }
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::{StageOutputs, shell_word, ssh_command};

    fn outputs(key: Option<&str>, port: u16) -> StageOutputs {
        StageOutputs {
            vm_ip: "192.168.10.251".into(),
            vm_hostname: "jump-man".into(),
            vm_id: "151".into(),
            ssh_user: "ansible".into(),
            ssh_key_path: key.map(Into::into),
            ansible_inventory: serde_json::json!({}),
            node: "lloyd".into(),
            template_id: Some("1001".into()),
            environment: "development".into(),
            ssh_host: "127.0.0.1".into(),
            ssh_port: port,
            known_hosts_file: "/tmp/my dir/known_hosts".into(),
            inventory_file: "inventory.yml".into(),
            deployed_at: "2026-12-05T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_ssh_command_pins_the_host_key_and_quotes_paths() {
        assert_eq!(
            ssh_command(&outputs(Some("/home/op/.ssh/jump"), 40022)),
            "ssh -i /home/op/.ssh/jump -o UserKnownHostsFile='/tmp/my dir/known_hosts' \
             -o StrictHostKeyChecking=yes -p 40022 ansible@127.0.0.1"
        );
        // The default port and an agent-held key need no flags.
        assert_eq!(
            ssh_command(&outputs(None, 22)),
            "ssh -o UserKnownHostsFile='/tmp/my dir/known_hosts' -o StrictHostKeyChecking=yes \
             ansible@127.0.0.1"
        );
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
