//! For test suites that need a resource this machine may lack (QEMU, the guest image,
//! OpenSSH, Chromium, ansible-core): how they say they skipped, visibly, and why CI may
//! not skip at all.
//!
//! Why not `eprintln!`: the test harness captures `print!`/`eprint!` output of passing
//! tests, so a skipped test would look exactly like a passing one. Writing to the process's
//! stderr handle directly is not captured: the reason shows up in every `cargo test` run,
//! next to the test's `ok`.
//!
//! Why CI fails instead: `.ci/run` installs everything these tests need, so a skip there
//! means the setup broke, and a green run would hide it. With `CI` set, a skip panics.

use std::io::Write as _;

/// Reports that `test` did not run, and why (with the command that fixes it, if any).
///
/// On a developer's machine this prints `SKIPPED test: reason` to stderr and the test
/// passes. When the environment variable `CI` is set (non-empty, and not `0` or `false`),
/// it panics instead: CI installs what the tests need, so it may never skip silently.
///
/// # Panics
/// When `CI` is set, with `{test} cannot be skipped in CI (CI is set): {reason}`.
pub fn skip(test: &str, reason: &str) {
    let ci = std::env::var("CI").ok();
    assert!(
        !must_fail(ci.as_deref()),
        "{test} cannot be skipped in CI (CI is set): {reason}"
    );
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Whether a skip must fail, given the value of `CI` (`None` when it is not set): set
/// means non-empty and not `0` or `false` (any case), the values CI systems use for "no".
fn must_fail(ci: Option<&str>) -> bool {
    ci.map(str::trim).is_some_and(|value| {
        !value.is_empty() && value != "0" && !value.eq_ignore_ascii_case("false")
    })
}

#[cfg(test)]
mod tests {
    use super::must_fail;

    #[test]
    fn only_a_set_ci_variable_turns_a_skip_into_a_failure() {
        for set in ["true", "1", "yes", "github-actions", "TRUE"] {
            assert!(must_fail(Some(set)), "CI={set}");
        }
        for unset in [
            None,
            Some(""),
            Some("  "),
            Some("0"),
            Some("false"),
            Some("False"),
        ] {
            assert!(!must_fail(unset), "CI={unset:?}");
        }
    }
}
