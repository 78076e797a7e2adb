//! Snapshots of a whole run of the binary: success, exit code, stdout and stderr in one
//! text, so a reviewer reads in the test exactly what a user sees (uv's `uv_snapshot!`
//! is the model).
//!
//! Why one text instead of separate `contains` checks: a message that gains a stray line,
//! loses its `hint:`, moves from stderr to stdout or exits 1 instead of 2 fails the
//! snapshot, while scattered checks only see the fragments they name.
//!
//! Why filters: what changes from run to run or machine to machine (the temporary
//! directory, loopback ports, durations, timestamps, run ids, TLS fingerprints, the
//! version) is replaced by a placeholder, so the snapshot holds only what the binary
//! decides. The filters are plain regexes applied here (not insta settings), so the unit
//! tests at the end of this file can check that each one still matches.

use std::path::Path;

use regex::Regex;

use crate::sandbox::Outcome;

/// Ordered text replacements; the first rules see the text before the later ones.
#[derive(Debug)]
pub struct Filters {
    rules: Vec<(Regex, String)>,
}

/// Replacements that hold on every machine; the temporary directory of one run comes
/// first (see [`Filters::for_dir`]).
const GENERIC: &[(&str, &str)] = &[
    // Run ids: `DEP-20261126-124610`, `DEP-20261126-124610-2` (a second run that second).
    (r"\bDEP-\d{8}-\d{6}(?:-\d+)?\b", "DEP-[ID]"),
    // RFC 3339 and `2026-12-04 15:36:17` (optionally fractional, zoned or ` UTC`).
    (
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}| UTC)?",
        "[TIMESTAMP]",
    ),
    // SHA-256 fingerprints as Proxmox prints them: 32 colon-separated hex pairs.
    (
        r"\b[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}\b",
        "[FINGERPRINT]",
    ),
    // Loopback listeners get a new port on every run.
    (r"\b(127\.0\.0\.1|localhost):\d+\b", "$1:[PORT]"),
    (r"\[::1\]:\d+\b", "[::1]:[PORT]"),
    // Durations: `850ms`, `12 ms`, `1.2 s`, `3.4s`, `4m 23s`, `1h 2m 3s`.
    (
        r"\b(?:\d+h ?)?(?:\d+m ?)?\d+(?:\.\d+)? ?(?:ms|µs|us|ns|s)\b",
        "[TIME]",
    ),
];

impl Filters {
    /// The generic filters plus `dir` (as given and canonicalized) as `[TEMP]`.
    pub fn for_dir(dir: &Path) -> Self {
        let mut paths = vec![dir.display().to_string()];
        if let Ok(canonical) = dir.canonicalize() {
            paths.push(canonical.display().to_string());
        }
        // Longest first: `/private/var/...` must not become `/private[TEMP]`.
        paths.sort_by_key(|path| std::cmp::Reverse(path.len()));
        paths.dedup();
        let mut rules: Vec<(Regex, String)> = paths
            .iter()
            .map(|path| {
                (
                    Regex::new(&regex::escape(path)).unwrap(),
                    "[TEMP]".to_owned(),
                )
            })
            .collect();
        rules.extend(Self::generic().rules);
        Self { rules }
    }

    /// The filters that do not depend on one run: any `tempfile` directory under the
    /// system's temporary directory, ids, timestamps, fingerprints, ports, durations and
    /// the version.
    pub fn generic() -> Self {
        let temp = std::env::temp_dir();
        let mut roots = vec![temp.display().to_string()];
        if let Ok(canonical) = temp.canonicalize() {
            roots.push(canonical.display().to_string());
        }
        roots.sort_by_key(|root| std::cmp::Reverse(root.len()));
        roots.dedup();
        let mut rules: Vec<(Regex, String)> = roots
            .iter()
            .map(|root| {
                let root = regex::escape(root.trim_end_matches('/'));
                let pattern = format!(r"{root}/\.tmp[A-Za-z0-9]+");
                (Regex::new(&pattern).unwrap(), "[TEMP]".to_owned())
            })
            .collect();
        rules.extend(
            GENERIC
                .iter()
                .map(|(pattern, to)| (Regex::new(pattern).unwrap(), (*to).to_owned())),
        );
        let version = regex::escape(env!("CARGO_PKG_VERSION"));
        rules.push((
            Regex::new(&format!(r"\bsombrero {version}\b")).unwrap(),
            "sombrero [VERSION]".to_owned(),
        ));
        Self { rules }
    }

    /// Adds a replacement of `pattern` (a regex) by `replacement` after the others.
    pub fn with(mut self, pattern: &str, replacement: &str) -> Self {
        self.rules
            .push((Regex::new(pattern).unwrap(), replacement.to_owned()));
        self
    }

    /// `text` with every rule applied in order.
    pub fn apply(&self, text: &str) -> String {
        self.rules
            .iter()
            .fold(text.to_owned(), |text, (pattern, replacement)| {
                pattern
                    .replace_all(&text, replacement.as_str())
                    .into_owned()
            })
    }
}

/// The snapshot text of one run, filtered.
pub fn render(outcome: &Outcome, filters: &Filters) -> String {
    let code = outcome
        .code
        .map_or_else(|| "none (killed)".to_owned(), |code| code.to_string());
    let text = format!(
        "success: {}\nexit_code: {code}\n----- stdout -----\n{}\n----- stderr -----\n{}",
        outcome.code == Some(0),
        outcome.stdout,
        outcome.stderr,
    );
    filters.apply(&text)
}

/// Runs `sombrero ARGS` in a [`Sandbox`](crate::sandbox::Sandbox) and compares the
/// filtered run with the inline snapshot; returns the [`Outcome`] for further checks.
///
/// ```ignore
/// let outcome = sombrero_snapshot!(sandbox, &["config", "show"], @r"...");
/// let outcome = sombrero_snapshot!(
///     sandbox, &["api", "get", "/version"],
///     filters = [(r"pid \d+", "pid [PID]")],
///     @r"..."
/// );
/// ```
macro_rules! sombrero_snapshot {
    ($sandbox:expr, $args:expr, @$snapshot:literal) => {
        $crate::snapshot::sombrero_snapshot!($sandbox, $args, filters = [], @$snapshot)
    };
    (
        $sandbox:expr,
        $args:expr,
        filters = [$(($pattern:expr, $replacement:expr)),* $(,)?],
        @$snapshot:literal
    ) => {{
        let sandbox: &$crate::sandbox::Sandbox = &$sandbox;
        let outcome = sandbox.run($args);
        let filters = $crate::snapshot::Filters::for_dir(sandbox.path())
            $(.with($pattern, $replacement))*;
        ::insta::assert_snapshot!($crate::snapshot::render(&outcome, &filters), @$snapshot);
        outcome
    }};
}

pub(crate) use sombrero_snapshot;

#[test]
fn every_filter_replaces_what_changes_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let canonical = dir.path().canonicalize().unwrap();
    let other = tempfile::tempdir().unwrap();
    let text = format!(
        "read {}/sombrero.toml and {}/keys/id.pub, wrote {}/x\n\
         listening on https://127.0.0.1:40123/api2/json and localhost:8006, [::1]:9\n\
         clone took 850ms, 12 ms, 1.2 s, 3.4s, 0.01 s, 4m 23s, in 12ms\n\
         at 2026-12-04T15:36:17Z, 2026-12-04T15:36:17.123+01:00, 2026-12-04 15:36:17 UTC\n\
         run DEP-20261126-124610 and DEP-20261126-124610-2\n\
         pin {}\n\
         sombrero {}\n",
        dir.path().display(),
        canonical.display(),
        other.path().display(),
        ["AB"; 32].join(":"),
        env!("CARGO_PKG_VERSION"),
    );
    insta::assert_snapshot!(Filters::for_dir(dir.path()).apply(&text), @r"
    read [TEMP]/sombrero.toml and [TEMP]/keys/id.pub, wrote [TEMP]/x
    listening on https://127.0.0.1:[PORT]/api2/json and localhost:[PORT], [::1]:[PORT]
    clone took [TIME], [TIME], [TIME], [TIME], [TIME], [TIME], in [TIME]
    at [TIMESTAMP], [TIMESTAMP], [TIMESTAMP]
    run DEP-[ID] and DEP-[ID]
    pin [FINGERPRINT]
    sombrero [VERSION]
    ");
}

/// What the binary decides stays: addresses, VM ids, sizes, remote ports, words that
/// start with a unit's letter, and partial fingerprints (a user error worth seeing).
#[test]
fn filters_leave_stable_text_alone() {
    let text = "VM 150 at 192.168.10.250/24 via https://pve.example:8006/api2/json\n\
                disk 32 GiB, memory 2048 MiB, 2 samples, 3 seconds, scsi0, vmbr0\n\
                fingerprint AA:BB:CC is not 32 bytes; date 2026-10-01; DEP-nope\n";
    assert_eq!(Filters::generic().apply(text), text);
}

#[test]
fn render_shows_success_code_and_both_streams() {
    let outcome = Outcome {
        code: Some(2),
        stdout: String::new(),
        stderr: "error: bad\nhint: fix it\n".to_owned(),
    };
    insta::assert_snapshot!(render(&outcome, &Filters::generic()), @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: bad
    hint: fix it
    ");
    let killed = Outcome {
        code: None,
        stdout: "partial\n".to_owned(),
        stderr: String::new(),
    };
    assert!(
        render(&killed, &Filters::generic())
            .starts_with("success: false\nexit_code: none (killed)\n")
    );
}
