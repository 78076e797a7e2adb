//! History commands end to end: runs recorded through the same recording API commands
//! use (with a manual clock, so durations are exact), then `sombrero history`, `metrics`,
//! `checklist`, `issue add` run as real processes against that database.
//!
//! Why expectations are computed here from the fixture description, not from the store:
//! a metrics bug must not be able to agree with itself. The fixture says what happened
//! (phase by phase); this file derives totals, rates, medians and percentiles by sorting,
//! the slow obvious way.

use std::path::PathBuf;

use crate::history_fixture::{FixtureRun, Workspace};
use crate::sandbox::Sandbox;
use crate::snapshot::sombrero_snapshot;

fn sorted(mut values: Vec<i64>) -> Vec<i64> {
    values.sort_unstable();
    values
}

#[test]
fn metrics_json_matches_the_recorded_runs() {
    let workspace = Workspace::new();
    let metrics = workspace.json(&["metrics"]);
    let runs = &workspace.runs;
    let successes: Vec<&FixtureRun> = runs.iter().filter(|run| run.succeeded()).collect();
    assert_eq!(metrics["total_runs"], runs.len());
    assert_eq!(metrics["succeeded"], successes.len());
    assert_eq!(metrics["failed"], runs.len() - successes.len());
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let rate = successes.len() as f64 / runs.len() as f64;
    assert!((metrics["success_rate"].as_f64().unwrap() - rate).abs() < 1e-9);

    let durations = sorted(successes.iter().map(|run| run.duration_ms()).collect());
    let count = i64::try_from(durations.len()).unwrap();
    let middle = durations.len() / 2;
    let median = if durations.len() % 2 == 1 {
        durations[middle]
    } else {
        i64::midpoint(durations[middle - 1], durations[middle])
    };
    let duration = &metrics["duration"];
    assert_eq!(
        duration["average_ms"],
        durations.iter().sum::<i64>() / count
    );
    assert_eq!(duration["median_ms"], median);
    assert_eq!(duration["fastest_ms"], durations[0]);
    assert_eq!(duration["slowest_ms"], *durations.last().unwrap());

    for name in ["clone", "configure", "verify"] {
        let phase = metrics["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|phase| phase["name"] == name)
            .unwrap();
        let all: Vec<(i64, bool)> = runs
            .iter()
            .flat_map(|run| run.phases.iter())
            .filter(|(phase_name, ..)| *phase_name == name)
            .map(|(_, ms, ok)| (*ms, *ok))
            .collect();
        let ok = sorted(
            all.iter()
                .filter(|(_, ok)| *ok)
                .map(|(ms, _)| *ms)
                .collect(),
        );
        let rank = (ok.len() * 95).div_ceil(100);
        assert_eq!(phase["succeeded"], ok.len(), "{name}");
        assert_eq!(phase["failed"], all.len() - ok.len(), "{name}");
        assert_eq!(
            phase["average_ms"],
            ok.iter().sum::<i64>() / i64::try_from(ok.len()).unwrap()
        );
        assert_eq!(phase["p95_ms"], ok[rank - 1], "{name}");
    }
    assert_eq!(metrics["total_issues"], 3);
    assert_eq!(metrics["issues_by_phase"][0]["phase"], "configure");
    assert_eq!(metrics["issues_by_phase"][0]["count"], 2);
    assert_eq!(metrics["trend"].as_array().unwrap().len(), 10);
    assert_eq!(metrics["trend"][9]["id"], workspace.ids[13].as_str());

    let staging = runs
        .iter()
        .filter(|run| run.environment == "staging")
        .count();
    let group = metrics["by_environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["name"] == "staging")
        .unwrap();
    assert_eq!(group["runs"], staging);
    assert_eq!(metrics["by_operator"].as_array().unwrap().len(), 2);
}

#[test]
fn metrics_filters_by_environment_and_time() {
    let workspace = Workspace::new();
    let staging = workspace.json(&["metrics", "--env", "staging"]);
    let expected = workspace
        .runs
        .iter()
        .filter(|run| run.environment == "staging")
        .count();
    assert_eq!(staging["total_runs"], expected);
    assert_eq!(staging["environment"], "staging");
    // Runs are one hour apart from 08:00; since 12:00 leaves the runs from index 4 on.
    let since = workspace.json(&["metrics", "--since", "2026-10-01T12:00:00Z"]);
    assert_eq!(since["total_runs"], workspace.runs.len() - 4);
    workspace
        .sombrero(&["metrics", "--since", "last tuesday"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("last tuesday"));
}

#[test]
fn metrics_text_is_the_runbook_dashboard() {
    let workspace = Workspace::new();
    let output = workspace.sombrero(&["metrics"]).assert().success();
    let text = String::from_utf8(output.get_output().stdout.clone()).unwrap();
    let successes = workspace.runs.iter().filter(|run| run.succeeded()).count();
    for line in [
        "📊 Deployment Analytics Dashboard".to_owned(),
        format!("📈 Total Deployments: {}", workspace.runs.len()),
        format!(
            "✅ Success Rate: 79% ({successes}/{})",
            workspace.runs.len()
        ),
        "🚀 Fastest Deployment: ".to_owned(),
        "🐌 Slowest Deployment: ".to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
}

/// Records, after the fixture's 14 deploy runs, runs of commands that are not deployments:
/// two verify runs (one failing), a configure and a destroy.
fn record_other_commands(workspace: &Workspace) {
    let store =
        sombrero_core::history::Store::open(workspace.path("deployments/sombrero.db")).unwrap();
    for (command, ok) in [
        ("verify", true),
        ("verify", false),
        ("configure", true),
        ("destroy", true),
    ] {
        let run = store
            .start_run(&sombrero_core::history::RunStart::new(
                command,
                "production",
                "0.1.0",
            ))
            .unwrap();
        let result = run.phase(command, || if ok { Ok(()) } else { Err("failed") });
        run.finish(&result).unwrap();
    }
}

#[test]
fn metrics_count_deployments_unless_the_command_says_otherwise() {
    let workspace = Workspace::new();
    record_other_commands(&workspace);
    let deployments = workspace.runs.len();
    let default = workspace.json(&["metrics"]);
    assert_eq!(default["total_runs"], deployments);
    assert_eq!(default["scope"], "runs of up and deploy");
    assert!(
        default["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|phase| phase["name"] != "destroy"),
        "{}",
        default["phases"]
    );
    let verify = workspace.json(&["metrics", "--command", "verify"]);
    assert_eq!(verify["total_runs"], 2);
    assert_eq!(verify["failed"], 1);
    assert_eq!(verify["commands"], serde_json::json!(["verify"]));
    let all = workspace.json(&["metrics", "--command", "all"]);
    assert_eq!(all["total_runs"], deployments + 4);
    assert_eq!(all["commands"], serde_json::Value::Null);

    let text = |arguments: &[&str]| {
        let output = workspace.sombrero(arguments).assert().success();
        String::from_utf8(output.get_output().stdout.clone()).unwrap()
    };
    let dashboard = text(&["metrics", "--env", "production"]);
    assert!(
        dashboard.contains("\n(runs of up and deploy, environment production)\n"),
        "{dashboard}"
    );
    let every = text(&["metrics", "--command", "all"]);
    assert!(every.contains("\n(runs of every command)\n"), "{every}");
    assert!(
        every.contains(&format!("📈 Total Deployments: {}", deployments + 4)),
        "{every}"
    );
}

#[test]
fn history_lists_runs_newest_first() {
    let workspace = Workspace::new();
    let history = workspace.json(&["history", "--limit", "3"]);
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["id"], workspace.ids[13].as_str());
    assert_eq!(runs[0]["duration_ms"], workspace.runs[13].duration_ms());
    assert_eq!(runs[2]["status"], "failed");
    assert_eq!(runs[2]["error"], "verify failed");
    let text = workspace
        .sombrero(&["history", "--env", "staging"])
        .assert()
        .success();
    let text = String::from_utf8(text.get_output().stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1 + 5, "{text}");
    assert!(text.lines().skip(1).all(|line| line.contains("staging")));
}

#[test]
fn reading_commands_do_not_create_a_history() {
    // A directory with no sombrero.toml and no history: the default path is read.
    let sandbox = Sandbox::new();
    std::fs::remove_file(sandbox.path().join("sombrero.toml")).unwrap();
    sombrero_snapshot!(sandbox, &["history"], @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
    No runs recorded yet in deployments/sombrero.db.
    ");
    sombrero_snapshot!(sandbox, &["metrics"], @r"
    success: true
    exit_code: 0
    ----- stdout -----
    📊 Deployment Analytics Dashboard
    ==================================
    (runs of up and deploy)
    📈 Total Deployments: 0
    ✅ Success Rate: n/a (0/0)
    ⏱️ Average Duration: n/a
    ⏱️ Median Duration: n/a
    🚀 Fastest Deployment: n/a
    🐌 Slowest Deployment: n/a

    🐞 Issues Logged: 0

    ----- stderr -----
    ");
    sombrero_snapshot!(sandbox, &["metrics", "--json"], @r#"
    success: true
    exit_code: 0
    ----- stdout -----
    {
      "environment": null,
      "since": null,
      "commands": [
        "up",
        "deploy"
      ],
      "scope": "runs of up and deploy",
      "total_runs": 0,
      "succeeded": 0,
      "failed": 0,
      "interrupted": 0,
      "running": 0,
      "success_rate": null,
      "duration": null,
      "phases": [],
      "total_issues": 0,
      "issues_by_phase": [],
      "trend": [],
      "by_environment": [],
      "by_operator": []
    }

    ----- stderr -----
    "#);
    assert!(!sandbox.path().join("deployments").exists());
}

#[test]
fn checklist_has_real_phase_times_and_never_overwrites() {
    let workspace = Workspace::new();
    let first = workspace
        .sombrero(&["checklist", &workspace.ids[11]])
        .assert()
        .success();
    let first = PathBuf::from(
        String::from_utf8(first.get_output().stdout.clone())
            .unwrap()
            .trim(),
    );
    assert!(
        first.ends_with("deployments/checklists/2026-10-01-19-00-deployment.md"),
        "{}",
        first.display()
    );
    let text = std::fs::read_to_string(workspace.directory.path().join(&first)).unwrap();
    let run = &workspace.runs[11];
    assert!(text.contains(&format!("- **Deployment ID**: {}", workspace.ids[11])));
    assert!(
        text.contains("- **Start Time**: 2026-10-01 19:00:00 UTC"),
        "{text}"
    );
    for (name, ms, _) in &run.phases {
        let seconds = ms / 1000;
        let expected = if seconds >= 60 {
            format!("{}m {}s", seconds / 60, seconds % 60)
        } else {
            format!("{seconds}s")
        };
        let section = text.split(&format!("] {name}\n")).nth(1).unwrap();
        assert!(
            section.starts_with("- **Start**: 2026-10-01 19:"),
            "{name}: {section}"
        );
        assert!(
            section.contains(&format!("- **Duration**: {expected}\n")),
            "{name} {expected}\n{text}"
        );
    }
    assert!(text.contains("### Issue 1: docker not ready"));
    assert!(text.contains("- **Issues Encountered**: 2"));
    assert!(text.contains("### Process Metrics 📊"));

    let again = workspace
        .sombrero(&["checklist", &workspace.ids[11]])
        .assert()
        .success();
    let again = String::from_utf8(again.get_output().stdout.clone()).unwrap();
    assert!(
        again.trim().ends_with("2026-10-01-19-00-deployment-2.md"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.directory.path().join(&first)).unwrap(),
        text
    );
}

#[test]
fn issue_add_attaches_to_the_latest_run_and_needs_its_fields() {
    let workspace = Workspace::new();
    let added = workspace.json(&[
        "issue",
        "add",
        "--phase",
        "verify",
        "--description",
        "ssh refused",
        "--time-to-resolve",
        "1h30m",
        "--root-cause",
        "token root@pam!ci=0b5c3a9e-aaaa-bbbb",
    ]);
    assert_eq!(added["run"], workspace.ids[13].as_str());
    assert_eq!(added["time_to_resolve_ms"], 5_400_000);
    assert!(
        !added.to_string().contains("0b5c3a9e"),
        "secrets are scrubbed: {added}"
    );
    assert_eq!(workspace.json(&["metrics"])["total_issues"], 4);

    workspace
        .sombrero(&["issue", "add", "--phase", "verify"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--description"));
    workspace
        .sombrero(&[
            "issue",
            "add",
            "--run",
            "DEP-19990101-000000",
            "--phase",
            "x",
            "--description",
            "y",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no run DEP-19990101-000000"));
}

#[test]
fn a_damaged_history_is_refused_untouched() {
    let workspace = Workspace::new();
    let path = workspace.path("deployments/sombrero.db");
    std::fs::remove_file(&path).unwrap();
    let _ = std::fs::remove_file(workspace.path("deployments/sombrero.db-wal"));
    let _ = std::fs::remove_file(workspace.path("deployments/sombrero.db-shm"));
    std::fs::write(&path, "deployments: 3\nnot sqlite\n").unwrap();
    for command in [
        &["history"][..],
        &["metrics"],
        &["checklist"],
        &["issue", "add", "--phase", "a", "--description", "b"],
    ] {
        workspace
            .sombrero(command)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(
                "deployments/sombrero.db is not a sombrero history database",
            ))
            .stderr(predicates::str::contains("hint:"));
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "deployments: 3\nnot sqlite\n"
    );
}

#[test]
fn issue_add_prompts_for_missing_fields_on_a_terminal() {
    // `script` (util-linux) runs the command on a pseudo-terminal fed from our stdin.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        pve_lab::testing::skip(
            "issue_add_prompts_for_missing_fields_on_a_terminal",
            "`script` (util-linux) is not installed; no pseudo-terminal",
        );
        return;
    }
    let workspace = Workspace::new();
    let sombrero = assert_cmd::cargo::cargo_bin("sombrero");
    let command_line = format!("{} issue add --phase verify", sombrero.display());
    let output = std::process::Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .current_dir(workspace.directory.path())
        .env_remove("SOMBRERO_HISTORY")
        .env_remove("SOMBRERO_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"ssh refused on first boot\nport 22 closed\n\n\n45m\n\n\n")?;
            drop(stdin);
            child.wait_with_output()
        })
        .unwrap();
    let transcript = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{transcript}");
    assert!(
        transcript.contains("Description: "),
        "it asked: {transcript}"
    );
    assert!(
        !transcript.contains("Phase"),
        "a given field is not asked: {transcript}"
    );
    let store =
        sombrero_core::history::Store::open(workspace.path("deployments/sombrero.db")).unwrap();
    let detail = store.run_detail(None).unwrap();
    let issue = &detail.issues.last().unwrap().issue;
    assert_eq!(issue.description, "ssh refused on first boot");
    assert_eq!(issue.symptoms.as_deref(), Some("port 22 closed"));
    assert_eq!(issue.root_cause, None);
    assert_eq!(issue.time_to_resolve_ms, Some(45 * 60_000));
}
