//! The vocabulary between a running deploy and whoever watches it: steps, events and the
//! deadlines of the waits.
//!
//! Why a module of its own: the binary renders these events (progress lines) and records
//! them (history phases), `destroy` emits the same kinds, and none of that should depend
//! on how `apply` sequences its work.

use std::time::Duration;

use pve::WaitEvent;
use serde::Serialize;

/// A step of a deploy, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Clone,
    Configure,
    Resize,
    Restart,
    Start,
    Address,
    HostKey,
    Ssh,
    Outputs,
    /// Destroy: shutdown (stop as fallback).
    Stop,
    /// Destroy: delete with purge.
    Delete,
    /// Destroy: remove outputs and host keys.
    Cleanup,
}

impl Step {
    /// The history phase the step belongs to (decision 055's names).
    pub fn phase(self) -> &'static str {
        match self {
            Self::Clone => "clone",
            Self::Configure | Self::Resize => "configure-vm",
            Self::Restart | Self::Start | Self::Address | Self::HostKey | Self::Ssh => "start",
            Self::Outputs => "outputs",
            Self::Stop | Self::Delete | Self::Cleanup => "destroy",
        }
    }
}

/// Something a deploy reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeployEvent {
    /// A step began; `what` is a line for a person.
    Started { step: Step, what: String },
    /// A step ended well.
    Finished { step: Step, detail: String },
    /// A step was not done, and why.
    Skipped { step: Step, reason: String },
    /// A wait inside the current step observed something.
    Waiting { event: WaitEvent },
}

/// The callback that receives events.
pub type Events<'a> = &'a (dyn Fn(&DeployEvent) + Send + Sync);

/// Deadlines of the waits.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub clone: Duration,
    pub power: Duration,
    pub shutdown_grace: Duration,
    pub agent: Duration,
    pub ssh: Duration,
}

impl Timeouts {
    /// The defaults, with the agent wait from a `SOMBRERO_AGENT_WAIT`-style value (whole
    /// seconds, at least 1; anything else keeps the default 300 s). For rehearsals and
    /// tests against a lab, where 300 s of a silent agent is only waiting.
    #[must_use]
    pub fn with_agent_wait(self, value: Option<&str>) -> Self {
        match value
            .and_then(|text| text.trim().parse::<u64>().ok())
            .filter(|seconds| *seconds > 0)
        {
            Some(seconds) => Self {
                agent: Duration::from_secs(seconds),
                ..self
            },
            None => self,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            clone: Duration::from_secs(900),
            power: Duration::from_secs(180),
            shutdown_grace: Duration::from_secs(60),
            agent: Duration::from_secs(300),
            ssh: Duration::from_secs(180),
        }
    }
}
