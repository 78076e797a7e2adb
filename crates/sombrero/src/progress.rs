//! Live progress of stage 2 (one line per step, spinner and elapsed time) and the history
//! phases recorded from the same events.
//!
//! Why both from one event stream: the core emits [`DeployEvent`]s and never prints; the
//! binary renders them (indicatif on a terminal, plain lines otherwise, nothing with `-q`)
//! and records each step group as a history phase while it happens, so a run killed in
//! the middle shows where it stopped. The history recorder is not `Send`, so events travel
//! through a channel to the command's own task, which renders and records them.

use std::future::Future;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use pve::WaitEvent;
use sombrero_core::deploy::{DeployEvent, Step};
use sombrero_core::history::{PhaseGuard, Run};

use crate::printer::Printer;

/// Renders events for a person.
#[derive(Debug)]
pub struct Progress<'p> {
    printer: &'p Printer,
    quiet: bool,
    terminal: bool,
    current: Option<(ProgressBar, Instant, String)>,
    /// When the last progress line of a wait was printed (no terminal: no spinner).
    last_line: Option<Instant>,
}

/// How often a long wait prints a line when there is no terminal to draw a spinner on
/// (CI logs, `| tee`): often enough to see it is alive, rarely enough to stay readable.
const WAIT_LINE_EVERY: Duration = Duration::from_secs(30);

/// Whether a wait's progress line is due at `now`: the first once the wait has lasted
/// [`WAIT_LINE_EVERY`], then one every [`WAIT_LINE_EVERY`].
fn wait_line_due(started: Instant, last: Option<Instant>, now: Instant) -> bool {
    now.duration_since(last.unwrap_or(started)) >= WAIT_LINE_EVERY
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

impl<'p> Progress<'p> {
    pub fn new(printer: &'p Printer) -> Self {
        Self {
            printer,
            quiet: printer.is_quiet(),
            terminal: std::io::stderr().is_terminal(),
            current: None,
            last_line: None,
        }
    }

    fn close(&mut self, mark: &str, detail: &str) {
        self.last_line = None;
        if let Some((bar, started, what)) = self.current.take() {
            let line = format!("{mark} {what}: {detail} ({})", seconds(started.elapsed()));
            // The spinner goes; a plain line stays, so later messages start on a new line.
            bar.finish_and_clear();
            let indent = if self.terminal { "" } else { "  " };
            self.printer.info(&format!("{indent}{line}"));
        }
    }

    /// Renders one event.
    pub fn handle(&mut self, event: &DeployEvent) {
        if self.quiet {
            return;
        }
        match event {
            DeployEvent::Started { what, .. } => {
                self.close("✓", "done");
                let bar = if self.terminal {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_message(what.clone());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar
                } else {
                    self.printer.info(&format!("→ {what}"));
                    ProgressBar::hidden()
                };
                self.current = Some((bar, Instant::now(), what.clone()));
            }
            DeployEvent::Finished { detail, .. } => self.close("✓", detail),
            DeployEvent::Skipped { step, reason } => {
                self.close("✓", "done");
                self.printer
                    .info(&format!("- skipped {}: {reason}", step_name(*step)));
            }
            DeployEvent::Waiting { event } => self.waiting(event),
            _ => {}
        }
    }

    fn waiting(&mut self, event: &WaitEvent) {
        let note = match event {
            WaitEvent::Locked { lock, .. } => format!("lock: {lock}"),
            WaitEvent::AgentNotReady { .. } => "agent not up yet".to_owned(),
            WaitEvent::AgentNoAddress { .. } => "agent up, no address yet".to_owned(),
            WaitEvent::Retrying {
                what,
                attempt,
                reason,
            } => {
                self.printer
                    .warn(&format!("retrying {what} (attempt {attempt}): {reason}"));
                return;
            }
            _ => return,
        };
        let Some((bar, started, what)) = &self.current else {
            return;
        };
        if self.terminal {
            bar.set_message(format!("{what} ({note})"));
        } else if wait_line_due(*started, self.last_line, Instant::now()) {
            self.printer.info(&format!(
                "  … {what}: {note} ({})",
                seconds(started.elapsed())
            ));
            self.last_line = Some(Instant::now());
        }
    }

    /// Ends the current line as failed.
    pub fn fail(&mut self, error: &dyn std::fmt::Display) {
        let text = error.to_string();
        if !self.quiet {
            self.close("✗", &text);
        }
    }

    /// Ends the current line as done.
    pub fn finish(&mut self) {
        if !self.quiet {
            self.close("✓", "done");
        }
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Ssh => "SSH check",
        Step::HostKey => "host key",
        Step::Address => "agent address",
        _ => step.phase(),
    }
}

/// Records one history phase per group of steps ([`Step::phase`]).
pub struct Phases<'run> {
    run: Option<&'run Run<'run>>,
    current: Option<(&'static str, PhaseGuard<'run, 'run>)>,
    /// Retries announced during the open phase (recorded as its detail).
    retries: u32,
}

impl<'run> Phases<'run> {
    pub fn new(run: Option<&'run Run<'run>>) -> Self {
        Self {
            run,
            current: None,
            retries: 0,
        }
    }

    /// The detail a phase ends with: how many retries it took, if any.
    fn detail(&self) -> Option<String> {
        (self.retries > 0).then(|| match self.retries {
            1 => "1 retry".to_owned(),
            count => format!("{count} retries"),
        })
    }

    /// Starts a new phase when a step of another group begins; counts retries.
    pub fn handle(&mut self, event: &DeployEvent) {
        if let DeployEvent::Waiting {
            event: WaitEvent::Retrying { .. },
        } = event
        {
            self.retries += 1;
            return;
        }
        let DeployEvent::Started { step, .. } = event else {
            return;
        };
        let Some(run) = self.run else { return };
        let phase = step.phase();
        if self
            .current
            .as_ref()
            .is_some_and(|(name, _)| *name == phase)
        {
            return;
        }
        if let Some((_, guard)) = self.current.take() {
            guard.succeed(self.detail().as_deref());
            self.retries = 0;
        }
        self.current = Some((phase, run.begin_phase(phase)));
    }

    /// Ends the open phase with the outcome.
    pub fn finish<T, E: std::fmt::Display>(&mut self, result: &Result<T, E>) {
        if let Some((_, guard)) = self.current.take() {
            match (result, self.detail()) {
                (Ok(_), Some(detail)) => guard.succeed(Some(&detail)),
                _ => guard.finish(result),
            }
        }
    }
}

/// Runs `work`, which reports events through the callback it is given, and hands each
/// event to `handle` on this task while `work` runs (the history recorder is not `Send`,
/// so events cross a channel rather than being recorded inside the callback).
pub async fn pump<Event, T, F>(
    work: impl FnOnce(Box<dyn Fn(&Event) + Send + Sync>) -> F,
    mut handle: impl FnMut(&Event),
) -> T
where
    Event: Clone + Send + 'static,
    F: Future<Output = T>,
{
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let callback: Box<dyn Fn(&Event) + Send + Sync> = Box::new(move |event| {
        let _ = sender.send(event.clone());
    });
    let future = work(callback);
    tokio::pin!(future);
    let result = loop {
        tokio::select! {
            biased;
            Some(event) = receiver.recv() => handle(&event),
            result = &mut future => break result,
        }
    };
    while let Ok(event) = receiver.try_recv() {
        handle(&event);
    }
    result
}

/// Runs `work`, which reports through the callback it is given, rendering and recording
/// every event on this task while it runs.
pub async fn drive<T, E, F>(
    progress: &mut Progress<'_>,
    phases: &mut Phases<'_>,
    work: impl FnOnce(Box<dyn Fn(&DeployEvent) + Send + Sync>) -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let result = pump(work, |event| {
        progress.handle(event);
        phases.handle(event);
    })
    .await;
    match &result {
        Ok(_) => progress.finish(),
        Err(error) => progress.fail(error),
    }
    phases.finish(&result);
    result
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{WAIT_LINE_EVERY, wait_line_due};

    #[test]
    fn a_long_wait_prints_a_line_every_thirty_seconds_without_a_terminal() {
        let started = Instant::now();
        let at = |seconds: u64| started + Duration::from_secs(seconds);
        assert!(!wait_line_due(started, None, at(29)));
        assert!(wait_line_due(started, None, at(30)));
        assert!(!wait_line_due(started, Some(at(30)), at(59)));
        assert!(wait_line_due(started, Some(at(30)), at(60)));
        assert_eq!(WAIT_LINE_EVERY, Duration::from_secs(30));
    }
}
