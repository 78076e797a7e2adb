//! Whole operations that are safe to repeat: start, stop, grow a disk, delete (clone and
//! create are in `creation.rs`). Each dispatches, waits with a deadline, and knows how to
//! recover.
//!
//! Why here and not in the stages: these are the exact places where other PVE clients
//! fail under load (lock timeouts inside clone tasks, "already exists" after a retried
//! clone, configuring before the clone lock is gone, shrinking disks, starting a running
//! VM). Getting them right once, next to the transport that knows whether a request may
//! have run, keeps the stages simple.

use std::time::{Duration, Instant};

use crate::client::Client;
use crate::endpoints::{self, PowerAction, ResizeTo};
use crate::error::{Error, RetrySafety};
use crate::types::{DiskSize, Upid, VmConfig, VmState};
use crate::wait::{Progress, WaitEvent};

/// Dispatch attempts for a clone, create or power action (lock timeouts included).
pub(crate) const DISPATCH_ATTEMPTS: u32 = 5;

/// How long a power action in doubt (lost answer, lost race) may take to show in the
/// VM's state before it is sent again.
const STATE_SETTLE: Duration = Duration::from_secs(3);

/// What a [`Client::grow_disk`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowOutcome {
    /// The disk already had at least the requested size; nothing was sent.
    AlreadyLarge(DiskSize),
    /// The disk was grown to this size.
    Grown(DiskSize),
}

/// `checksum mismatch (file change by other user?)`, at dispatch or inside the task.
fn is_checksum_mismatch(error: &Error) -> bool {
    const TEXT: &str = "checksum mismatch";
    error.mentions(TEXT)
        || matches!(error, Error::TaskFailed(failure) if failure.message.contains(TEXT))
}

pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Client {
    pub(crate) async fn pause_before_retry(&self, attempt: u32) {
        tokio::time::sleep(self.retry_policy().delay(attempt)).await;
    }

    /// Starts the VM unless it already runs, and waits for the start task.
    ///
    /// # Errors
    /// [`Error::TaskFailed`], [`Error::Deadline`], transport or API errors.
    pub async fn start_vm_and_wait(
        &self,
        node: &str,
        vmid: u64,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<(), Error> {
        self.power_and_wait(
            node,
            vmid,
            PowerAction::Start,
            VmState::Running,
            timeout,
            progress,
        )
        .await
    }

    /// Stops (hard) the VM unless it is already stopped, and waits for the task.
    ///
    /// # Errors
    /// [`Error::TaskFailed`], [`Error::Deadline`], transport or API errors.
    pub async fn stop_vm_and_wait(
        &self,
        node: &str,
        vmid: u64,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<(), Error> {
        self.power_and_wait(
            node,
            vmid,
            PowerAction::Stop,
            VmState::Stopped,
            timeout,
            progress,
        )
        .await
    }

    /// Shuts the VM down (ACPI, then a hard stop after `grace`), unless already stopped.
    ///
    /// # Errors
    /// [`Error::TaskFailed`], [`Error::Deadline`], transport or API errors.
    pub async fn shutdown_vm_and_wait(
        &self,
        node: &str,
        vmid: u64,
        grace: Duration,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<(), Error> {
        let action = PowerAction::Shutdown {
            timeout: Some(u32::try_from(grace.as_secs()).unwrap_or(u32::MAX)),
            force_stop: true,
        };
        self.power_and_wait(node, vmid, action, VmState::Stopped, timeout, progress)
            .await
    }

    async fn power_and_wait(
        &self,
        node: &str,
        vmid: u64,
        action: PowerAction,
        wanted: VmState,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        if self.vm_status(node, vmid).await?.status == wanted {
            return Ok(());
        }
        let request = endpoints::vm_power(node, vmid, action);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self.call::<Upid>(&request).await {
                Ok(upid) => self
                    .wait_task(&upid, remaining(deadline), progress)
                    .await
                    .map(drop),
                Err(error) => Err(error),
            };
            let error = match outcome {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            // Power actions are idempotent in effect: after a lost answer or a task that
            // lost a race (lock timeout, "already running"), the state decides.
            let in_doubt = error.retry_safety() == RetrySafety::MayHaveReachedServer
                || error.is_lock_timeout()
                || error.is_locked();
            if !in_doubt && !matches!(error, Error::TaskFailed(_)) {
                return Err(error);
            }
            let settle = remaining(deadline).min(STATE_SETTLE);
            if self.wait_for_state(node, vmid, &wanted, settle).await? {
                return Ok(());
            }
            if !in_doubt || attempt >= DISPATCH_ATTEMPTS || Instant::now() >= deadline {
                return Err(error);
            }
            progress(&WaitEvent::Retrying {
                what: format!("{action:?} of VM {vmid}"),
                attempt,
                reason: error.to_string(),
            });
        }
    }

    /// Polls the VM's state for up to `window`; whether it reached `wanted`.
    async fn wait_for_state(
        &self,
        node: &str,
        vmid: u64,
        wanted: &VmState,
        window: Duration,
    ) -> Result<bool, Error> {
        let mut poller = crate::wait::Poller::new(window);
        loop {
            match self.vm_status(node, vmid).await {
                Ok(status) if status.status == *wanted => return Ok(true),
                Ok(_) => {}
                Err(error) if crate::wait::is_transient(&error) => {}
                Err(error) => return Err(error),
            }
            if !poller.next().await {
                return Ok(false);
            }
        }
    }

    /// Grows `disk` to at least `size`: never shrinks, and does nothing when the disk is
    /// already that large (compares the config's `size=`), so it is safe to repeat.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the disk does not exist, task/transport/API errors.
    pub async fn grow_disk(
        &self,
        node: &str,
        vmid: u64,
        disk: &str,
        size: DiskSize,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<GrowOutcome, Error> {
        let deadline = Instant::now() + timeout;
        let current = |config: &VmConfig| -> Result<DiskSize, Error> {
            let volume = config
                .disk(disk)
                .map_err(|error| Error::InvalidInput(format!("VM {vmid} {disk}: {error}")))?
                .ok_or_else(|| Error::InvalidInput(format!("VM {vmid} has no disk {disk}")))?;
            Ok(volume
                .size()
                .map_err(|error| Error::InvalidInput(format!("VM {vmid} {disk}: {error}")))?
                .unwrap_or_default())
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let config = self.vm_config(node, vmid).await?;
            let before = current(&config)?;
            if before >= size {
                // Also the end of a retry whose first attempt went through.
                return Ok(if attempt == 1 {
                    GrowOutcome::AlreadyLarge(before)
                } else {
                    GrowOutcome::Grown(before)
                });
            }
            let digest = config.digest();
            let result = self
                .vm_resize(
                    node,
                    vmid,
                    disk,
                    ResizeTo::Absolute(size),
                    digest.as_deref(),
                )
                .await;
            let failure = match result {
                Ok(Some(upid)) => {
                    match self.wait_task(&upid, remaining(deadline), progress).await {
                        Ok(_) => return Ok(GrowOutcome::Grown(size)),
                        // PVE >= 8 checks the digest inside the resize task.
                        Err(error) if error.is_lock_timeout() || is_checksum_mismatch(&error) => {
                            error
                        }
                        Err(error) => return Err(error),
                    }
                }
                Ok(None) => return Ok(GrowOutcome::Grown(size)),
                // A lost answer: the resize may be running. An absolute size makes sending
                // it again safe (PVE does nothing when the size is already reached); the
                // config is read first, so a finished resize is not sent again at all.
                Err(error) if error.retry_safety() == RetrySafety::MayHaveReachedServer => error,
                // A repeated resize whose first attempt went through sees a new digest.
                Err(error) if is_checksum_mismatch(&error) => error,
                Err(error) if error.is_lock_timeout() || error.is_locked() => error,
                Err(error) => return Err(error),
            };
            if attempt >= DISPATCH_ATTEMPTS || Instant::now() >= deadline {
                return Err(failure);
            }
            progress(&WaitEvent::Retrying {
                what: format!("resize of VM {vmid} {disk}"),
                attempt,
                reason: failure.to_string(),
            });
            self.pause_before_retry(attempt - 1).await;
        }
    }

    /// Deletes the VM (with purge) and waits; `Ok(false)` when it did not exist. After an
    /// attempt whose answer was lost, success is the VM being gone, whatever a retry said.
    ///
    /// # Errors
    /// [`Error::TaskFailed`] (e.g. the VM is running), transport or API errors.
    pub async fn delete_vm_and_wait(
        &self,
        node: &str,
        vmid: u64,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<bool, Error> {
        let deadline = Instant::now() + timeout;
        if self.vm_config_opt(node, vmid).await?.is_none() {
            return Ok(false);
        }
        let request = crate::endpoints::vm_delete(node, vmid, true);
        let sent = self.send_tracked(&request).await;
        match sent.result {
            Ok(data) => {
                let upid: Upid = crate::client::decode(&request, data)?;
                self.wait_task(&upid, remaining(deadline), progress).await?;
                Ok(true)
            }
            // The delete may be running, or already done (a proxy's 502 after PVE started
            // the task, then the retry's "does not exist"): wait until the VM is gone. A
            // retry that was refused for another reason (running, protected) is an error.
            Err(error)
                if error.retry_safety() == RetrySafety::MayHaveReachedServer
                    || (sent.earlier_attempt_may_have_run && error.is_not_found()) =>
            {
                self.finish_lost_delete(node, vmid, deadline, progress, error)
                    .await
            }
            Err(error) => Err(error),
        }
    }
}

impl Client {
    /// After a delete whose answer was lost: done once the VM is gone. While it is still
    /// there, the lost attempt may never have reached PVE (a reset before the request was
    /// read): the delete is sent again. That is safe: a delete that did start holds the
    /// VM's lock, so PVE refuses the second one ("locked", a lock timeout), and the wait
    /// goes on. Without this, a lost-before-arrival delete waited out the whole deadline.
    async fn finish_lost_delete(
        &self,
        node: &str,
        vmid: u64,
        deadline: Instant,
        progress: Progress<'_>,
        first: Error,
    ) -> Result<bool, Error> {
        let request = crate::endpoints::vm_delete(node, vmid, true);
        let mut poller = crate::wait::Poller::new(remaining(deadline));
        let mut last = first;
        loop {
            if self.vm_config_opt(node, vmid).await?.is_none() {
                return Ok(true);
            }
            if !poller.next().await {
                return Err(last);
            }
            match self.send_tracked(&request).await.result {
                Ok(data) => {
                    let upid: Upid = crate::client::decode(&request, data)?;
                    match self.wait_task(&upid, remaining(deadline), progress).await {
                        Ok(_) => return Ok(true),
                        // PVE takes the config lock inside the task: while the first
                        // delete runs, the second task fails on the lock. Wait on.
                        Err(again) if again.is_lock_timeout() || again.is_not_found() => {
                            last = again;
                        }
                        Err(again) => return Err(again),
                    }
                }
                Err(again) if again.is_not_found() => return Ok(true),
                Err(again)
                    if again.is_locked()
                        || again.is_lock_timeout()
                        || again.retry_safety() == RetrySafety::MayHaveReachedServer =>
                {
                    last = again;
                }
                Err(again) => return Err(again),
            }
        }
    }
}

#[cfg(test)]
#[path = "operations_tests.rs"]
mod tests;
