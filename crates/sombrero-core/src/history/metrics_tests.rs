//! Which runs the metrics count (decision 096): by default the pipeline's (`up`, and
//! `deploy` on its own), with `--command NAME` one command's, with `--command all` every
//! command's. The expected values are worked out by hand from [`RUNS`], never read back
//! from the store under test.

use super::metrics::{CommandScope, MetricsFilter, PIPELINE_COMMANDS};
use super::recorder::ManualClock;
use super::{NewIssue, RunStart, Store};

/// (command, environment, phases as (name, ms, succeeded)), one hour apart.
type FixtureRun = (
    &'static str,
    &'static str,
    &'static [(&'static str, i64, bool)],
);

const RUNS: &[FixtureRun] = &[
    (
        "up",
        "production",
        &[
            ("build", 300_000, true),
            ("deploy", 40_000, true),
            ("configure", 150_000, true),
            ("verify", 60_000, true),
        ],
    ),
    (
        "deploy",
        "staging",
        &[("clone", 30_000, true), ("start", 15_000, true)],
    ),
    ("deploy", "production", &[("clone", 20_000, false)]),
    ("configure", "production", &[("configure", 120_000, true)]),
    ("verify", "production", &[("verify", 5_000, false)]),
    ("destroy", "staging", &[("destroy", 8_000, true)]),
];

/// The store with [`RUNS`] recorded, an issue on the failed deploy (phase clone) and one
/// on the failed verify (phase verify); the runs' ids in order.
fn recorded() -> (tempfile::TempDir, Store, Vec<String>) {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("sombrero.db")).unwrap();
    let clock = ManualClock::new(1_790_841_600_000);
    let mut ids = Vec::new();
    for (command, environment, phases) in RUNS {
        clock.advance(3_600_000);
        let mut start = RunStart::new(command, environment, "0.1.0-test");
        start.operator = Some("tester".to_owned());
        let run = store.start_run_with_clock(&start, &clock).unwrap();
        let mut result = Ok(());
        for (name, ms, ok) in *phases {
            result = run.phase(name, || {
                clock.advance(*ms);
                if *ok {
                    Ok(())
                } else {
                    Err(format!("{name} failed"))
                }
            });
        }
        ids.push(run.id().to_owned());
        run.finish(&result).unwrap();
    }
    for (run, phase) in [(2, "clone"), (4, "verify")] {
        let issue = NewIssue {
            phase: phase.to_owned(),
            description: format!("trouble in {phase}"),
            ..NewIssue::default()
        };
        store.add_issue(Some(&ids[run]), &issue).unwrap();
    }
    (directory, store, ids)
}

fn filter(commands: CommandScope) -> MetricsFilter {
    MetricsFilter {
        commands,
        ..MetricsFilter::default()
    }
}

/// (name, succeeded, failed, average) of each phase, in the metrics' order.
fn phases(metrics: &super::Metrics) -> Vec<(&str, u64, u64, Option<i64>)> {
    metrics
        .phases
        .iter()
        .map(|phase| {
            (
                phase.name.as_str(),
                phase.succeeded,
                phase.failed,
                phase.average_ms,
            )
        })
        .collect()
}

#[test]
fn the_flag_selects_the_scope() {
    assert_eq!(CommandScope::from_flag(None), CommandScope::Pipeline);
    assert_eq!(CommandScope::from_flag(Some("all")), CommandScope::All);
    assert_eq!(
        CommandScope::from_flag(Some("verify")),
        CommandScope::Only("verify".to_owned())
    );
    assert_eq!(MetricsFilter::default().commands, CommandScope::Pipeline);
    assert_eq!(PIPELINE_COMMANDS, ["up", "deploy"]);
}

#[test]
fn the_default_counts_runs_of_up_and_deploy_only() {
    let (_directory, store, ids) = recorded();
    let metrics = store.metrics(&MetricsFilter::default()).unwrap();
    assert_eq!(metrics.scope, "runs of up and deploy");
    assert_eq!(
        metrics.commands,
        Some(vec!["up".to_owned(), "deploy".to_owned()])
    );
    // up (550 s), deploy staging (45 s), deploy production (failed); not configure,
    // verify or destroy.
    assert_eq!(metrics.total_runs, 3);
    assert_eq!((metrics.succeeded, metrics.failed), (2, 1));
    assert_eq!(metrics.success_rate, Some(2.0 / 3.0));
    let duration = metrics.duration.as_ref().unwrap();
    assert_eq!(duration.fastest_ms, 45_000);
    assert_eq!(duration.fastest_run, ids[1]);
    assert_eq!(duration.slowest_ms, 550_000);
    assert_eq!(duration.slowest_run, ids[0]);
    assert_eq!(duration.average_ms, 297_500);
    assert_eq!(duration.median_ms, 297_500);
    // The standalone configure (120 s) and the failed standalone verify are not counted.
    assert_eq!(
        phases(&metrics),
        [
            ("build", 1, 0, Some(300_000)),
            ("deploy", 1, 0, Some(40_000)),
            ("configure", 1, 0, Some(150_000)),
            ("verify", 1, 0, Some(60_000)),
            ("clone", 1, 1, Some(30_000)),
            ("start", 1, 0, Some(15_000)),
        ]
    );
    assert_eq!(
        metrics.total_issues, 1,
        "the verify run's issue is not counted"
    );
    assert_eq!(metrics.issues_by_phase[0].phase, "clone");
    let trend: Vec<&str> = metrics
        .trend
        .iter()
        .map(|point| point.id.as_str())
        .collect();
    assert_eq!(trend, [&ids[0], &ids[1], &ids[2]]);
    let environments: Vec<(&str, u64)> = metrics
        .by_environment
        .iter()
        .map(|group| (group.name.as_str(), group.runs))
        .collect();
    assert_eq!(environments, [("production", 2), ("staging", 1)]);
}

#[test]
fn a_command_selects_only_its_runs() {
    let (_directory, store, ids) = recorded();
    let verify = store
        .metrics(&filter(CommandScope::Only("verify".to_owned())))
        .unwrap();
    assert_eq!(verify.scope, "runs of verify");
    assert_eq!(verify.commands, Some(vec!["verify".to_owned()]));
    assert_eq!((verify.total_runs, verify.failed), (1, 1));
    assert_eq!(verify.success_rate, Some(0.0));
    assert!(verify.duration.is_none(), "no successful verify run");
    assert_eq!(phases(&verify), [("verify", 0, 1, None)]);
    assert_eq!(verify.total_issues, 1);
    assert_eq!(verify.trend[0].id, ids[4]);

    let up = store
        .metrics(&filter(CommandScope::Only("up".to_owned())))
        .unwrap();
    assert_eq!((up.total_runs, up.succeeded), (1, 1));
    assert_eq!(up.duration.unwrap().slowest_run, ids[0]);

    let deploy = store
        .metrics(&filter(CommandScope::Only("deploy".to_owned())))
        .unwrap();
    assert_eq!(
        phases(&deploy),
        [("clone", 1, 1, Some(30_000)), ("start", 1, 0, Some(15_000))]
    );
}

#[test]
fn all_counts_every_recorded_command() {
    let (_directory, store, _ids) = recorded();
    let all = store.metrics(&filter(CommandScope::All)).unwrap();
    assert_eq!(all.scope, "runs of every command");
    assert_eq!(all.commands, None);
    assert_eq!(all.total_runs, 6);
    assert_eq!((all.succeeded, all.failed), (4, 2));
    assert_eq!(
        all.duration.as_ref().unwrap().fastest_ms,
        8_000,
        "the destroy run"
    );
    assert_eq!(
        phases(&all),
        [
            ("build", 1, 0, Some(300_000)),
            ("deploy", 1, 0, Some(40_000)),
            ("configure", 2, 0, Some(135_000)),
            ("verify", 1, 1, Some(60_000)),
            ("clone", 1, 1, Some(30_000)),
            ("start", 1, 0, Some(15_000)),
            ("destroy", 1, 0, Some(8_000)),
        ]
    );
    assert_eq!(all.total_issues, 2);
}

#[test]
fn the_scope_combines_with_the_environment() {
    let (_directory, store, ids) = recorded();
    let staging = |commands| MetricsFilter {
        environment: Some("staging".to_owned()),
        ..filter(commands)
    };
    let pipeline = store.metrics(&staging(CommandScope::Pipeline)).unwrap();
    assert_eq!(pipeline.total_runs, 1);
    assert_eq!(pipeline.trend[0].id, ids[1]);
    assert_eq!(
        phases(&pipeline),
        [("clone", 1, 0, Some(30_000)), ("start", 1, 0, Some(15_000))]
    );
    let all = store.metrics(&staging(CommandScope::All)).unwrap();
    assert_eq!(all.total_runs, 2);
    assert_eq!(
        phases(&all),
        [
            ("clone", 1, 0, Some(30_000)),
            ("start", 1, 0, Some(15_000)),
            ("destroy", 1, 0, Some(8_000)),
        ]
    );
}
