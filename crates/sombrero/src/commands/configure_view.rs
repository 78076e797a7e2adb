//! What `configure` and `build` show and record while they run: one line per Ansible task
//! (a spinner on a terminal), one history phase per role (configure) or per step (build),
//! and configure's recap at the end.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sombrero_core::configure::{AnsibleEvent, ConfigureEvent, ConfigureReport, TaskStatus};
use sombrero_core::history::{PhaseGuard, Run};

use crate::printer::Printer;
use crate::progress::pump;

/// Runs `work` with its events shown (a [`View`]) and recorded in `run` as
/// `<prefix>:<step>` phases (and one per Ansible role when `per_role`). The run itself is
/// the caller's to end ([`crate::recording::recorded`]).
pub async fn show_and_record<T, E: std::fmt::Display, F>(
    run: Option<&Run<'_>>,
    printer: &Printer,
    (prefix, per_role): (&'static str, bool),
    work: impl FnOnce(Box<dyn Fn(&ConfigureEvent) + Send + Sync>) -> F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut view = View::new(printer);
    let mut phases = RolePhases::with_prefix(run, prefix, per_role);
    let result = pump(work, |event| {
        view.handle(event);
        phases.handle(event);
    })
    .await;
    view.close();
    phases.finish(&result);
    result
}

/// Renders configure's events for a person.
pub struct View<'p> {
    printer: &'p Printer,
    quiet: bool,
    terminal: bool,
    spinner: Option<ProgressBar>,
    /// The step of sombrero's own in progress (cloud-init, results).
    step: Option<String>,
}

fn label(role: Option<&str>, task: &str) -> String {
    match role {
        Some(role) => format!("[{role}] {task}"),
        None => task.to_owned(),
    }
}

impl<'p> View<'p> {
    pub fn new(printer: &'p Printer) -> Self {
        Self {
            printer,
            quiet: printer.is_quiet(),
            terminal: std::io::stderr().is_terminal(),
            spinner: None,
            step: None,
        }
    }

    fn spin(&mut self, text: String) {
        if self.terminal {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(text);
            bar.enable_steady_tick(Duration::from_millis(100));
            self.spinner = Some(bar);
        }
    }

    fn line(&mut self, text: &str) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
        self.printer.info(text);
    }

    pub fn handle(&mut self, event: &ConfigureEvent) {
        if self.quiet {
            return;
        }
        match event {
            ConfigureEvent::Started { what, .. } => {
                self.line(&format!("→ {what}"));
                self.step = Some(what.clone());
                self.spin(what.clone());
            }
            ConfigureEvent::Finished { detail } => {
                let what = self.step.take().unwrap_or_default();
                self.line(&format!("✓ {what}: {detail}"));
            }
            ConfigureEvent::Failed { error } => self.line(&format!("✗ {error}")),
            ConfigureEvent::Note { text } => self.line(&format!("  · {text}")),
            ConfigureEvent::Ansible(AnsibleEvent::TaskStart { task, role, .. }) => {
                self.spin(label(role.as_deref(), task));
            }
            ConfigureEvent::Ansible(AnsibleEvent::TaskResult {
                task,
                role,
                status,
                message,
                ignored,
                duration,
                ..
            }) => {
                let (mark, word) = match status {
                    TaskStatus::Ok => ("✓", "ok"),
                    TaskStatus::Changed => ("✓", "changed"),
                    TaskStatus::Skipped => ("-", "skipped"),
                    TaskStatus::Failed if *ignored => ("!", "failed (ignored)"),
                    TaskStatus::Failed => ("✗", "failed"),
                    TaskStatus::Unreachable => ("✗", "unreachable"),
                };
                let seconds = duration.map(|d| format!(" ({d:.1}s)")).unwrap_or_default();
                let why = if message.is_empty() || *ignored {
                    String::new()
                } else {
                    format!(": {}", message.lines().next().unwrap_or_default())
                };
                self.line(&format!(
                    "  {mark} {} {word}{seconds}{why}",
                    label(role.as_deref(), task)
                ));
            }
            _ => {}
        }
    }

    /// Clears the spinner (the command ends).
    pub fn close(&mut self) {
        if let Some(bar) = self.spinner.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for View<'_> {
    /// An interrupted command leaves no spinner behind.
    fn drop(&mut self) {
        self.close();
    }
}

/// Records `configure:<role>` phases from the events (or, for `build`, one
/// `build:<step>` phase per step of sombrero's own, Ansible's tasks inside them).
pub struct RolePhases<'run> {
    run: Option<&'run Run<'run>>,
    prefix: &'static str,
    per_role: bool,
    current: Option<(String, PhaseGuard<'run, 'run>)>,
    changed: u32,
    /// The playbook's failure was recorded on its role's phase already.
    failure_recorded: bool,
}

impl<'run> RolePhases<'run> {
    /// Phases named `<prefix>:<step>`; `per_role`: one phase per Ansible role too.
    pub fn with_prefix(run: Option<&'run Run<'run>>, prefix: &'static str, per_role: bool) -> Self {
        Self {
            run,
            prefix,
            per_role,
            current: None,
            changed: 0,
            failure_recorded: false,
        }
    }

    fn open(&mut self, name: &str) {
        let Some(run) = self.run else { return };
        if self.current.as_ref().is_some_and(|(open, _)| open == name) {
            return;
        }
        self.close_ok();
        self.current = Some((name.to_owned(), run.begin_phase(name)));
    }

    fn close_ok(&mut self) {
        if let Some((_, guard)) = self.current.take() {
            let detail = format!("{} changed", self.changed);
            guard.succeed(Some(&detail));
        }
        self.changed = 0;
    }

    pub fn handle(&mut self, event: &ConfigureEvent) {
        match event {
            ConfigureEvent::Started { phase, .. } => {
                let name = format!("{}:{phase}", self.prefix);
                self.open(&name);
            }
            ConfigureEvent::Ansible(AnsibleEvent::TaskStart { role, handler, .. })
                if self.per_role =>
            {
                let group = if *handler {
                    "handlers"
                } else {
                    role.as_deref().unwrap_or("playbook")
                };
                self.open(&format!("configure:{group}"));
            }
            ConfigureEvent::Ansible(AnsibleEvent::TaskResult {
                status: TaskStatus::Changed,
                ..
            }) => self.changed += 1,
            ConfigureEvent::Failed { error } => {
                if let Some((_, guard)) = self.current.take() {
                    guard.fail(error);
                }
                self.failure_recorded = true;
            }
            _ => {}
        }
    }

    /// Ends the open phase with the command's outcome.
    pub fn finish<T, E: std::fmt::Display>(&mut self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.close_ok(),
            // The results were still read and written after a failed playbook.
            Err(_) if self.failure_recorded => self.close_ok(),
            Err(error) => {
                if let Some((_, guard)) = self.current.take() {
                    guard.fail(error);
                }
            }
        }
    }
}

/// The recap printed at the end (stdout).
pub fn recap(report: &ConfigureReport) -> String {
    let results = &report.results;
    let recap = &results.recap;
    let mut text = format!(
        "Configured VM {} of environment {}: ok={} changed={} failed={} skipped={} \
         (Ansible {:.1}s)\n  services:       {}\n  docker:         {}{}\n  groups:         {}\n  \
         firewall rules: {}\n  results:        {}\n  log:            {}",
        results.vm_id,
        results.environment,
        recap.ok,
        recap.changed,
        recap.failed,
        recap.skipped,
        results.ansible_seconds,
        results.configured_services.join(", "),
        results.docker_status,
        results
            .docker_version
            .as_ref()
            .map(|version| format!(" ({version})"))
            .unwrap_or_default(),
        results.user_groups.join(" "),
        results
            .firewall_rules
            .map_or_else(|| "unknown".to_owned(), |count| count.to_string()),
        report.results_file.display(),
        results.log_file,
    );
    if !report.changed_tasks.is_empty() {
        text.push_str("\n  changed:");
        for task in &report.changed_tasks {
            let _ = write!(text, "\n    {task}");
        }
    }
    text
}
