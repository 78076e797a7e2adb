//! Waiting for tasks, locks and the guest agent: always with a deadline, reporting
//! progress events, polling adaptively.
//!
//! Why adaptive polling: fixed 1-2 s sleeps are where other clients waste most of a
//! deployment, while polling fast forever hammers the API. Polls start at 50 ms and back
//! off to 1 s, so a quick task is noticed within tens of milliseconds and a slow one costs
//! one request a second.
//!
//! Dropping a wait (or hitting its deadline) does NOT cancel the server-side task: the
//! clone, start or shutdown keeps running on the node. Callers that give up must decide
//! whether to stop or clean up themselves.

use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;

use serde::Serialize;

use crate::client::Client;
use crate::error::{Error, RetrySafety, TaskFailure};
use crate::types::{TaskStatus, Upid, VmConfig, select_address};

/// Something a wait observed; handed to the caller's progress callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaitEvent {
    /// The task is still running.
    TaskRunning { upid: String, elapsed: Duration },
    /// The task is not known yet (normal right after dispatch on a cluster).
    TaskNotVisibleYet { upid: String, elapsed: Duration },
    /// The VM's config still carries a lock.
    Locked {
        vmid: u64,
        lock: String,
        elapsed: Duration,
    },
    /// The guest agent does not answer yet.
    AgentNotReady {
        vmid: u64,
        reason: String,
        elapsed: Duration,
    },
    /// The agent answers but reports no usable address yet.
    AgentNoAddress { vmid: u64, elapsed: Duration },
    /// An operation is being retried after a transient failure.
    Retrying {
        what: String,
        attempt: u32,
        reason: String,
    },
}

/// A progress callback. Use [`no_progress`] when nothing should be reported.
pub type Progress<'a> = &'a (dyn Fn(&WaitEvent) + Send + Sync);

/// A progress callback that ignores every event.
pub fn no_progress(_event: &WaitEvent) {}

/// Poll intervals: 50 ms, growing by half each time, capped at 1 s.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Poller {
    interval: Duration,
    max: Duration,
    started: Instant,
    deadline: Instant,
}

impl Poller {
    pub(crate) const FIRST: Duration = Duration::from_millis(50);
    pub(crate) const MAX: Duration = Duration::from_secs(1);

    pub(crate) fn new(timeout: Duration) -> Self {
        Self::capped(timeout, Self::MAX)
    }

    /// A poller whose interval grows to `max` instead of [`Self::MAX`].
    pub(crate) fn capped(timeout: Duration, max: Duration) -> Self {
        let started = Instant::now();
        Self {
            interval: Self::FIRST.min(max),
            max,
            started,
            deadline: started + timeout,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sleeps until the next poll; `false` when the deadline has passed.
    pub(crate) async fn next(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.interval.min(self.deadline - now)).await;
        self.interval = (self.interval * 3 / 2).min(self.max);
        true
    }

    pub(crate) fn deadline_error(&self, what: String, last: Option<String>) -> Error {
        Error::Deadline {
            what,
            waited: self.elapsed(),
            last,
        }
    }
}

/// How long "no such task" right after dispatch is tolerated.
const TASK_VISIBILITY_GRACE: Duration = Duration::from_secs(10);

/// Lines of the task log attached to a failure.
const LOG_TAIL_LINES: u64 = 20;

impl Client {
    /// Waits until task `upid` stops. `OK` and `WARNINGS: N` are success.
    ///
    /// Dropping the future or reaching the deadline does not cancel the task.
    ///
    /// # Errors
    /// [`Error::TaskFailed`] with the log's last lines, [`Error::Deadline`], or the last
    /// transport/API error.
    pub async fn wait_task(
        &self,
        upid: &Upid,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<TaskStatus, Error> {
        let mut poller = Poller::new(timeout);
        loop {
            match self.task_status(upid).await {
                Ok(status) => match status.exit() {
                    Some(exit) if exit.is_success() => return Ok(status),
                    Some(exit) => {
                        let log_tail = self
                            .task_log_tail(upid, LOG_TAIL_LINES)
                            .await
                            .unwrap_or_default();
                        let message = match exit {
                            crate::types::ExitStatus::Failed(text) => text.clone(),
                            other => format!("{other:?}"),
                        };
                        return Err(Error::TaskFailed(Box::new(TaskFailure {
                            upid: upid.clone(),
                            message,
                            exit: exit.clone(),
                            log_tail,
                        })));
                    }
                    None => progress(&WaitEvent::TaskRunning {
                        upid: upid.to_string(),
                        elapsed: poller.elapsed(),
                    }),
                },
                Err(error)
                    if error.status() == Some(400)
                        && error.is_not_found()
                        && poller.elapsed() < TASK_VISIBILITY_GRACE =>
                {
                    progress(&WaitEvent::TaskNotVisibleYet {
                        upid: upid.to_string(),
                        elapsed: poller.elapsed(),
                    });
                }
                // The transport already retried; a wait has a deadline, so a flaky moment
                // is "not yet" rather than the end of the wait.
                Err(error) if is_transient(&error) => progress(&WaitEvent::Retrying {
                    what: format!("status of task {upid}"),
                    attempt: 1,
                    reason: error.to_string(),
                }),
                Err(error) => return Err(error),
            }
            if !poller.next().await {
                return Err(poller.deadline_error(format!("task {upid}"), Some("running".into())));
            }
        }
    }

    /// Waits until the VM's config carries no `lock` (e.g. `clone` on a clone target) and
    /// returns that config.
    ///
    /// # Errors
    /// [`Error::Deadline`], or transport/API errors (a missing VM is not waited for).
    pub async fn wait_unlocked(
        &self,
        node: &str,
        vmid: u64,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<VmConfig, Error> {
        let mut poller = Poller::new(timeout);
        loop {
            let config = match self.vm_config(node, vmid).await {
                Ok(config) => config,
                Err(error) if is_transient(&error) => {
                    if !poller.next().await {
                        return Err(error);
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            let Some(lock) = config.lock() else {
                return Ok(config);
            };
            progress(&WaitEvent::Locked {
                vmid,
                lock: lock.clone(),
                elapsed: poller.elapsed(),
            });
            if !poller.next().await {
                return Err(poller.deadline_error(
                    format!("VM {vmid} to be unlocked"),
                    Some(format!("lock: {lock}")),
                ));
            }
        }
    }

    /// Waits until the guest agent reports a usable address on the NIC whose MAC is
    /// `net0`'s (loopback, link-local, docker/bridge/veth interfaces are skipped; IPv4
    /// preferred). "Agent not running", agent timeouts and lost answers mean "not yet";
    /// 403 and "No QEMU guest agent configured" end the wait at once.
    ///
    /// # Errors
    /// [`Error::Deadline`] (with the last reason), or a fatal API error.
    pub async fn wait_agent_address(
        &self,
        node: &str,
        vmid: u64,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<IpAddr, Error> {
        self.wait_agent_address_every(node, vmid, timeout, Poller::MAX, progress)
            .await
    }

    /// [`Client::wait_agent_address`] with polls capped at `max_interval` instead of 1 s:
    /// a boot is the longest wait of a deploy, and the cap is how late its end is noticed
    /// (half of it on average), at the price of more agent calls.
    ///
    /// # Errors
    /// As [`Client::wait_agent_address`].
    pub async fn wait_agent_address_every(
        &self,
        node: &str,
        vmid: u64,
        timeout: Duration,
        max_interval: Duration,
        progress: Progress<'_>,
    ) -> Result<IpAddr, Error> {
        let mut poller = Poller::capped(timeout, max_interval);
        let config = self.vm_config(node, vmid).await?;
        let mac = config
            .net0()
            .ok()
            .flatten()
            .and_then(|net| net.macaddr().map(str::to_owned));
        loop {
            let last = match self.agent_interfaces(node, vmid).await {
                Ok(answer) => {
                    if let Some(address) = select_address(&answer.result, mac.as_deref()) {
                        return Ok(address);
                    }
                    progress(&WaitEvent::AgentNoAddress {
                        vmid,
                        elapsed: poller.elapsed(),
                    });
                    "no usable address reported yet".to_owned()
                }
                Err(error) if is_fatal_for_agent_wait(&error) => return Err(error),
                Err(error) => {
                    let reason = error
                        .api()
                        .map_or_else(|| error.to_string(), |api| api.reason.clone());
                    progress(&WaitEvent::AgentNotReady {
                        vmid,
                        reason: reason.clone(),
                        elapsed: poller.elapsed(),
                    });
                    reason
                }
            };
            if !poller.next().await {
                return Err(poller.deadline_error(
                    format!("the guest agent of VM {vmid} to report an address"),
                    Some(last),
                ));
            }
        }
    }
}

/// Errors a wait outlives: lost answers, connection failures, transient 5xx.
pub(crate) fn is_transient(error: &Error) -> bool {
    matches!(
        error.retry_safety(),
        RetrySafety::NeverSent | RetrySafety::MayHaveReachedServer
    ) || error.is_transient_server_error()
}

fn is_fatal_for_agent_wait(error: &Error) -> bool {
    // A VM deleted during the wait never gets an agent.
    if error.is_not_found() {
        return true;
    }
    match error.status() {
        Some(401 | 403) => true,
        Some(_) => error
            .api()
            .is_some_and(|api| api.text().contains("No QEMU guest agent configured")),
        None => matches!(error, Error::Decode { .. } | Error::Setup { .. }),
    }
}

#[cfg(test)]
mod tests {
    use super::Poller;
    use std::time::Duration;

    // Paused time: the clock advances exactly by the sleeps, so the bounds below test the
    // poller's arithmetic, not how busy the machine running the tests is.
    #[tokio::test(start_paused = true)]
    async fn polling_backs_off_and_respects_the_deadline() {
        let mut poller = Poller::new(Duration::from_millis(1500));
        let mut polls = 0;
        while poller.next().await {
            polls += 1;
        }
        // 50, 75, 112, 168, 253, 379, 569 ms: 7 polls in 1.5 s instead of 30 at a fixed 50 ms.
        assert!((6..=8).contains(&polls), "{polls}");
        assert_eq!(poller.elapsed(), Duration::from_millis(1500));
    }
}
