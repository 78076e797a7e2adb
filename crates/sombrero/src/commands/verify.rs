//! `sombrero verify`: the runbook's smoke tests on the environment's VM.
//!
//! Why the expectations come from the configuration: the original script hard-coded
//! 192.168.10.250 and `jump-man`; here the address, gateway, nameservers and hostname
//! are the environment's, the user and the pinned host key stage 2's. Each check's
//! line is shown as it ends; the records go to stdout (text or `--json`), to
//! `verify-results.json`, and to the history as the `verify` phase.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressStyle};

use sombrero_core::deploy::{Layout, outputs};
use sombrero_core::history::{PhaseGuard, Run, clock};
use sombrero_core::ssh::SshTarget;
use sombrero_core::verify::{
    self, CheckResult, CheckStatus, Connection, Expectations, Suite, VerifyError, VerifyReport,
    VerifyRequest,
};

use super::configure::private_key;
use crate::cli::VerifyArgs;
use crate::context::Context;
use crate::exit::{BadInput, ExitStatus};
use crate::printer::Printer;
use crate::recording::recorded;

fn suite(args: &VerifyArgs) -> Suite {
    if args.quick {
        Suite::Quick
    } else if args.docker {
        Suite::Docker
    } else {
        Suite::Full
    }
}

fn mark(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pass => "✓",
        CheckStatus::Fail => "✗",
        CheckStatus::Skip => "-",
    }
}

fn line(result: &CheckResult) -> String {
    format!(
        "{} {:<15} {:<20} {} ({:.2}s)",
        mark(result.status),
        result.group,
        result.name,
        result.detail,
        std::time::Duration::from_millis(result.duration_ms).as_secs_f64()
    )
}

/// The records, failures last so they stay on screen, and the count.
fn render(report: &VerifyReport, file: &std::path::Path) -> String {
    let mut text = String::new();
    let mut ordered: Vec<&CheckResult> = report.checks.iter().collect();
    ordered.sort_by_key(|result| result.status == CheckStatus::Fail);
    for result in ordered {
        let _ = writeln!(text, "{}", line(result));
    }
    let _ = write!(
        text,
        "{} checks on VM {} ({}): {} passed, {} failed, {} skipped in {:.2} s\nresults: {}",
        report.checks.len(),
        report.vm_id,
        report.target,
        report.passed,
        report.failed,
        report.skipped,
        report.duration_seconds,
        file.display()
    );
    text
}

/// What the VM should be, from the configuration and the outputs.
fn request(
    context: &Context,
    args: &VerifyArgs,
) -> anyhow::Result<(VerifyRequest, Layout, String)> {
    let settings = &context.settings;
    let environment = settings.environment.value.clone();
    let layout = Layout::new(&settings.paths.outputs_dir.value, &environment);
    let outputs = outputs::read(&layout).ok_or_else(|| VerifyError::NoOutputs {
        environment: environment.clone(),
        path: layout.outputs(),
    })?;
    let key = private_key(settings)?;
    let vm = &settings.vm;
    let expect = Expectations {
        user: outputs.ssh_user.clone(),
        hostname: outputs.vm_hostname.clone(),
        address: vm.ip.value.to_string(),
        gateway: vm.gateway.value.to_string(),
        nameservers: vm
            .nameservers
            .value
            .iter()
            .map(ToString::to_string)
            .collect(),
        thresholds: settings.verify.thresholds(),
    };
    let connection = if args.one_connection_per_check {
        Connection::PerCheck
    } else {
        Connection::Shared {
            parallel: verify::PARALLEL_CHECKS,
        }
    };
    let vm_id = outputs.vm_id.clone();
    Ok((
        VerifyRequest {
            target: SshTarget::from_outputs(&outputs, key),
            suite: suite(args),
            expect,
            connection,
        },
        layout,
        vm_id,
    ))
}

/// A counter on a terminal's stderr while the checks run (the records go to stdout at
/// the end, so nothing is shown twice); nothing elsewhere.
fn progress(printer: &Printer, suite: Suite) -> ProgressBar {
    if printer.json_mode() || printer.is_quiet() || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("{} suite: running", suite.as_str()));
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

/// Ends the `verify` phase (taking the whole guard, so the run is free afterwards).
fn end_phase(phase: Option<PhaseGuard<'_, '_>>, outcome: Result<&str, &str>) {
    let Some(phase) = phase else { return };
    match outcome {
        Ok(detail) => phase.succeed(Some(detail)),
        Err(error) => phase.fail(&error),
    }
}

/// Checks ran and some failed: the error of the run (and of `up`), carrying the records
/// so they are still shown and written.
#[derive(Debug)]
pub struct ChecksFailed {
    pub verified: Verified,
}

impl std::fmt::Display for ChecksFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed: Vec<&str> = self
            .verified
            .report
            .checks
            .iter()
            .filter(|check| check.status == CheckStatus::Fail)
            .map(|check| check.name.as_str())
            .collect();
        write!(f, "{} check(s) failed: {}", failed.len(), failed.join(", "))
    }
}

impl std::error::Error for ChecksFailed {}

/// The checks' records and where they were written.
#[derive(Debug)]
pub struct Verified {
    pub report: VerifyReport,
    pub file: std::path::PathBuf,
}

impl Verified {
    /// The records as text: one line per check, the count, the file.
    pub fn render(&self) -> String {
        render(&self.report, &self.file)
    }
}

/// The smoke tests inside a recorded run, as its `verify` phase. `up` runs it inside its
/// own run.
///
/// # Errors
/// No outputs (exit 2), no key (exit 2), the results file cannot be written (exit 1);
/// [`ChecksFailed`] when a check failed (exit 1, records written).
pub async fn stage(
    context: &Context,
    args: &VerifyArgs,
    run: Option<&Run<'_>>,
) -> anyhow::Result<Verified> {
    let printer = &context.printer;
    let (request, layout, vm_id) = request(context, args)?;
    let started_at = clock::rfc3339(clock::now_ms());
    let phase = run.map(|run| run.begin_phase("verify"));
    let bar = progress(printer, request.suite);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let live = |result: &CheckResult| {
        let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if result.status == CheckStatus::Fail {
            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let failures = failed.load(std::sync::atomic::Ordering::Relaxed);
        bar.set_message(format!(
            "{} suite: {count} checks done, {failures} failed; last: {}",
            request.suite.as_str(),
            result.name
        ));
    };
    let ran = verify::run(&request, &live).await;
    bar.finish_and_clear();
    let outcome = ran.and_then(|checks| {
        let report = VerifyReport::new(
            (
                &context.settings.environment.value,
                &vm_id,
                request.target.display(),
            ),
            request.suite,
            started_at,
            checks,
        );
        let file = report.write(&layout)?;
        Ok(Verified { report, file })
    });
    let verified = match outcome {
        Ok(verified) => verified,
        Err(error) => {
            end_phase(phase, Err(&error.to_string()));
            return Err(error.into());
        }
    };
    if verified.report.ok() {
        let detail = format!(
            "{} suite: {} passed, {} skipped",
            request.suite.as_str(),
            verified.report.passed,
            verified.report.skipped
        );
        end_phase(phase, Ok(&detail));
        Ok(verified)
    } else {
        let failed = ChecksFailed { verified };
        end_phase(phase, Err(&failed.to_string()));
        Err(failed.into())
    }
}

/// Runs `sombrero verify`.
///
/// # Errors
/// As [`stage`], except that failed checks are exit 1 without an error.
pub async fn run(args: &VerifyArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    if context.lab().is_some() && !context.lab_has_real_guests() {
        return Err(BadInput {
            message: "verify needs a real guest, and --lab's guests are state-only".to_owned(),
            hint: Some(
                "start a lab with real QEMU guests: `sombrero lab serve --guests qemu \
                 --with-template`, point TF_VAR_pve_api_url at it, then deploy and verify; or \
                 rehearse everything with `sombrero up --lab`"
                    .to_owned(),
            ),
        }
        .into());
    }
    let work = async |run: Option<&Run<'_>>| stage(context, args, run).await;
    let Some(result) = recorded(context, "verify", work).await else {
        return Ok(ExitStatus::Interrupted);
    };
    let (verified, status) = match result {
        Ok(verified) => (verified, ExitStatus::Success),
        Err(error) => match error.downcast::<ChecksFailed>() {
            Ok(failed) => (failed.verified, ExitStatus::Failure),
            Err(error) => return Err(error),
        },
    };
    if printer.json_mode() {
        printer.json(&verified.report)?;
    } else {
        printer.data(&verified.render());
    }
    Ok(status)
}
