//! `sombrero api` as dispatched: writes recorded in the history, and `--lab` honoured.
//!
//! Why a layer around `api::call` rather than inside it: the raw call stays exactly what it
//! was (same client, retries, rendering); this layer only decides *where* it goes and
//! *whether* it is recorded.
//!
//! - Writes (post, put, delete) change the cluster, so they are recorded like `deploy`
//!   (decision 059): a run `api`, one phase named after the method with the path as its
//!   detail (parameters never stored: they may hold a password), failures with their
//!   error. Reads are not recorded. When nothing can have been sent (a malformed request,
//!   invalid settings, no API URL or credentials) the error is reported, unrecorded.
//! - `--lab` sends the call to the same in-process lab `deploy --lab` uses (its state in
//!   `deployments/lab/`), never to the configured cluster: the context's client points
//!   at the lab. Ignoring the flag would send a write meant for the rehearsal to the real
//!   cluster.

use pve::{Method, Request};
use sombrero_core::history::RunStart;

use crate::context::Context;
use crate::exit::ExitStatus;
use crate::recording::finish_run;

/// Runs `sombrero api` (the request already built from the command line), recording
/// writes.
///
/// # Errors
/// No API URL or credentials (exit 2, unrecorded: nothing can have been sent); the API's
/// error (exit 1).
pub async fn run(request: &Request, context: &Context) -> anyhow::Result<ExitStatus> {
    if request.method == Method::Get {
        return super::api::call(request, context).await;
    }
    // Fails here, before a run is recorded, when the URL or the credentials are missing.
    context.client()?;
    let settings = &context.settings;
    let mut start = RunStart::new(
        "api",
        &settings.environment.value,
        env!("CARGO_PKG_VERSION"),
    );
    start.working_directory = settings.config_file.parent().map(ToOwned::to_owned);
    let run = context.start_run_as(&start);
    let result = match &run {
        Some(run) => {
            let phase = run.begin_phase(&request.method.as_str().to_ascii_lowercase());
            let result = super::api::call(request, context).await;
            match &result {
                Ok(_) => phase.succeed(Some(&request.path)),
                Err(error) => phase.fail(error),
            }
            result
        }
        None => super::api::call(request, context).await,
    };
    finish_run(run, &result, &context.printer);
    result
}
