//! `sombrero issue add`: an entry in the runbook's "Issues & Resolutions" log, attached to
//! a recorded run (the latest by default).
//!
//! Why prompts only on a terminal: a person filling in an issue after a bad deploy should
//! be asked for what they left out, but a script must never hang waiting for input, so
//! without a terminal a missing required field is an error that names its flag. The
//! prompts are a conversation with the terminal, so they go straight to stderr (never
//! stdout, which stays data-only).

use std::io::{BufRead, IsTerminal as _, Write};

use sombrero_core::history::{NewIssue, clock};

use crate::cli::IssueAddArgs;
use crate::context::HistoryContext;
use crate::exit::{BadInput, ExitStatus};

/// The issue fields in the runbook's order: flag, question, required.
const FIELDS: [(&str, &str, bool); 8] = [
    ("--phase", "Phase (e.g. clone, configure, verify)", true),
    ("--description", "Description", true),
    ("--symptoms", "Symptoms", false),
    ("--root-cause", "Root cause", false),
    ("--resolution", "Resolution", false),
    (
        "--time-to-resolve",
        "Time to resolve (e.g. 15m, 1h30m)",
        false,
    ),
    ("--impact", "Impact", false),
    ("--prevention", "Prevention", false),
];

fn values(args: &IssueAddArgs) -> [Option<String>; 8] {
    [
        args.phase.clone(),
        args.description.clone(),
        args.symptoms.clone(),
        args.root_cause.clone(),
        args.resolution.clone(),
        args.time_to_resolve.clone(),
        args.impact.clone(),
        args.prevention.clone(),
    ]
}

/// Fills missing fields: by asking on `terminal` when there is one (optional fields may
/// be left empty), otherwise by failing on the first missing required field.
///
/// # Errors
/// [`BadInput`] naming the flag of a missing required field.
pub fn fill(
    values: &mut [Option<String>; 8],
    terminal: Option<(&mut dyn BufRead, &mut dyn Write)>,
) -> Result<(), BadInput> {
    let missing = |flag: &str| BadInput {
        message: format!(
            "missing {flag}: `sombrero issue add` needs it when stdin is not a terminal"
        ),
        hint: Some(
            "pass the fields as flags, e.g. --phase configure --description \"...\"".to_owned(),
        ),
    };
    let Some((input, output)) = terminal else {
        for ((flag, _, required), value) in FIELDS.iter().zip(values.iter()) {
            if *required && value.as_deref().is_none_or(|text| text.trim().is_empty()) {
                return Err(missing(flag));
            }
        }
        return Ok(());
    };
    for ((flag, question, required), value) in FIELDS.iter().zip(values.iter_mut()) {
        while value.is_none() {
            let suffix = if *required { "" } else { " (optional)" };
            let _ = write!(output, "{question}{suffix}: ");
            let _ = output.flush();
            let mut line = String::new();
            if input.read_line(&mut line).unwrap_or(0) == 0 {
                // End of input: the person gave up; required fields are still missing.
                return if *required {
                    Err(missing(flag))
                } else {
                    Ok(())
                };
            }
            let answer = line.trim();
            if !answer.is_empty() {
                *value = Some(answer.to_owned());
            } else if !required {
                break;
            }
        }
    }
    Ok(())
}

pub fn run(args: &IssueAddArgs, context: &HistoryContext) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let store = context.open_for_reading()?;
    // Check the run first, so nobody types a whole issue for a run that does not exist.
    let run = store.run(args.run.as_deref())?;
    let mut values = values(args);
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        printer.info(&format!(
            "Logging an issue for {} ({})",
            run.id, run.command
        ));
        let mut input = std::io::stdin().lock();
        let mut output = std::io::stderr().lock();
        fill(&mut values, Some((&mut input, &mut output)))?;
    } else {
        fill(&mut values, None)?;
    }
    let [
        phase,
        description,
        symptoms,
        root_cause,
        resolution,
        time_to_resolve,
        impact,
        prevention,
    ] = values;
    let time_to_resolve_ms = time_to_resolve
        .as_deref()
        .map(clock::parse_duration_ms)
        .transpose()?;
    let issue = NewIssue {
        phase: phase.unwrap_or_default(),
        description: description.unwrap_or_default(),
        symptoms,
        root_cause,
        resolution,
        time_to_resolve_ms,
        impact,
        prevention,
    };
    let record = store.add_issue(Some(&run.id), &issue)?;
    if printer.json_mode() {
        printer.json(&record)?;
    } else {
        printer.info(&format!(
            "Logged an issue in phase {} for {}",
            record.issue.phase, record.run
        ));
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::{FIELDS, fill};

    #[test]
    fn prompts_ask_for_missing_fields_and_skip_empty_optional_ones() {
        let mut values: [Option<String>; 8] = Default::default();
        values[1] = Some("clone timed out".to_owned());
        // phase, then symptoms; the other optional fields are left empty.
        let mut input: &[u8] = b"\nclone\nno task progress\n\nrestarted the task\n\n\n";
        let mut output = Vec::new();
        fill(&mut values, Some((&mut input, &mut output))).unwrap();
        assert_eq!(
            values[0].as_deref(),
            Some("clone"),
            "an empty answer to a required field asks again"
        );
        assert_eq!(values[2].as_deref(), Some("no task progress"));
        assert_eq!(values[3], None);
        assert_eq!(values[4].as_deref(), Some("restarted the task"));
        let prompts = String::from_utf8(output).unwrap();
        assert_eq!(prompts.matches("Phase").count(), 2);
        assert!(
            !prompts.contains("Description"),
            "given fields are not asked"
        );
    }

    #[test]
    fn without_a_terminal_a_missing_required_field_names_its_flag() {
        let mut values: [Option<String>; 8] = Default::default();
        values[0] = Some("verify".to_owned());
        let error = fill(&mut values, None).unwrap_err();
        assert!(error.message.contains("--description"), "{}", error.message);
        assert_eq!(FIELDS[1].0, "--description");
    }

    #[test]
    fn end_of_input_stops_with_the_missing_flag() {
        let mut values: [Option<String>; 8] = Default::default();
        let mut input: &[u8] = b"";
        let mut output = Vec::new();
        let error = fill(&mut values, Some((&mut input, &mut output))).unwrap_err();
        assert!(error.message.contains("--phase"));
    }
}
