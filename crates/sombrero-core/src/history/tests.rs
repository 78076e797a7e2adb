//! Tests of the store and the recording API, including real concurrent processes.
//!
//! Why child processes: "two sombrero processes lose nothing" is a claim about file
//! locking between processes, which threads sharing one address space do not exercise.
//! The test binary re-runs itself (`current_exe`) with an environment variable that turns
//! an ignored test into a writer.

use std::path::Path;
use std::process::Command;

use rusqlite::Connection;

use super::recorder::ManualClock;
use super::*;

const CHILD_DATABASE: &str = "SOMBRERO_TEST_CHILD_DATABASE";
const CHILD_RUNS: &str = "SOMBRERO_TEST_CHILD_RUNS";
const CHILD_GO: &str = "SOMBRERO_TEST_CHILD_GO";

/// Waits until the parent creates the "go" file, so all writers start together.
fn wait_for_go() {
    let Ok(go) = std::env::var(CHILD_GO) else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !Path::new(&go).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the parent never said go"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn start(command: &str) -> RunStart {
    let mut start = RunStart::new(command, "production", "0.1.0-test");
    start.operator = Some("tester".to_owned());
    start
}

fn child(test: &str, database: &Path, runs: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DATABASE, database)
        .env(CHILD_RUNS, runs.to_string())
        .env(CHILD_GO, database.with_extension("go"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Child side of `concurrent_processes_lose_nothing`: records runs as fast as it can.
#[test]
#[ignore = "run by concurrent_processes_lose_nothing in a child process"]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_DATABASE) else {
        return;
    };
    let runs: usize = std::env::var(CHILD_RUNS).unwrap().parse().unwrap();
    let store = Store::open(&path).unwrap();
    wait_for_go();
    for _ in 0..runs {
        let run = store.start_run(&start("deploy")).unwrap();
        for phase in ["clone", "configure", "verify"] {
            run.phase(phase, || Ok::<_, std::io::Error>(())).unwrap();
        }
        assert!(run.take_problems().is_empty());
        run.finish(&Ok::<_, std::io::Error>(())).unwrap();
    }
}

/// Child side of `a_killed_process_leaves_an_interrupted_run`: starts a run and a phase,
/// then exits without running destructors, like a process killed mid-deploy.
#[test]
#[ignore = "run by a_killed_process_leaves_an_interrupted_run in a child process"]
fn child_dies_mid_run() {
    let Ok(path) = std::env::var(CHILD_DATABASE) else {
        return;
    };
    let store = Store::open(&path).unwrap();
    let run = store.start_run(&start("deploy")).unwrap();
    run.phase("clone", || Ok::<_, std::io::Error>(())).unwrap();
    let _guard = run.begin_phase("configure");
    std::process::exit(0);
}

#[test]
fn concurrent_processes_lose_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("deployments").join("sombrero.db");
    let runs_each = 150;
    let mut children: Vec<_> = (0..2)
        .map(|_| child("history::tests::child_writer", &path, runs_each))
        .collect();
    // This process writes too; everyone starts when the "go" file appears.
    let store = Store::open(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(path.with_extension("go"), "").unwrap();
    for _ in 0..runs_each {
        let run = store.start_run(&start("destroy")).unwrap();
        run.phase("destroy", || Ok::<_, std::io::Error>(()))
            .unwrap();
        run.finish(&Ok::<_, std::io::Error>(())).unwrap();
    }
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    let runs = store.runs(None, None).unwrap();
    assert_eq!(runs.len(), 3 * runs_each);
    // The writes really overlapped: in insertion order, this process's runs (`destroy`)
    // and the children's (`deploy`) alternate many times.
    let commands: Vec<String> = store
        .db()
        .query("SELECT command FROM runs ORDER BY seq", &[], |row| {
            row.string(0)
        })
        .unwrap();
    let switches = commands
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .count();
    assert!(
        switches > 10,
        "writers did not overlap ({switches} switches)"
    );
    assert!(runs.iter().all(|run| run.status == RunStatus::Success));
    let mut ids: Vec<&str> = runs.iter().map(|run| run.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3 * runs_each, "run ids must be unique");
    let phases: i64 = store
        .db()
        .query_opt(
            "SELECT count(*) FROM phases WHERE status = 'success'",
            &[],
            |row| row.i64(0),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        phases,
        i64::try_from(2 * runs_each * 3 + runs_each).unwrap()
    );
}

#[test]
fn a_killed_process_leaves_an_interrupted_run() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("sombrero.db");
    let status = child("history::tests::child_dies_mid_run", &path, 1)
        .wait()
        .unwrap();
    assert!(status.success());
    // The child is gone; its run was left `running`. Opening the store repairs it.
    let store = Store::open(&path).unwrap();
    let detail = store.run_detail(None).unwrap();
    assert_eq!(detail.run.status, RunStatus::Interrupted);
    assert!(
        detail
            .run
            .error
            .as_deref()
            .unwrap()
            .contains("stopped before finishing")
    );
    let statuses: Vec<_> = detail
        .phases
        .iter()
        .map(|phase| (phase.name.as_str(), phase.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("clone", RunStatus::Success),
            ("configure", RunStatus::Interrupted)
        ]
    );
}

#[test]
fn a_live_run_of_this_process_is_not_interrupted() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("sombrero.db")).unwrap();
    let run = store.start_run(&start("deploy")).unwrap();
    let again = Store::open(store.path()).unwrap();
    assert_eq!(
        again.run(Some(run.id())).unwrap().status,
        RunStatus::Running
    );
    run.finish(&Ok::<_, std::io::Error>(())).unwrap();
}

#[test]
fn phases_record_real_durations_failures_and_scrubbed_errors() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("sombrero.db")).unwrap();
    let clock = ManualClock::new(1_764_000_000_000);
    let run = store
        .start_run_with_clock(&start("deploy"), &clock)
        .unwrap();
    run.phase("clone", || {
        clock.advance(32_000);
        Ok::<_, String>(())
    })
    .unwrap();
    run.set_vm_id(7000);
    let secret = "0b5c3a9e-1111-2222-3333-444455556666";
    let result = run.phase("configure", || {
        clock.advance(5_000);
        Err::<(), _>(format!("auth failed for root@pam!ci={secret}"))
    });
    let id = run.id().to_owned();
    run.finish(&result).unwrap();

    let detail = store.run_detail(Some(&id)).unwrap();
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.run.duration_ms, Some(37_000));
    assert_eq!(detail.run.vm_id, Some(7000));
    assert_eq!(detail.phases[0].duration_ms, Some(32_000));
    assert_eq!(detail.phases[1].status, RunStatus::Failed);
    let stored = format!("{detail:?}");
    assert!(!stored.contains(secret), "{stored}");
    assert!(detail.run.error.as_deref().unwrap().contains("[redacted]"));
}

#[test]
fn runs_started_in_the_same_second_get_distinct_ids() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("sombrero.db")).unwrap();
    let clock = ManualClock::new(86_400_000);
    let first = store
        .start_run_with_clock(&start("deploy"), &clock)
        .unwrap();
    let second = store
        .start_run_with_clock(&start("deploy"), &clock)
        .unwrap();
    assert_eq!(first.id(), "DEP-19700102-000000");
    assert_eq!(second.id(), "DEP-19700102-000000-2");
}

#[test]
fn dropping_an_unfinished_run_records_a_failure() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("sombrero.db")).unwrap();
    let id = {
        let run = store.start_run(&start("deploy")).unwrap();
        let _phase = run.begin_phase("clone");
        run.id().to_owned()
    };
    let detail = store.run_detail(Some(&id)).unwrap();
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(detail.phases[0].status, RunStatus::Failed);
}

fn assert_refused_untouched(path: &Path, expected: fn(&HistoryError) -> bool) {
    let before = std::fs::read(path).unwrap();
    let error = Store::open(path).unwrap_err();
    assert!(expected(&error), "{error:?}");
    assert!(error.is_bad_input());
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file must not change"
    );
}

#[test]
fn foreign_and_damaged_files_are_refused_untouched() {
    let directory = tempfile::tempdir().unwrap();
    let text = directory.path().join("notes.db");
    std::fs::write(&text, "this is not a database\n".repeat(100)).unwrap();
    assert_refused_untouched(&text, |e| matches!(e, HistoryError::NotADatabase { .. }));

    let foreign = directory.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('x');")
        .unwrap();
    assert_refused_untouched(&foreign, |e| matches!(e, HistoryError::Foreign { .. }));

    let newer = directory.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;")
        .unwrap();
    assert_refused_untouched(&newer, |e| {
        matches!(e, HistoryError::NewerSchema { found: 99, .. })
    });

    let blocked = directory.path().join("a-file");
    std::fs::write(&blocked, "").unwrap();
    let error = Store::open(blocked.join("sombrero.db")).unwrap_err();
    assert!(
        matches!(error, HistoryError::CreateDirectory { .. }),
        "{error:?}"
    );
}

#[test]
fn unknown_runs_are_named() {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("sombrero.db")).unwrap();
    assert!(matches!(store.run(None), Err(HistoryError::NoRuns { .. })));
    let error = store.run(Some("DEP-nope")).unwrap_err();
    assert!(error.to_string().contains("DEP-nope"));
    assert!(error.is_bad_input());
}

#[test]
fn only_the_projects_own_missing_directory_is_created() {
    let project = tempfile::tempdir().expect("project");
    let elsewhere = tempfile::tempdir().expect("elsewhere");
    let default = project.path().join("deployments/sombrero.db");
    Store::open_in_project(&default, project.path()).expect("the default directory is created");
    assert!(default.exists());
    // A mistyped path outside the project creates nothing.
    let outside = elsewhere.path().join("nonexistent/dir/h.db");
    let error = Store::open_in_project(&outside, project.path()).expect_err("refused");
    assert!(
        matches!(&error, HistoryError::MissingDirectory { path } if path.ends_with("nonexistent/dir")),
        "{error:?}"
    );
    assert!(error.is_bad_input() && error.hint().is_some());
    assert!(!elsewhere.path().join("nonexistent").exists());
    // Inside the project, only one missing level is sombrero's to create.
    let deep = project.path().join("a/b/h.db");
    assert!(Store::open_in_project(&deep, project.path()).is_err());
    assert!(!project.path().join("a").exists());
    // An existing directory anywhere is fine.
    Store::open_in_project(elsewhere.path().join("h.db"), project.path()).expect("existing dir");
}

/// The default `deployments/sombrero.db` next to a `./sombrero.toml` is relative to the
/// working directory on both sides: its directory is created.
#[test]
fn a_relative_default_path_in_the_working_directory_is_created() {
    let project = tempfile::tempdir().expect("project");
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "history::tests::relative_child",
            "--ignored",
            "--nocapture",
        ])
        .current_dir(project.path())
        .status()
        .expect("child runs");
    assert!(child.success());
    assert!(project.path().join("deployments/sombrero.db").exists());
}

/// Run by [`a_relative_default_path_in_the_working_directory_is_created`] in its own
/// working directory (a test must not change the working directory of the others).
#[test]
#[ignore = "a child process of another test"]
fn relative_child() {
    Store::open_in_project("deployments/sombrero.db", Path::new("")).expect("created");
}
