//! PVE tasks: UPIDs, background workers, status and logs.
//!
//! Why: long operations in PVE return a UPID at once and do their work in a forked worker;
//! clients poll `.../tasks/{upid}/status` and read `.../log`. Many failures (VM locked,
//! already running, shrink, lock timeouts) exist only inside the task while the HTTP call
//! returned 200, so the lab runs every such operation as a background tokio task with the
//! same observable life: `running`, then `stopped` with `OK`, `WARNINGS: N` or the error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Shared;
use super::locks::{self, LockMode};
use super::params::internal;
use super::state::{State, Vm};
use crate::api::{ApiError, ApiResult};

/// A task log stops growing here (a runaway body cannot eat the lab's memory).
const MAX_LOG_LINES: usize = 10_000;

/// How many finished tasks are kept (PVE rotates its task index too).
const KEPT_TASKS: usize = 2_000;

/// One task, running or finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    pub upid: String,
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub user: String,
    pub endtime: Option<u64>,
    pub exitstatus: Option<String>,
    pub log: Vec<String>,
    pub warnings: u32,
    /// Millisecond start and end, for benchmarks ([`super::Node::task_durations`]).
    #[serde(default)]
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
}

impl TaskRecord {
    /// Common fields; like PVE's `convert_token_task`, a token user `user@realm!id` is
    /// split into `user` and `tokenid`.
    fn base_json(&self) -> Value {
        let mut value = json!({
            "upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
            "starttime": self.starttime, "type": self.kind, "id": self.id, "user": self.user,
        });
        if let Some((user, token)) = self.user.split_once('!') {
            value["user"] = json!(user);
            value["tokenid"] = json!(token);
        }
        value
    }

    pub(crate) fn status_json(&self) -> Value {
        let mut value = self.base_json();
        value["status"] = json!(if self.endtime.is_some() {
            "stopped"
        } else {
            "running"
        });
        if let Some(exitstatus) = &self.exitstatus {
            value["exitstatus"] = json!(exitstatus);
        }
        value
    }

    pub(crate) fn list_json(&self) -> Value {
        let mut value = self.base_json();
        match (self.endtime, &self.exitstatus) {
            (Some(endtime), Some(exitstatus)) => {
                value["endtime"] = json!(endtime);
                value["status"] = json!(exitstatus);
            }
            _ => value["status"] = json!("RUNNING"),
        }
        value
    }

    /// Whether the finished task failed (neither `OK` nor `WARNINGS: N`).
    pub(crate) fn failed(&self) -> bool {
        self.exitstatus
            .as_deref()
            .is_some_and(|status| status != "OK" && !status.starts_with("WARNINGS: "))
    }
}

/// Formats a UPID: `UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type}:{id}:{user}:`.
pub(crate) fn format_upid(
    node: &str,
    pid: u32,
    pstart: u64,
    starttime: u64,
    kind: &str,
    id: &str,
    user: &str,
) -> String {
    format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:")
}

/// What a task is: its type, the id field of its UPID and who started it.
#[derive(Debug, Clone)]
pub(crate) struct TaskSpec {
    pub kind: &'static str,
    /// The node whose worker runs the task (the UPID's node).
    pub node: String,
    pub id: String,
    pub user: String,
    /// The unscaled duration of the task's work.
    pub duration: Duration,
}

/// A fault the lab decided to inject into one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InjectedFault {
    LockTimeout,
    Fail,
}

/// The handle a task body uses to log and to wait.
#[derive(Debug, Clone)]
pub(crate) struct TaskContext {
    pub shared: Arc<Shared>,
    pub upid: String,
    fault: Option<InjectedFault>,
    duration: Duration,
    kind: &'static str,
    /// Lock files this task holds (released when it ends).
    held: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl TaskContext {
    /// Appends a line to the task log.
    pub fn log(&self, line: impl Into<String>) {
        let line = line.into();
        self.shared.write_quiet(|state| {
            if let Some(task) = find_mut(state, &self.upid)
                && task.log.len() < MAX_LOG_LINES
            {
                task.log.push(line);
            }
        });
    }

    /// Logs a warning; the task then ends `WARNINGS: N` instead of `OK`.
    pub fn warn(&self, line: impl AsRef<str>) {
        let line = format!("WARN: {}", line.as_ref());
        self.shared.write_quiet(|state| {
            if let Some(task) = find_mut(state, &self.upid) {
                task.warnings += 1;
                task.log.push(line);
            }
        });
    }

    /// Takes a lock: fails after the lock timeout when the lab injects a lock timeout.
    ///
    /// # Errors
    /// `timeout_message` when a lock-timeout fault hits this task.
    pub async fn lock(&self, timeout_message: String) -> Result<(), String> {
        if self.fault == Some(InjectedFault::LockTimeout) {
            tokio::time::sleep(
                self.shared
                    .scaled(self.shared.options.durations.lock_timeout),
            )
            .await;
            return Err(timeout_message);
        }
        Ok(())
    }

    /// Takes the config lock of a VM exclusively, like PVE's `lock_config`: an injected
    /// lock timeout fails after the timeout; otherwise it waits while another task holds
    /// the VM and fails with PVE's `got timeout` message after the lock timeout.
    ///
    /// # Errors
    /// `can't lock file '/var/lock/qemu-server/lock-ID.conf' - got timeout`.
    pub async fn lock_vm(&self, vmid: u32) -> Result<(), String> {
        self.lock(super::power::lock_timeout_message(vmid)).await?;
        self.acquire(&locks::vm_lock(vmid), LockMode::Exclusive)
            .await
    }

    /// Waits until the lock file `key` can be taken in `mode`, then holds it until
    /// [`Self::release`] or the end of the task.
    ///
    /// # Errors
    /// PVE's lock timeout message when the wait exceeds the lock timeout.
    pub async fn acquire(&self, key: &str, mode: LockMode) -> Result<(), String> {
        let timeout = self
            .shared
            .scaled(self.shared.options.durations.lock_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.shared.locks.try_acquire(key, mode) {
                self.held.lock().push(key.to_owned());
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(locks::timeout_message(key));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Releases a lock this task holds.
    pub fn release(&self, key: &str) {
        let mut held = self.held.lock();
        if let Some(index) = held.iter().position(|holding| holding == key) {
            held.remove(index);
            self.shared.locks.release(key);
        }
    }

    /// Waits for the task's duration; fails when the lab injects a task failure.
    ///
    /// # Errors
    /// An injected failure message.
    pub async fn work(&self) -> Result<(), String> {
        self.work_part(1, 1).await
    }

    /// Waits for `numerator / denominator` of the task's duration (for progress lines);
    /// the injected failure strikes at the end of the last part.
    ///
    /// # Errors
    /// An injected failure message.
    pub async fn work_part(&self, numerator: u32, denominator: u32) -> Result<(), String> {
        let part = self.duration * numerator / denominator.max(1);
        tokio::time::sleep(part).await;
        if numerator >= denominator && self.fault == Some(InjectedFault::Fail) {
            return Err(injected_failure(self.kind));
        }
        Ok(())
    }
}

/// A plausible error text for an injected task failure.
fn injected_failure(kind: &str) -> String {
    match kind {
        "qmclone" => "clone failed: command '/sbin/lvcreate -aly -Fy -V 8388608k --name vm-disk -T pve/data' failed: exit code 5".to_owned(),
        "qmstart" => "start failed: QEMU exited with code 1".to_owned(),
        "qmcreate" => "unable to create VM - command 'qemu-img convert' failed: exit code 1".to_owned(),
        _ => "command failed: exit code 1 (injected fault)".to_owned(),
    }
}

fn find_mut<'state>(state: &'state mut State, upid: &str) -> Option<&'state mut TaskRecord> {
    state.tasks.iter_mut().rev().find(|task| task.upid == upid)
}

/// Registers a running task in `state` and runs `body` in the background; returns the UPID.
///
/// The caller holds the state lock (pre-fork checks and the task's registration are one
/// atomic step, like PVE's `lock_config` + `fork_worker`); the body starts once it is free.
pub(crate) fn spawn<F, Fut>(
    shared: &Arc<Shared>,
    state: &mut State,
    spec: TaskSpec,
    body: F,
) -> String
where
    F: FnOnce(TaskContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let pid = state.allocate_pid();
    let now = super::unix_seconds();
    let pstart = now.saturating_sub(state.boot_time) * 100 + 1_000;
    let upid = format_upid(
        &spec.node, pid, pstart, now, spec.kind, &spec.id, &spec.user,
    );
    state.tasks.push(TaskRecord {
        upid: upid.clone(),
        node: spec.node,
        pid,
        pstart,
        starttime: now,
        kind: spec.kind.to_owned(),
        id: spec.id,
        user: spec.user,
        endtime: None,
        exitstatus: None,
        log: Vec::new(),
        warnings: 0,
        started_ms: super::unix_millis(),
        ended_ms: None,
    });
    prune(state);
    let context = TaskContext {
        shared: Arc::clone(shared),
        upid: upid.clone(),
        fault: shared.draw_task_fault(),
        duration: shared.scaled_work(spec.duration),
        kind: spec.kind,
        held: Arc::default(),
    };
    tokio::spawn(async move {
        let finisher = context.clone();
        // The body runs as its own tokio task, so a bug that panics in it ends the task
        // like a PVE worker that died (`unexpected status`) and releases its locks, instead
        // of leaving a task `running` and its VM locked forever.
        let result = match tokio::spawn(body(context)).await {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(upid = %finisher.upid, %error, "task worker died");
                Err("unexpected status".to_owned())
            }
        };
        finish(&finisher, result);
    });
    upid
}

/// Forks a task on one VM: the preamble every VM task shares (qemu-server's
/// `lock_config` + `fork_worker`), answering the UPID.
///
/// With the state locked, the VM must exist (PVE's missing-config 500 otherwise) and pass
/// `before_fork`, the checks PVE answers with an HTTP error; in the task, the VM's config
/// lock file is taken before `body` runs (a timeout fails the task). Checks PVE makes
/// inside the worker belong in `body`, usually through [`locks::read_checked`].
pub(crate) fn spawn_on_vm<Check, Body, Done>(
    shared: &Arc<Shared>,
    node: &str,
    vmid: u32,
    spec: TaskSpec,
    before_fork: Check,
    body: Body,
) -> ApiResult
where
    Check: FnOnce(&Vm) -> Result<(), ApiError>,
    Body: FnOnce(TaskContext) -> Done + Send + 'static,
    Done: Future<Output = Result<(), String>> + Send + 'static,
{
    shared.write(|state| {
        let vm = state.vm(node, vmid).map_err(internal)?;
        before_fork(vm)?;
        let upid = spawn(
            shared,
            state,
            spec,
            move |context: TaskContext| async move {
                context.lock_vm(vmid).await?;
                body(context).await
            },
        );
        Ok(json!(upid))
    })
}

fn finish(context: &TaskContext, result: Result<(), String>) {
    for key in context.held.lock().drain(..) {
        context.shared.locks.release(&key);
    }
    context.shared.write(|state| {
        let Some(task) = find_mut(state, &context.upid) else {
            return;
        };
        task.endtime = Some(super::unix_seconds());
        task.ended_ms = Some(super::unix_millis());
        let status = match result {
            Ok(()) if task.warnings == 0 => {
                task.log.push("TASK OK".to_owned());
                "OK".to_owned()
            }
            Ok(()) => {
                let status = format!("WARNINGS: {}", task.warnings);
                task.log.push(format!("TASK {status}"));
                status
            }
            Err(message) => {
                let message = message.lines().collect::<Vec<_>>().join(" ");
                task.log.push(format!("TASK ERROR: {message}"));
                message
            }
        };
        tracing::debug!(upid = %context.upid, %status, "task finished");
        task.exitstatus = Some(status);
    });
}

/// Drops the oldest finished tasks beyond [`KEPT_TASKS`].
fn prune(state: &mut State) {
    let finished = state
        .tasks
        .iter()
        .filter(|task| task.endtime.is_some())
        .count();
    let mut excess = finished.saturating_sub(KEPT_TASKS);
    state.tasks.retain(|task| {
        if excess > 0 && task.endtime.is_some() {
            excess -= 1;
            return false;
        }
        true
    });
}

/// Marks tasks that were running when the lab stopped as failed (used on reload).
pub(crate) fn fail_interrupted(state: &mut State) {
    let now = super::unix_seconds();
    for task in state.tasks.iter_mut().filter(|task| task.endtime.is_none()) {
        task.endtime = Some(now);
        task.exitstatus = Some("unexpected status".to_owned());
        task.log
            .push("TASK ERROR: unexpected status (the lab stopped while the task ran)".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upids_have_pve_shape() {
        let upid = format_upid(
            "lloyd",
            0x1234,
            0xABCDE,
            0x6745_2301,
            "qmclone",
            "1001",
            "root@pam!lab",
        );
        assert_eq!(
            upid,
            "UPID:lloyd:00001234:000ABCDE:67452301:qmclone:1001:root@pam!lab:"
        );
    }
}
