//! The fixture the history tests share: runs recorded through the same recording API
//! commands use, with a manual clock so every duration is exact and known.
//!
//! Why a description first and the database second: tests compute what the metrics must
//! be from [`FixtureRun`] (the plain data), never from the store they are checking.
#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use sombrero_core::history::recorder::{Clock as _, ManualClock};
use sombrero_core::history::{NewIssue, RunStart, Store};

/// One run of the fixture: environment, operator, phases (name, ms, succeeded).
#[derive(Debug, Clone)]
pub struct FixtureRun {
    pub environment: &'static str,
    pub operator: &'static str,
    pub phases: Vec<(&'static str, i64, bool)>,
}

/// Milliseconds the clock moves between phases (bookkeeping between steps).
pub const GAP_MS: i64 = 250;
/// 2026-10-01T08:00:00Z.
pub const FIXTURE_START_MS: i64 = 1_790_841_600_000;

impl FixtureRun {
    pub fn succeeded(&self) -> bool {
        self.phases.iter().all(|(_, _, ok)| *ok)
    }

    /// The run's duration as the recorder sees it: a gap before each phase, the phases.
    pub fn duration_ms(&self) -> i64 {
        self.phases
            .iter()
            .map(|(_, ms, _)| GAP_MS + ms)
            .sum::<i64>()
    }
}

/// `count` runs over two environments and two operators; some fail in a phase (with 14:
/// runs 3, 7 and 11). Durations come from a small linear congruential generator: varied,
/// reproducible.
pub fn fixture(count: usize) -> Vec<FixtureRun> {
    let mut seed: u64 = 42;
    let mut next = |low: i64, high: i64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        low + i64::try_from((seed >> 33) % u64::try_from(high - low).unwrap()).unwrap()
    };
    (0..count)
        .map(|index| {
            let clone = next(20_000, 45_000);
            let configure = next(120_000, 200_000);
            let verify = next(40_000, 90_000);
            let phases = match (index % 12, index % 8) {
                (_, 3) if index % 12 != 11 => vec![("clone", clone, false)],
                (_, 7) => vec![("clone", clone, true), ("configure", configure, false)],
                (11, _) => vec![
                    ("clone", clone, true),
                    ("configure", configure, true),
                    ("verify", verify, false),
                ],
                _ => vec![
                    ("clone", clone, true),
                    ("configure", configure, true),
                    ("verify", verify, true),
                ],
            };
            FixtureRun {
                environment: if index % 3 == 0 {
                    "staging"
                } else {
                    "production"
                },
                operator: if index % 2 == 0 { "alice" } else { "bob" },
                phases,
            }
        })
        .collect()
}

/// Records `runs` into `path`, `spacing_ms` apart, and issues on runs 7 and 11.
pub fn record(path: &Path, runs: &[FixtureRun], spacing_ms: i64) -> Vec<String> {
    let store = Store::open(path).unwrap();
    let clock = ManualClock::new(FIXTURE_START_MS);
    let mut ids = Vec::new();
    for (index, fixture) in runs.iter().enumerate() {
        // Each run starts on its slot: with an hour, 08:00, 09:00, ...
        let slot = FIXTURE_START_MS + i64::try_from(index).unwrap() * spacing_ms;
        clock.advance(slot - clock.now_ms());
        let mut start = RunStart::new("deploy", fixture.environment, "0.1.0");
        start.operator = Some(fixture.operator.to_owned());
        start.template_id = Some(8024);
        let run = store.start_run_with_clock(&start, &clock).unwrap();
        let mut result: Result<(), String> = Ok(());
        for (name, ms, ok) in &fixture.phases {
            clock.advance(GAP_MS);
            result = run.phase(name, || {
                clock.advance(*ms);
                if *ok {
                    Ok(())
                } else {
                    Err(format!("{name} failed"))
                }
            });
        }
        run.set_vm_id(7000);
        ids.push(run.id().to_owned());
        run.finish(&result).unwrap();
    }
    let issue = |phase: &str, description: &str| NewIssue {
        phase: phase.to_owned(),
        description: description.to_owned(),
        root_cause: Some("apt lock held by unattended-upgrades".to_owned()),
        time_to_resolve_ms: Some(600_000),
        ..NewIssue::default()
    };
    store
        .add_issue(Some(&ids[7]), &issue("configure", "playbook hung"))
        .unwrap();
    store
        .add_issue(Some(&ids[11]), &issue("verify", "docker not ready"))
        .unwrap();
    store
        .add_issue(Some(&ids[11]), &issue("configure", "slow apt mirror"))
        .unwrap();
    ids
}

/// A temporary working directory with the fixture recorded at the default location.
pub struct Workspace {
    pub directory: tempfile::TempDir,
    pub runs: Vec<FixtureRun>,
    pub ids: Vec<String>,
}

impl Workspace {
    pub fn new() -> Self {
        Self::with(14, 3_600_000)
    }

    pub fn with(count: usize, spacing_ms: i64) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let runs = fixture(count);
        let ids = record(
            &directory.path().join("deployments/sombrero.db"),
            &runs,
            spacing_ms,
        );
        Self {
            directory,
            runs,
            ids,
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.directory.path().join(relative)
    }

    /// `sombrero ARGS` in the workspace, with no configuration from the outside.
    pub fn sombrero(&self, arguments: &[&str]) -> Command {
        let mut command = Command::cargo_bin("sombrero").unwrap();
        command
            .current_dir(self.directory.path())
            .args(arguments)
            .env_remove("SOMBRERO_HISTORY")
            .env_remove("SOMBRERO_CONFIG")
            .env_remove("ENV");
        command
    }

    pub fn json(&self, arguments: &[&str]) -> Value {
        let output = self.sombrero(arguments).arg("--json").assert().success();
        serde_json::from_slice(&output.get_output().stdout).unwrap()
    }
}
