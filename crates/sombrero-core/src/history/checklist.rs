//! The runbook's deployment record (`deployments/checklists/YYYY-MM-DD-HH-MM-deployment.md`),
//! rendered from the history.
//!
//! Why rendered rather than filled in: the original copied a template and tried to `sed`
//! the phase times into it, which never worked. Here the record is written from the
//! database after (or during) the run, so every phase line has its real start time and
//! duration, the issue log is the one `sombrero issue add` recorded, and the "Process
//! Metrics" block adds up the same numbers `sombrero metrics` shows. An existing file is
//! never overwritten: the next free `-2`, `-3`, ... name is used.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{HistoryError, RunDetail, RunStatus, clock};

/// The runbook's phases of a deployment with the phase names sombrero records for each;
/// used for the "Process Metrics" block. Phases with other names are still listed above it.
const PROCESS_METRICS: &[(&str, &[&str])] = &[
    // The first name is the stage's own phase (recorded by `up`).
    ("Packer Build", &["build", "image", "template"]),
    (
        "Terraform Apply",
        &["deploy", "clone", "configure-vm", "start", "plan", "apply"],
    ),
    ("Ansible Configure", &["configure", "ansible"]),
    ("Verification Tests", &["verify", "smoke", "smoke-tests"]),
];

fn or_unknown(value: Option<&str>) -> &str {
    value.unwrap_or("n/a")
}

/// The markdown record of a run.
pub fn render(detail: &RunDetail) -> String {
    let run = &detail.run;
    let mut text = String::new();
    let status_word = match run.status {
        RunStatus::Success => "✅ SUCCESS",
        RunStatus::Failed => "❌ FAILED",
        RunStatus::Interrupted => "⚠️ INTERRUPTED",
        RunStatus::Running => "⏳ RUNNING",
    };
    let _ = writeln!(text, "# Deployment Record: {}\n", run.id);
    let _ = writeln!(text, "## Deployment Metadata");
    let _ = writeln!(text, "- **Deployment ID**: {}", run.id);
    let _ = writeln!(text, "- **Command**: sombrero {}", run.command);
    let _ = writeln!(text, "- **Start Time**: {}", clock::human(run.started_ms));
    let end = run
        .duration_ms
        .map_or_else(|| "n/a".to_owned(), |ms| clock::human(run.started_ms + ms));
    let _ = writeln!(text, "- **End Time**: {end}");
    let _ = writeln!(text, "- **Operator**: {}", run.operator);
    let _ = writeln!(text, "- **Environment**: {}", run.environment);
    let _ = writeln!(
        text,
        "- **Git Branch**: {}",
        or_unknown(run.git_branch.as_deref())
    );
    let _ = writeln!(
        text,
        "- **Git Commit**: {}",
        or_unknown(run.git_commit.as_deref())
    );
    let _ = writeln!(text, "- **Versions**: sombrero {}", run.sombrero_version);
    let template = run
        .template_id
        .map_or_else(|| "n/a".to_owned(), |id| id.to_string());
    let vm = run
        .vm_id
        .map_or_else(|| "n/a".to_owned(), |id| id.to_string());
    let _ = writeln!(text, "- **Template ID**: {template}");
    let _ = writeln!(text, "- **VM ID**: {vm}");
    let _ = writeln!(text, "- **Status**: {status_word}");
    if let Some(error) = &run.error {
        let _ = writeln!(text, "- **Error**: {error}");
    }

    let _ = writeln!(text, "\n## Phases");
    if detail.phases.is_empty() {
        let _ = writeln!(text, "\nNo phases were recorded.");
    }
    for phase in &detail.phases {
        let mark = match phase.status {
            RunStatus::Success => "[x]",
            _ => "[ ]",
        };
        let duration = phase
            .duration_ms
            .map_or_else(|| "n/a".to_owned(), clock::duration);
        let _ = writeln!(text, "\n### {mark} {}", phase.name);
        let _ = writeln!(text, "- **Start**: {}", clock::human(phase.started_ms));
        let _ = writeln!(text, "- **Duration**: {duration}");
        let _ = writeln!(text, "- **Status**: {}", phase.status.as_str());
        if let Some(detail) = &phase.detail {
            let _ = writeln!(text, "- **Detail**: {detail}");
        }
    }

    let _ = writeln!(text, "\n## Issues & Resolutions");
    if detail.issues.is_empty() {
        let _ = writeln!(text, "\nNo issues were recorded.");
    }
    for (number, record) in detail.issues.iter().enumerate() {
        let issue = &record.issue;
        let _ = writeln!(text, "\n### Issue {}: {}", number + 1, issue.description);
        let _ = writeln!(text, "- **Phase**: {}", issue.phase);
        let _ = writeln!(text, "- **Time**: {}", record.recorded_at);
        let _ = writeln!(text, "- **Description**: {}", issue.description);
        let resolve = issue
            .time_to_resolve_ms
            .map_or_else(|| "n/a".to_owned(), clock::duration);
        for (label, value) in [
            ("Symptoms", or_unknown(issue.symptoms.as_deref())),
            ("Root Cause", or_unknown(issue.root_cause.as_deref())),
            ("Resolution", or_unknown(issue.resolution.as_deref())),
            ("Time to Resolve", &resolve),
            ("Impact", or_unknown(issue.impact.as_deref())),
            ("Prevention", or_unknown(issue.prevention.as_deref())),
        ] {
            let _ = writeln!(text, "- **{label}**: {value}");
        }
    }

    let _ = writeln!(
        text,
        "\n## Lessons Learned\n\n- _Add what to keep and what to change._"
    );

    let _ = writeln!(text, "\n### Process Metrics 📊");
    let total = run
        .duration_ms
        .map_or_else(|| "n/a".to_owned(), clock::duration);
    let _ = writeln!(text, "- **Total Deployment Time**: {total}");
    for (label, names) in PROCESS_METRICS {
        // `up` records each stage as a phase (`deploy`) around its steps (`clone`, ...):
        // the stage's own phase then is the time, or the steps would count twice.
        let stage = names[0];
        let whole = detail.phases.iter().any(|phase| phase.name == stage);
        let sum: Option<i64> = detail
            .phases
            .iter()
            // `configure:docker` (a sub-phase) counts towards `configure`.
            .filter(|phase| {
                if whole {
                    return phase.name == stage;
                }
                let group = phase.name.split(':').next().unwrap_or_default();
                names.contains(&phase.name.as_str()) || names.contains(&group)
            })
            .filter_map(|phase| phase.duration_ms)
            .fold(None, |sum, ms| Some(sum.unwrap_or(0) + ms));
        let value = sum.map_or_else(|| "N/A (not run)".to_owned(), clock::duration);
        let _ = writeln!(text, "- **{label}**: {value}");
    }
    let _ = writeln!(text, "- **Issues Encountered**: {}", detail.issues.len());
    let recorded: usize = detail.phases.len();
    let _ = writeln!(
        text,
        "- **Phases Recorded**: {recorded} ({} succeeded)",
        detail
            .phases
            .iter()
            .filter(|phase| phase.status == RunStatus::Success)
            .count()
    );
    text
}

/// Writes the record of a run into `directory` as `YYYY-MM-DD-HH-MM-deployment.md` (from
/// the run's start time), or `...-deployment-2.md` and so on if that name is taken.
/// Returns the path written.
///
/// # Errors
/// [`HistoryError::CreateDirectory`] or [`HistoryError::Write`] naming the path.
pub fn write(detail: &RunDetail, directory: &Path) -> Result<PathBuf, HistoryError> {
    std::fs::create_dir_all(directory).map_err(|source| HistoryError::CreateDirectory {
        path: directory.to_path_buf(),
        source,
    })?;
    let stamp = clock::checklist_stamp(detail.run.started_ms);
    let text = render(detail);
    for attempt in 1..1000 {
        let name = if attempt == 1 {
            format!("{stamp}-deployment.md")
        } else {
            format!("{stamp}-deployment-{attempt}.md")
        };
        let path = directory.join(name);
        // create_new: an existing file (even one created a moment ago by another
        // process) is never truncated.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|source| HistoryError::Write {
                        path: path.clone(),
                        source,
                    })?;
                return Ok(path);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(HistoryError::Write { path, source }),
        }
    }
    Err(HistoryError::Exists {
        path: directory.join(format!("{stamp}-deployment.md")),
    })
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::history::{PhaseRecord, RunDetail, RunRecord, RunStatus};

    fn phase(name: &str, ms: i64) -> PhaseRecord {
        PhaseRecord {
            name: name.to_owned(),
            started_at: String::new(),
            duration_ms: Some(ms),
            status: RunStatus::Success,
            detail: None,
            started_ms: 0,
        }
    }

    fn detail(command: &str, phases: Vec<PhaseRecord>) -> RunDetail {
        RunDetail {
            run: RunRecord {
                id: "DEP-20261205-120000".into(),
                command: command.into(),
                environment: "staging".into(),
                operator: "op".into(),
                git_branch: None,
                git_commit: None,
                sombrero_version: "0".into(),
                template_id: None,
                vm_id: None,
                started_at: String::new(),
                ended_at: None,
                duration_ms: Some(100_000),
                status: RunStatus::Success,
                error: None,
                started_ms: 0,
                seq: 1,
            },
            phases,
            issues: Vec::new(),
        }
    }

    fn line<'t>(text: &'t str, label: &str) -> &'t str {
        text.lines()
            .find(|line| line.contains(label))
            .unwrap_or_else(|| panic!("no {label} line in {text}"))
    }

    #[test]
    fn a_stage_phase_around_its_steps_is_counted_once() {
        // `up`: the stage's own phase (20 s) encloses its steps (5 + 15 s).
        let up = detail(
            "up",
            vec![
                phase("deploy", 20_000),
                phase("plan", 5_000),
                phase("clone", 15_000),
                phase("configure", 60_000),
                phase("configure:prepare", 1_000),
                phase("configure:docker", 59_000),
            ],
        );
        let text = render(&up);
        assert!(line(&text, "Terraform Apply").ends_with("20s"), "{text}");
        assert!(
            line(&text, "Ansible Configure").ends_with("1m 0s"),
            "{text}"
        );
        assert!(
            line(&text, "Packer Build").ends_with("N/A (not run)"),
            "{text}"
        );
        // `deploy` alone records only the steps: they add up.
        let deploy = detail("deploy", vec![phase("plan", 5_000), phase("clone", 15_000)]);
        let text = render(&deploy);
        assert!(line(&text, "Terraform Apply").ends_with("20s"), "{text}");
    }
}
