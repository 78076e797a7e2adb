//! `sombrero api` as dispatched: writes recorded in the history, and `--lab` honoured.
//!
//! Why a layer around `api::run` rather than inside it: the raw call stays exactly what it
//! was (same client, retries, rendering); this layer only decides *where* it goes and
//! *whether* it is recorded.
//!
//! - Writes (post, put, delete) change the cluster, so they are recorded like `deploy`
//!   (decision 059): a run `api`, one phase named after the method with the path as its
//!   detail (parameters never stored: they may hold a password), failures with their
//!   error. Reads are not recorded. When nothing can have been sent (a malformed request,
//!   invalid settings, no API URL or credentials) `api::run` reports it, unrecorded.
//! - `--lab` sends the call to the same in-process lab `deploy --lab` uses (its state in
//!   `deployments/lab/`), never to the configured cluster. Ignoring the flag would send a
//!   write meant for the rehearsal to the real cluster.

use pve::Method;
use sombrero_core::history::RunStart;

use crate::cli::{ApiArgs, GlobalArgs};
use crate::exit::ExitStatus;
use crate::printer::Printer;

/// Runs `sombrero api`, on the lab for `--lab`, recording writes.
///
/// # Errors
/// Whatever the call fails with: bad input (exit 2), the API's error (exit 1).
pub fn run(args: &ApiArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let call = || {
        if global.lab {
            on_lab(args, global, printer)
        } else {
            super::api::run(args, global, printer)
        }
    };
    let Ok(request) = super::api::build_request(args) else {
        return call();
    };
    if request.method == Method::Get {
        return call();
    }
    let env = crate::context::process_env();
    let Ok(settings) = crate::context::resolve_with(global, None, &env) else {
        return call();
    };
    let credentials = settings.api.token.is_some()
        || (settings.api.username.is_some() && settings.api.password.is_some());
    if !global.lab && (settings.require_api_url().is_err() || !credentials) {
        return call();
    }
    let store = super::deploy::open_history(&settings, printer);
    let mut start = RunStart::new(
        "api",
        &settings.environment.value,
        env!("CARGO_PKG_VERSION"),
    );
    start.working_directory = settings.config_file.parent().map(ToOwned::to_owned);
    let run = store
        .as_ref()
        .and_then(|store| match store.start_run(&start) {
            Ok(run) => Some(run),
            Err(error) => {
                printer.warn(&format!("the run is not recorded: {error}"));
                None
            }
        });
    let result = match &run {
        Some(run) => {
            let phase = run.begin_phase(&request.method.as_str().to_ascii_lowercase());
            let result = call();
            match &result {
                Ok(_) => phase.succeed(Some(&request.path)),
                Err(error) => phase.fail(error),
            }
            result
        }
        None => call(),
    };
    super::deploy::finish_run(run, &result, printer);
    result
}

/// How long `api --lab` waits for a task it started before the lab stops.
const LAB_TASK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The call against the in-process lab (state in `deployments/lab/`, like `deploy --lab`).
fn on_lab(args: &ApiArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let request = super::api::build_request(args)?;
    super::stage2::runtime()?.block_on(async {
        let mut settings = crate::context::resolve_settings(global, None, printer)?;
        let _lab = crate::lab_mode::start(&mut settings, printer).await?;
        let client = super::api::client_from_settings(&settings, printer)?;
        let data = client.execute(&request).await?;
        // The in-process lab lives only as long as this command: let a task it started
        // finish first, as it would on a cluster that keeps running after `api` returns.
        if let Some(upid) = data
            .as_str()
            .and_then(|text| text.parse::<pve::Upid>().ok())
        {
            printer.info(&format!(
                "lab: waiting for task {} to end before the in-process lab stops",
                upid.task_type()
            ));
            if let Err(error) = client.wait_task(&upid, LAB_TASK_DEADLINE, &|_| {}).await {
                printer.warn(&format!("lab: the task did not succeed: {error}"));
            }
        }
        if printer.json_mode() {
            printer.json(&data)?;
        } else {
            let text = super::api::render_text(&data);
            if !text.is_empty() {
                printer.data(text.trim_end());
            }
        }
        Ok(ExitStatus::Success)
    })
}
