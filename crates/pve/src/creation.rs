//! Creating a VM (clone or create) so that it is safe to repeat: dispatch, wait, and
//! recognise one's own VM after a lost answer.
//!
//! Why its own module: this is where other PVE clients fail under load (lock timeouts
//! inside clone tasks, "already exists" after a retried clone, configuring before the
//! clone lock is gone), and where a request that may have run must never be blindly
//! repeated. PVE 9 writes a clone's target as a bare `lock: clone` file and the real
//! config only when the task ends, so ownership is decided after that lock is gone.

use std::time::{Duration, Instant};

use crate::client::Client;
use crate::endpoints::{self, CloneOptions};
use crate::error::{Error, RetrySafety};
use crate::operations::{DISPATCH_ATTEMPTS, remaining};
use crate::types::{ConfigUpdate, Upid, VmConfig};
use crate::wait::{Progress, WaitEvent};

/// What a retried create/clone found at its target VMID after "already exists".
enum Found {
    /// The VM is the one this request asked for.
    Ours,
    /// Nothing is there any more: the earlier attempt failed and cleaned up.
    Gone,
}

/// A create/clone task that failed because its target VMID was taken meanwhile.
fn task_says_already_exists(error: &Error) -> bool {
    matches!(error, Error::TaskFailed(failure) if failure.message.contains("already exists"))
}

impl Client {
    /// The target's config once no creation is in progress on it: PVE 9 writes a clone's
    /// or create's target as a bare `lock: clone` / `lock: create` file and only writes the
    /// real config (name included) when the task ends, so a VM cannot be recognised while
    /// that lock is on it. `None` when the VM does not exist (any more).
    async fn settled_config(
        &self,
        node: &str,
        vmid: u64,
        deadline: Instant,
        progress: Progress<'_>,
    ) -> Result<Option<VmConfig>, Error> {
        let mut poller = crate::wait::Poller::new(remaining(deadline));
        loop {
            let Some(config) = self.vm_config_opt(node, vmid).await? else {
                return Ok(None);
            };
            match config.lock() {
                Some(lock) if lock == "clone" || lock == "create" => {
                    progress(&WaitEvent::Locked {
                        vmid,
                        lock: lock.clone(),
                        elapsed: poller.elapsed(),
                    });
                    if !poller.next().await {
                        return Err(poller.deadline_error(
                            format!("the creation of VM {vmid} to end, to recognise it"),
                            Some(format!("lock: {lock}")),
                        ));
                    }
                }
                _ => return Ok(Some(config)),
            }
        }
    }

    /// Proves that an existing VM is the one a retried create/clone asked for: same name
    /// (and description, when one was given), after any creation on it has ended.
    /// [`Found::Gone`] when the VM vanished meanwhile (the earlier attempt failed and
    /// cleaned up), so dispatching again is right.
    async fn verify_own_vm(
        &self,
        target: (&str, u64),
        name: Option<&str>,
        description: Option<&str>,
        deadline: Instant,
        progress: Progress<'_>,
    ) -> Result<Found, Error> {
        let (node, vmid) = target;
        let Some(name) = name else {
            return Err(Error::Conflict {
                vmid,
                reason: "no name was given, so the VM cannot be recognised".into(),
            });
        };
        let Some(config) = self.settled_config(node, vmid, deadline, progress).await? else {
            return Ok(Found::Gone);
        };
        if config.name().as_deref() != Some(name) {
            return Err(Error::Conflict {
                vmid,
                reason: format!("its name is {:?}, not {name:?}", config.name()),
            });
        }
        if let Some(description) = description
            && config.description().as_deref().map(str::trim) != Some(description.trim())
        {
            return Err(Error::Conflict {
                vmid,
                reason: "its description differs".into(),
            });
        }
        Ok(Found::Ours)
    }

    /// Dispatches a create/clone request and waits for its task, retrying lock timeouts
    /// (inside the task or at dispatch) and lost answers. An "already exists" after an
    /// attempt that may have run counts as success only when the VM is provably ours.
    async fn dispatch_creation(
        &self,
        what: &str,
        request: &crate::request::Request,
        target: (&str, u64),
        marker: (Option<&str>, Option<&str>),
        deadline: Instant,
        progress: Progress<'_>,
    ) -> Result<(), Error> {
        let (target_node, vmid) = target;
        let mut may_have_run = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self.send_tracked(request).await;
            may_have_run |= sent.earlier_attempt_may_have_run;
            let failure = match sent.result {
                Ok(data) => {
                    let upid: Upid = crate::client::decode(request, data)?;
                    match self.wait_task(&upid, remaining(deadline), progress).await {
                        Ok(_) => return Ok(()),
                        Err(error) if error.is_lock_timeout() => error,
                        // PVE checks the target again inside the task, after its locks: an
                        // earlier attempt of ours that was still starting got there first.
                        Err(error) if may_have_run && task_says_already_exists(&error) => {
                            match self
                                .verify_own_vm(
                                    (target_node, vmid),
                                    marker.0,
                                    marker.1,
                                    deadline,
                                    progress,
                                )
                                .await?
                            {
                                Found::Ours => return Ok(()),
                                Found::Gone => error,
                            }
                        }
                        Err(error) => return Err(error),
                    }
                }
                Err(error) if error.retry_safety() == RetrySafety::MayHaveReachedServer => {
                    may_have_run = true;
                    error
                }
                Err(error) if error.is_already_exists() && may_have_run => {
                    match self
                        .verify_own_vm((target_node, vmid), marker.0, marker.1, deadline, progress)
                        .await?
                    {
                        Found::Ours => return Ok(()),
                        Found::Gone => error,
                    }
                }
                Err(error) if error.is_lock_timeout() || error.is_locked() => error,
                Err(error) => return Err(error),
            };
            if attempt >= DISPATCH_ATTEMPTS || Instant::now() >= deadline {
                return Err(failure);
            }
            progress(&WaitEvent::Retrying {
                what: what.to_owned(),
                attempt,
                reason: failure.to_string(),
            });
            self.pause_before_retry(attempt - 1).await;
        }
    }

    /// Clones `source` into `options.newid` and waits until the clone task finished AND
    /// the target's `clone` lock is gone; returns the new VM's config.
    ///
    /// Set `options.name`: it is how a retried clone recognises its own VM.
    ///
    /// # Errors
    /// [`Error::TaskFailed`], [`Error::Conflict`] (the VMID is taken by another VM),
    /// [`Error::Deadline`], transport or API errors.
    pub async fn clone_vm_and_wait(
        &self,
        node: &str,
        source: u64,
        options: &CloneOptions,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<VmConfig, Error> {
        let deadline = Instant::now() + timeout;
        let target_node = options.target.as_deref().unwrap_or(node);
        let request = endpoints::vm_clone(node, source, options);
        self.dispatch_creation(
            &format!("clone of VM {source} to {}", options.newid),
            &request,
            (target_node, options.newid),
            (options.name.as_deref(), options.description.as_deref()),
            deadline,
            progress,
        )
        .await?;
        self.wait_unlocked(target_node, options.newid, remaining(deadline), progress)
            .await
    }

    /// Creates VM `vmid` and waits for the create task and for the lock to clear.
    ///
    /// Include `name` in `config`: it is how a retried create recognises its own VM.
    ///
    /// # Errors
    /// As [`Client::clone_vm_and_wait`].
    pub async fn create_vm_and_wait(
        &self,
        node: &str,
        vmid: u64,
        config: ConfigUpdate,
        timeout: Duration,
        progress: Progress<'_>,
    ) -> Result<VmConfig, Error> {
        let deadline = Instant::now() + timeout;
        let request = endpoints::vm_create(node, vmid, config);
        let name = request.params.get("name").map(str::to_owned);
        let description = request.params.get("description").map(str::to_owned);
        self.dispatch_creation(
            &format!("create of VM {vmid}"),
            &request,
            (node, vmid),
            (name.as_deref(), description.as_deref()),
            deadline,
            progress,
        )
        .await?;
        self.wait_unlocked(node, vmid, remaining(deadline), progress)
            .await
    }
}
