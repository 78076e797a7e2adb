//! Running a command inside the VM for `diagnose`: through the QEMU guest agent when it
//! answers (it works when SSH does not: a firewall rule, a lost key, a dead sshd), else
//! over SSH with the pinned host key.

use std::time::{Duration, Instant};

use base64::Engine as _;
use pve::Client;

use crate::ssh::Session;

/// How a command reached the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Agent,
    Ssh,
}

/// What a command printed and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestOutput {
    pub code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub via: Via,
}

impl GuestOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The ways into one VM, tried in order: agent, then SSH.
#[derive(Debug)]
pub struct Guest<'a> {
    pub(super) client: Option<&'a Client>,
    pub(super) node: String,
    pub(super) vmid: u64,
    /// Whether the agent answered its ping.
    pub agent: bool,
    pub(super) ssh: Option<Session>,
    /// Whether SSH connected (set by the first command that tried it).
    pub ssh_error: Option<String>,
}

/// How long one command may take inside the guest.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

impl<'a> Guest<'a> {
    /// Pings the agent; SSH is tried only when a command needs it.
    pub async fn open(
        client: Option<&'a Client>,
        node: &str,
        vmid: u64,
        ssh: Option<Session>,
    ) -> Guest<'a> {
        let agent = match client {
            Some(client) => client.agent_ping(node, vmid).await.is_ok(),
            None => false,
        };
        Guest {
            client,
            node: node.to_owned(),
            vmid,
            agent,
            ssh,
            ssh_error: None,
        }
    }

    /// Whether any way in exists.
    pub fn reachable(&self) -> bool {
        self.agent || (self.ssh.is_some() && self.ssh_error.is_none())
    }

    /// Runs `script` as root (`sh -c` through the agent, `sudo -n sh -c` over SSH);
    /// `None` when neither way works.
    pub async fn run(&mut self, script: &str) -> Option<GuestOutput> {
        if self.agent
            && let Some(output) = self.run_agent(script).await
        {
            return Some(output);
        }
        let session = self.ssh.as_ref()?;
        if self.ssh_error.is_some() {
            return None;
        }
        let quoted = format!("sudo -n sh -c '{}'", script.replace('\'', r"'\''"));
        match session.run(&quoted, COMMAND_LIMIT).await {
            Ok(output) => Some(GuestOutput {
                code: output.code.map(i64::from),
                stdout: output.stdout,
                stderr: output.stderr,
                via: Via::Ssh,
            }),
            Err(error) => {
                self.ssh_error = Some(error.to_string());
                None
            }
        }
    }

    async fn run_agent(&self, script: &str) -> Option<GuestOutput> {
        let client = self.client?;
        let pid = client
            .agent_exec(&self.node, self.vmid, &["sh", "-c", script], None)
            .await
            .ok()?;
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            let status = client
                .agent_exec_status(&self.node, self.vmid, pid)
                .await
                .ok()?;
            if status.exited {
                return Some(GuestOutput {
                    code: status.exitcode.and_then(|code| i64::try_from(code).ok()),
                    stdout: status.out_data.unwrap_or_default(),
                    stderr: status.err_data.unwrap_or_default(),
                    via: Via::Agent,
                });
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reads a file as root (the agent's `file-read`, else `cat` over SSH).
    pub async fn read_file(&mut self, path: &str) -> Option<String> {
        if self.agent
            && let Some(client) = self.client
            && let Ok(read) = client.agent_file_read(&self.node, self.vmid, path).await
        {
            return Some(read.content);
        }
        let output = self.run(&format!("cat {path}")).await?;
        output.success().then_some(output.stdout)
    }
}

/// `ssh-ed25519 AAAA... comment` -> `AAAA...` (what an `authorized_keys` line must hold).
pub fn key_body(public_key: &str) -> Option<&str> {
    let body = public_key.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .map(|_| body)
}
