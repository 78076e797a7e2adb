//! Waiting for the VM's address through the guest agent, with one reboot when it stays
//! silent.
//!
//! Why the reboot: an agent that never answers is most often a guest stuck early in its
//! first boot or an agent service that did not start; an operator's first move is `qm
//! reboot`. One reboot through the API, announced, then one more full wait; after that the
//! deploy fails with the runbook's question (is `qemu-guest-agent` in the template?)
//! instead of repeating the same silent wait on every re-run. A VM that disappears during
//! the wait ends it at once (the client treats "does not exist" as final).

use std::net::IpAddr;
use std::time::Duration;

use pve::endpoints::PowerAction;
use pve::{Client, WaitEvent};

use super::error::{DeployError, DeployResult};

/// The agent wait's longest poll interval: a boot is the longest wait of a deploy, and
/// the cap is how late its end is noticed (half of it on average). 500 ms instead of the
/// client's 1 s halves that for about twice the (cheap) agent calls; see
/// docs/performance.md, "Deploy".
pub(super) const AGENT_POLL_CAP: Duration = Duration::from_millis(500);

/// The VM's address from its guest agent, rebooting the VM once if the agent stays silent
/// for `agent_timeout`.
///
/// # Errors
/// [`DeployError::AgentSilent`] after the reboot and a second silent wait; API errors.
pub(crate) async fn agent_address(
    client: &Client,
    node: &str,
    vmid: u32,
    agent_timeout: Duration,
    power_timeout: Duration,
    progress: pve::Progress<'_>,
) -> DeployResult<IpAddr> {
    let wait = || {
        client.wait_agent_address_every(
            node,
            u64::from(vmid),
            agent_timeout,
            AGENT_POLL_CAP,
            progress,
        )
    };
    let doing = "waiting for the guest agent's address";
    let last = match wait().await {
        Ok(address) => return Ok(address),
        Err(pve::Error::Deadline { last, .. }) => last,
        Err(error) => return Err(DeployError::api(doing, error)),
    };
    progress(&WaitEvent::Retrying {
        what: format!("the guest agent wait after rebooting VM {vmid}"),
        attempt: 2,
        reason: format!(
            "the agent did not report an address within {} s ({})",
            agent_timeout.as_secs(),
            last.as_deref().unwrap_or("no answer")
        ),
    });
    let upid = client
        .vm_power(node, u64::from(vmid), PowerAction::Reboot)
        .await
        .map_err(|error| DeployError::api(format!("rebooting VM {vmid}"), error))?;
    client
        .wait_task(&upid, power_timeout, progress)
        .await
        .map_err(|error| DeployError::api(format!("rebooting VM {vmid}"), error))?;
    match wait().await {
        Ok(address) => Ok(address),
        Err(pve::Error::Deadline { waited, last, .. }) => Err(DeployError::AgentSilent {
            vmid,
            node: node.to_owned(),
            waited: agent_timeout + waited,
            last,
        }),
        Err(error) => Err(DeployError::api(doing, error)),
    }
}
