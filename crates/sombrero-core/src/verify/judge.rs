//! How a check's output becomes pass or fail with a one-line "expected ..., seen ..."
//! detail. Small pure functions, so the judgements are unit-tested without a VM.

use crate::ssh::RemoteOutput;

use super::CheckStatus;

/// A judgement: status and detail.
pub type Verdict = (CheckStatus, String);

/// The first non-empty line of `text`, trimmed and shortened for a one-line detail.
pub fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("");
    shorten(line, 160)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// What a failed command said: its stderr's last line, else its stdout's first.
pub fn complaint(output: &RemoteOutput) -> String {
    let last = output
        .stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty());
    match last {
        Some(line) => shorten(line, 160),
        None if output.stdout.trim().is_empty() => match output.code {
            Some(code) => format!("exit code {code}, no output"),
            None => "killed by a signal".to_owned(),
        },
        None => first_line(&output.stdout),
    }
}

fn pass(detail: String) -> Verdict {
    (CheckStatus::Pass, detail)
}

fn fail(detail: String) -> Verdict {
    (CheckStatus::Fail, detail)
}

/// Passes when the command succeeds; the detail is its first line (or `ok`).
pub fn succeeds(output: &RemoteOutput, expected: &str) -> Verdict {
    if output.success() {
        let seen = first_line(&output.stdout);
        pass(if seen.is_empty() {
            expected.to_owned()
        } else {
            seen
        })
    } else {
        fail(format!("expected {expected}, seen: {}", complaint(output)))
    }
}

/// Passes when the first line of stdout is exactly `expected`.
pub fn equals(output: &RemoteOutput, expected: &str) -> Verdict {
    let seen = first_line(&output.stdout);
    if seen == expected {
        pass(seen)
    } else if seen.is_empty() {
        fail(format!("expected {expected}, seen: {}", complaint(output)))
    } else {
        fail(format!("expected {expected}, seen {seen}"))
    }
}

/// Passes when stdout has every one of `needles` (whole output, case-sensitive).
pub fn contains_all(output: &RemoteOutput, needles: &[String], what: &str) -> Verdict {
    let missing: Vec<&str> = needles
        .iter()
        .filter(|needle| !output.stdout.contains(needle.as_str()))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        pass(what.to_owned())
    } else if output.stdout.trim().is_empty() {
        fail(format!(
            "expected {}, seen: {}",
            needles.join(", "),
            complaint(output)
        ))
    } else {
        fail(format!(
            "expected {}, missing {}",
            needles.join(", "),
            missing.join(", ")
        ))
    }
}

/// cloud-init's status from its `status.json` and `result.json` (as `cloud-init status`
/// computes it): `running` while a stage runs or no result exists, `error` when a stage
/// recorded errors, `degraded done` with recoverable errors (cloud-init 23+), else
/// `done`. Input: status.json, a `---sombrero---` line, result.json (`{}` when absent).
pub fn cloud_init(output: &RemoteOutput) -> Verdict {
    let Some((status, result)) = output.stdout.split_once("---sombrero---") else {
        return fail(format!(
            "expected status: done, seen: {}",
            complaint(output)
        ));
    };
    let (Ok(status), Ok(result)) = (
        serde_json::from_str::<serde_json::Value>(status.trim()),
        serde_json::from_str::<serde_json::Value>(result.trim()),
    ) else {
        return fail("expected status: done, seen unreadable status files".to_owned());
    };
    let stages = status["v1"].as_object().cloned().unwrap_or_default();
    let errors: Vec<String> = stages
        .iter()
        .filter_map(|(stage, data)| {
            let list = data.get("errors")?.as_array()?;
            (!list.is_empty()).then(|| {
                let first = list
                    .first()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned));
                format!("{stage}: {}", first.unwrap_or_default())
            })
        })
        .collect();
    let running = !stages.get("stage").is_none_or(serde_json::Value::is_null);
    let finished = result.get("v1").is_some();
    let recoverable = result["v1"]["recoverable_errors"]
        .as_object()
        .is_some_and(|found| !found.is_empty());
    let seen = if !errors.is_empty() {
        format!("status: error ({})", errors.join("; "))
    } else if running || !finished {
        "status: running".to_owned()
    } else if recoverable {
        "status: degraded done".to_owned()
    } else {
        return pass("status: done".to_owned());
    };
    fail(format!("expected status: done, seen {seen}"))
}

/// Passes when a `key value` line of the output (`sshd -T`) has `value`.
pub fn setting(output: &RemoteOutput, key: &str, value: &str) -> Verdict {
    let seen = output.stdout.lines().find_map(|line| {
        let (name, rest) = line.trim().split_once(' ')?;
        (name == key).then(|| rest.trim().to_owned())
    });
    match seen {
        Some(seen) if seen == value => pass(format!("{key} {value}")),
        Some(seen) => fail(format!("expected {key} {value}, seen {key} {seen}")),
        None => fail(format!(
            "expected {key} {value}, seen: {}",
            complaint(output)
        )),
    }
}

/// Passes when the command printed nothing (e.g. no failed units); lists what it printed.
pub fn empty_list(output: &RemoteOutput, nothing: &str, some: &str) -> Verdict {
    if !output.success() {
        return fail(format!("expected {nothing}, seen: {}", complaint(output)));
    }
    let items: Vec<&str> = output
        .stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    if items.is_empty() {
        pass(nothing.to_owned())
    } else {
        fail(format!(
            "expected {nothing}, seen {some}: {}",
            items.join(", ")
        ))
    }
}

/// Passes when the number the command printed is at most `max`.
pub fn at_most(output: &RemoteOutput, what: &str, max: f64, unit: &str) -> Verdict {
    let seen = first_line(&output.stdout);
    match seen.trim_end_matches('%').parse::<f64>() {
        Ok(value) if value <= max => pass(format!("{what} {value:.1}{unit} (at most {max}{unit})")),
        Ok(value) => fail(format!(
            "expected {what} at most {max}{unit}, seen {value:.1}{unit}"
        )),
        Err(_) => fail(format!(
            "expected a number for {what}, seen: {}",
            if seen.is_empty() {
                complaint(output)
            } else {
                seen
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> RemoteOutput {
        RemoteOutput {
            code: Some(code),
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
        }
    }

    #[test]
    fn equals_says_what_it_expected_and_saw() {
        assert_eq!(
            equals(&out(0, "jump-man\n", ""), "jump-man").0,
            CheckStatus::Pass
        );
        let (status, detail) = equals(&out(0, "broken\n", ""), "jump-man");
        assert_eq!(status, CheckStatus::Fail);
        assert_eq!(detail, "expected jump-man, seen broken");
        let (_, detail) = equals(&out(1, "", "sh: 1: hostname: not found\n"), "jump-man");
        assert_eq!(
            detail,
            "expected jump-man, seen: sh: 1: hostname: not found"
        );
    }

    #[test]
    fn a_failed_command_is_described_by_its_last_error_line() {
        let (status, detail) = succeeds(
            &out(1, "", "line one\nsudo: a password is required\n"),
            "sudo without a password",
        );
        assert_eq!(status, CheckStatus::Fail);
        assert!(detail.ends_with("sudo: a password is required"), "{detail}");
        let (_, detail) = succeeds(&out(3, "", ""), "x");
        assert_eq!(detail, "expected x, seen: exit code 3, no output");
    }

    #[test]
    fn lists_name_their_items_and_numbers_their_limit() {
        let (status, detail) = empty_list(
            &out(
                0,
                "broken.service loaded failed failed Broken\nother.service loaded failed failed\n",
                "",
            ),
            "no failed units",
            "failed",
        );
        assert_eq!(status, CheckStatus::Fail);
        assert!(
            detail.ends_with("broken.service, other.service"),
            "{detail}"
        );
        assert_eq!(
            empty_list(&out(0, "\n", ""), "none", "some").0,
            CheckStatus::Pass
        );
        assert_eq!(
            at_most(&out(0, "91%\n", ""), "disk", 90.0, "%").0,
            CheckStatus::Fail
        );
        assert_eq!(
            at_most(&out(0, "12\n", ""), "disk", 90.0, "%").0,
            CheckStatus::Pass
        );
        assert_eq!(
            at_most(&out(0, "n/a\n", ""), "disk", 90.0, "%").0,
            CheckStatus::Fail
        );
    }

    #[test]
    fn cloud_init_status_is_read_from_its_files() {
        let status = |errors: &str, stage: &str| {
            format!(
                "{{\"v1\": {{\"stage\": {stage}, \"init\": {{\"errors\": []}}, \
                 \"modules-final\": {{\"errors\": [{errors}]}}}}}}\n---sombrero---\n"
            )
        };
        let done = status("", "null") + "{\"v1\": {\"errors\": []}}";
        assert_eq!(
            cloud_init(&out(0, &done, "")),
            (CheckStatus::Pass, "status: done".to_owned())
        );
        let error = status("\"forced\"", "null") + "{\"v1\": {\"errors\": []}}";
        let (status_seen, detail) = cloud_init(&out(0, &error, ""));
        assert_eq!(status_seen, CheckStatus::Fail);
        assert_eq!(
            detail,
            "expected status: done, seen status: error (modules-final: forced)"
        );
        let running = status("", "\"modules-final\"") + "{}";
        assert!(
            cloud_init(&out(0, &running, ""))
                .1
                .ends_with("status: running")
        );
        let degraded = status("", "null")
            + "{\"v1\": {\"errors\": [], \"recoverable_errors\": {\"WARNING\": [\"x\"]}}}";
        assert!(
            cloud_init(&out(0, &degraded, ""))
                .1
                .ends_with("status: degraded done")
        );
        let missing = out(
            1,
            "",
            "cat: /run/cloud-init/status.json: No such file or directory\n",
        );
        assert!(
            cloud_init(&missing).1.contains("No such file"),
            "{:?}",
            cloud_init(&missing)
        );
    }

    #[test]
    fn settings_are_read_by_key() {
        let sshd = "port 22\npasswordauthentication yes\npermitrootlogin no\n";
        assert_eq!(
            setting(&out(0, sshd, ""), "permitrootlogin", "no").0,
            CheckStatus::Pass
        );
        let (status, detail) = setting(&out(0, sshd, ""), "passwordauthentication", "no");
        assert_eq!(status, CheckStatus::Fail);
        assert_eq!(
            detail,
            "expected passwordauthentication no, seen passwordauthentication yes"
        );
    }

    #[test]
    fn contains_all_names_what_is_missing() {
        let needles = vec!["policy drop".to_owned(), "tcp dport 22".to_owned()];
        let (status, detail) = contains_all(
            &out(0, "chain input { policy accept; }", ""),
            &needles,
            "ok",
        );
        assert_eq!(status, CheckStatus::Fail);
        assert!(
            detail.ends_with("missing policy drop, tcp dport 22"),
            "{detail}"
        );
        let seen = "type filter hook input priority 0; policy drop;\n tcp dport 22 accept";
        assert_eq!(
            contains_all(&out(0, seen, ""), &needles, "ok").0,
            CheckStatus::Pass
        );
    }
}
