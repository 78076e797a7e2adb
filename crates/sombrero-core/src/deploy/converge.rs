//! Running a deploy or a destroy until it converges, when what stopped it passes.
//!
//! Why at this level: every step of stage 2 is idempotent by design (a re-run reads the
//! cluster, plans what is left, and does only that), so the safest retry of a failed task
//! (a start that lost a lock race, a resize whose task failed, an answer lost on the way)
//! is the whole command again: plan from what is there now, then apply. Operators got
//! that by typing the command again; under a flaky cluster the command now does it
//! itself, up to [`RUNS`] times, each retry announced (a `Retrying` event the binary
//! prints and counts in the run's history). Refusals and bad input are never retried.

use super::apply::{DeployReport, apply};
use super::desired::Desired;
use super::error::DeployResult;
use super::events::{DeployEvent, Events, Timeouts};
use super::manage::{DestroyReport, destroy};
use super::plan::{Plan, plan};
use super::template::TemplateRequest;

/// Runs of one command at most: the first and two retries.
pub const RUNS: u32 = 3;

fn announce(events: Events<'_>, what: &str, attempt: u32, reason: &str) {
    events(&DeployEvent::Waiting {
        event: pve::WaitEvent::Retrying {
            what: what.to_owned(),
            attempt,
            reason: reason.to_owned(),
        },
    });
}

/// Applies `first` (the plan the operator saw), then, while the failure is transient,
/// plans again from the cluster's state and applies that, up to [`RUNS`] runs.
///
/// # Errors
/// The last run's error, or the first one that is not transient.
pub async fn deploy(
    client: &pve::Client,
    desired: &Desired,
    request: &TemplateRequest,
    first: Plan,
    timeouts: Timeouts,
    events: Events<'_>,
) -> DeployResult<DeployReport> {
    let mut next = first;
    let mut run = 1;
    loop {
        let error = match apply(client, desired, next, timeouts, events).await {
            Ok(report) => return Ok(report),
            Err(error) => error,
        };
        if !error.is_transient() || run >= RUNS {
            return Err(error);
        }
        run += 1;
        announce(
            events,
            "the deploy from the cluster's state",
            run,
            &error.to_string(),
        );
        tokio::time::sleep(client.retry_policy().delay(run - 2)).await;
        next = plan(client, desired, request).await?;
    }
}

/// [`destroy`], again while the failure is transient, up to [`RUNS`] runs.
///
/// # Errors
/// The last run's error, or the first one that is not transient.
pub async fn destroy_converged(
    client: &pve::Client,
    desired: &Desired,
    timeouts: Timeouts,
    events: Events<'_>,
) -> DeployResult<DestroyReport> {
    let mut run = 1;
    loop {
        let error = match destroy(client, desired, timeouts, events).await {
            Ok(report) => return Ok(report),
            Err(error) => error,
        };
        if !error.is_transient() || run >= RUNS {
            return Err(error);
        }
        run += 1;
        announce(events, "the destroy", run, &error.to_string());
        tokio::time::sleep(client.retry_policy().delay(run - 2)).await;
    }
}
