//! `verify`: the runbook's smoke tests (quick, full, Docker) run inside the VM over one
//! SSH connection.
//!
//! Why this shape: the original `smoke-test.sh` opened one SSH connection per check and
//! stopped at the first failure, so a broken VM showed one problem at a time, slowly.
//! Here the first check opens a multiplexed connection (`ControlMaster`) with the pinned
//! `known_hosts`, and every other check runs over it, several at once, each with its own
//! deadline; a failing check never stops the others. Network checks run inside the guest
//! (nothing here probes the VM's private address from the host). Nothing here prints:
//! the caller gets one [`CheckResult`] per check, as each ends, and the report.

pub mod catalogue;
mod judge;
pub mod results;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use catalogue::{Check, Expectations, Thresholds};
pub use results::{RESULTS_FILE, VerifyReport};

use crate::ssh::{Session, SshError, SshTarget};

/// Which of the runbook's suites to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// `smoke-test-quick`: SSH, hostname, uptime.
    Quick,
    /// `smoke-test`: everything a configured jump host must be.
    Full,
    /// `smoke-test-docker`: Docker and compose, a container run.
    Docker,
}

impl Suite {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
            Self::Docker => "docker",
        }
    }
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not run (what it needs, usually SSH, is not there).
    Skip,
}

/// One check as it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub group: String,
    pub status: CheckStatus,
    /// What was expected and what was seen, on one line.
    pub detail: String,
    pub duration_ms: u64,
}

/// How the checks reach the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// One multiplexed connection, checks in parallel (sombrero's way).
    Shared { parallel: usize },
    /// A new connection per check, one after another (the original's way, for the
    /// benchmark's baseline).
    PerCheck,
}

/// How many checks run at once over the shared connection: below sshd's default
/// `MaxSessions` (10), so no session is refused.
pub const PARALLEL_CHECKS: usize = 8;

/// Everything a verify needs, resolved by the caller.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub target: SshTarget,
    pub suite: Suite,
    pub expect: Expectations,
    pub connection: Connection,
}

/// Why verify could not run at all (a check that fails is a result, not an error).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("environment {environment} has no stage 2 outputs ({} not found)", path.display())]
    NoOutputs { environment: String, path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the SSH control directory: {0}")]
    Control(#[source] std::io::Error),
}

impl VerifyError {
    /// Bad input (exit 2): nothing deployed to verify.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::NoOutputs { .. })
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Self::NoOutputs { .. } => Some(
                "deploy first (`sombrero deploy --env ENV`); verify reads the VM's address, \
                 user and pinned host key from the deploy's outputs"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// Runs one check over `session`.
async fn run_check(session: &Session, check: &Check) -> CheckResult {
    let started = Instant::now();
    let outcome = session.run(&check.script, check.limit).await;
    let (status, detail) = match outcome {
        Ok(output) => (check.judge)(&output),
        Err(error) => (CheckStatus::Fail, error.to_string()),
    };
    CheckResult {
        name: check.name.clone(),
        group: check.group.to_owned(),
        status,
        detail,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// The results of checks that cannot run because SSH failed.
fn skipped(checks: &[Check], why: &SshError) -> Vec<CheckResult> {
    let reason = why.to_string();
    checks
        .iter()
        .map(|check| CheckResult {
            name: check.name.clone(),
            group: check.group.to_owned(),
            status: CheckStatus::Skip,
            detail: format!("not run: SSH failed ({reason})"),
            duration_ms: 0,
        })
        .collect()
}

/// Runs the request's suite; `each` sees every result as it ends. The results come back
/// in the catalogue's order, whatever order they ended in.
///
/// # Errors
/// [`VerifyError::Control`] only; failed checks are results.
pub async fn run(
    request: &VerifyRequest,
    each: &(dyn Fn(&CheckResult) + Send + Sync),
) -> Result<(Vec<CheckResult>, Duration), VerifyError> {
    let started = Instant::now();
    let checks = catalogue::suite(request.suite, &request.expect);
    let session = match request.connection {
        Connection::Shared { .. } => Session::new(request.target.clone()),
        Connection::PerCheck => Session::unshared(request.target.clone()),
    }
    .map_err(VerifyError::Control)?;
    let Some((first, rest)) = checks.split_first() else {
        return Ok((Vec::new(), started.elapsed()));
    };
    // The first check (SSH as the user) opens the connection every other check shares.
    let opened = session.run(&first.script, first.limit).await;
    let first_result = match opened {
        Err(error) => {
            let mut results = vec![CheckResult {
                name: first.name.clone(),
                group: first.group.to_owned(),
                status: CheckStatus::Fail,
                detail: error.to_string(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }];
            results.extend(skipped(rest, &error));
            results.iter().for_each(each);
            return Ok((results, started.elapsed()));
        }
        Ok(output) => {
            let (status, detail) = (first.judge)(&output);
            CheckResult {
                name: first.name.clone(),
                group: first.group.to_owned(),
                status,
                detail,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }
        }
    };
    each(&first_result);
    let mut results = vec![first_result];
    match request.connection {
        Connection::PerCheck => {
            for check in rest {
                let result = run_check(&session, check).await;
                each(&result);
                results.push(result);
            }
        }
        Connection::Shared { parallel } => {
            results.extend(run_parallel(session, rest, parallel.max(1), each).await);
        }
    }
    Ok((results, started.elapsed()))
}

/// Runs `checks` over `session`, at most `parallel` at once, in the catalogue's order.
async fn run_parallel(
    session: Session,
    checks: &[Check],
    parallel: usize,
    each: &(dyn Fn(&CheckResult) + Send + Sync),
) -> Vec<CheckResult> {
    let session = Arc::new(session);
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut running = tokio::task::JoinSet::new();
    // The checks allowed the longest (a container run) start first: on a VM with few
    // CPUs they would otherwise start last and be the whole suite's tail.
    let mut order: Vec<(usize, Check)> = checks.iter().cloned().enumerate().collect();
    order.sort_by_key(|(index, check)| (std::cmp::Reverse(check.limit), *index));
    for (index, check) in order {
        let session = Arc::clone(&session);
        let permits = Arc::clone(&permits);
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, run_check(&session, &check).await)
        });
    }
    let mut slots: Vec<Option<CheckResult>> = vec![None; checks.len()];
    while let Some(joined) = running.join_next().await {
        if let Ok((index, result)) = joined {
            each(&result);
            slots[index] = Some(result);
        }
    }
    slots
        .into_iter()
        .zip(checks)
        .map(|(slot, check)| {
            slot.unwrap_or_else(|| CheckResult {
                name: check.name.clone(),
                group: check.group.to_owned(),
                status: CheckStatus::Fail,
                detail: "the check's task ended without a result".to_owned(),
                duration_ms: 0,
            })
        })
        .collect()
}
