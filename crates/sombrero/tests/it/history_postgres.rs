//! The history on `PostgreSQL` (issue 16, item 4): the fixture recorded into a local
//! `SQLite` history is imported into a real `PostgreSQL` database, and every reading
//! command must then answer exactly as it answers from the file. Importing twice
//! imports once. A password in the URL shows up nowhere: not in output, errors, `config
//! show`, nor in any row of the database.

use serde_json::Value;

use crate::history_fixture::Workspace;
use crate::postgres::{execute, fresh_database, query, server, with_database};
use crate::sandbox::Sandbox;

const PASSWORD: &str = "Pa55-s3cret-do-not-show";

/// `sombrero ARGS --json` in the workspace against `history` (a file or a URL).
fn json_from(workspace: &Workspace, history: Option<&str>, arguments: &[&str]) -> Value {
    let mut command = workspace.sombrero(arguments);
    if let Some(history) = history {
        command.env("SOMBRERO_HISTORY", history);
    }
    let output = command.arg("--json").assert().success();
    serde_json::from_slice(&output.get_output().stdout).unwrap()
}

fn import(workspace: &Workspace, url: &str) -> Value {
    let file = workspace.path("deployments/sombrero.db");
    json_from(
        workspace,
        Some(url),
        &["history", "import", &file.display().to_string()],
    )
}

#[test]
fn every_reading_command_answers_on_postgres_as_on_sqlite() {
    let Some(server) = server("every_reading_command_answers_on_postgres_as_on_sqlite") else {
        return;
    };
    let url = fresh_database(&server, "reading");
    let workspace = Workspace::new();
    import(&workspace, &url);
    let on = |history: Option<&str>, arguments: &[&str]| {
        let mut value = json_from(&workspace, history, arguments);
        value
            .as_object_mut()
            .map(|object| object.remove("database"));
        value
    };
    for arguments in [
        &["history", "--limit", "50"][..],
        &["history", "--env", "staging"],
        &["metrics"],
        &["metrics", "--command", "all"],
        &[
            "metrics",
            "--env",
            "production",
            "--since",
            "2026-10-01T12:00:00Z",
        ],
    ] {
        let file = on(None, arguments);
        assert_eq!(on(Some(&url), arguments), file, "{arguments:?}");
        assert!(file.to_string().contains(&workspace.ids[11]) || arguments.len() > 1);
    }
    // The checklist of a run with issues, from either store, is the same document.
    let checklist = |history: Option<&str>, directory: &str| {
        let mut command =
            workspace.sombrero(&["checklist", &workspace.ids[11], "--dir", directory]);
        if let Some(history) = history {
            command.env("SOMBRERO_HISTORY", history);
        }
        let output = command.assert().success();
        let path = String::from_utf8(output.get_output().stdout.clone()).unwrap();
        std::fs::read_to_string(workspace.path(path.trim())).unwrap()
    };
    let from_file = checklist(None, "from-file");
    assert!(from_file.contains("slow apt mirror"), "{from_file}");
    assert_eq!(checklist(Some(&url), "from-postgres"), from_file);
    // The report renders from PostgreSQL too.
    let mut report = workspace.sombrero(&["report", "--html", "report.html"]);
    report.env("SOMBRERO_HISTORY", &url).assert().success();
    let html = std::fs::read_to_string(workspace.path("report.html")).unwrap();
    assert!(
        html.contains(&workspace.ids[13]),
        "the report charts the runs"
    );
    // issue add writes to PostgreSQL and the reading commands see it.
    workspace
        .sombrero(&[
            "issue",
            "add",
            "--phase",
            "verify",
            "--description",
            "flaky smoke test",
        ])
        .env("SOMBRERO_HISTORY", &url)
        .assert()
        .success();
    let metrics = on(Some(&url), &["metrics"]);
    assert_eq!(metrics["total_issues"], 4, "{metrics}");
}

/// `metrics` reads the phases on a second session while its first reads the runs; an
/// operator whose role may hold one connection (`CONNECTION LIMIT 1`) must get the same
/// answer, read on the one session.
#[test]
fn metrics_on_a_role_limited_to_one_connection_read_on_one_session() {
    let Some(server) = server("metrics_on_a_role_limited_to_one_connection_read_on_one_session")
    else {
        return;
    };
    execute(
        &server,
        "DO $$ BEGIN CREATE ROLE sombrero_one_session LOGIN CONNECTION LIMIT 1; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let limit = query(
        &server,
        "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'sombrero_one_session'",
    );
    assert_eq!(limit, [[Some("1".to_owned())]]);
    let database = format!("one_session_{}", std::process::id());
    execute(
        &server,
        &format!("CREATE DATABASE {database} OWNER sombrero_one_session"),
    );
    let url = with_database(&server, &database).replacen(
        "postgres://postgres@",
        "postgres://sombrero_one_session@",
        1,
    );
    assert!(url.contains("sombrero_one_session@"), "{url}");
    let workspace = Workspace::new();
    import(&workspace, &url);
    for arguments in [&["metrics"][..], &["metrics", "--command", "all"]] {
        let mut from_file = json_from(&workspace, None, arguments);
        let mut from_postgres = json_from(&workspace, Some(&url), arguments);
        for value in [&mut from_file, &mut from_postgres] {
            value
                .as_object_mut()
                .map(|object| object.remove("database"));
        }
        assert!(
            from_file["phases"]
                .as_array()
                .is_some_and(|phases| phases.len() > 1),
            "{from_file}"
        );
        assert_eq!(from_postgres, from_file, "{arguments:?}");
    }
}

#[test]
fn history_import_twice_imports_once() {
    let Some(server) = server("history_import_twice_imports_once") else {
        return;
    };
    let url = fresh_database(&server, "import");
    let workspace = Workspace::new();
    let first = import(&workspace, &url);
    assert_eq!(first["runs_found"], 14, "{first}");
    assert_eq!(first["imported"], 14, "{first}");
    let phases = first["phases_imported"].as_u64().unwrap();
    let recorded: usize = workspace.runs.iter().map(|run| run.phases.len()).sum();
    assert_eq!(phases, recorded as u64, "{first}");
    assert_eq!(first["issues_imported"], 3, "{first}");
    let second = import(&workspace, &url);
    assert_eq!(second["imported"], 0, "{second}");
    assert_eq!(second["already_present"], 14, "{second}");
    let count = |table: &str| query(&url, &format!("SELECT count(*) FROM {table}"))[0][0].clone();
    assert_eq!(count("runs").as_deref(), Some("14"));
    assert_eq!(count("phases"), Some(phases.to_string()));
    assert_eq!(count("issues").as_deref(), Some("3"));
    // The schema is versioned like the file's, and reading it again migrates nothing.
    let schema = query(&url, "SELECT application_id, version FROM sombrero_schema");
    assert_eq!(
        schema,
        vec![vec![Some("1397706050".to_owned()), Some("1".to_owned())]]
    );
}

#[test]
fn a_database_of_another_program_is_refused_untouched() {
    let Some(server) = server("a_database_of_another_program_is_refused_untouched") else {
        return;
    };
    let url = fresh_database(&server, "foreign");
    crate::postgres::execute(
        &url,
        "CREATE TABLE runs (name text); INSERT INTO runs VALUES ('x')",
    );
    let workspace = Workspace::new();
    let outcome = workspace
        .sombrero(&["history"])
        .env("SOMBRERO_HISTORY", &url)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&outcome.get_output().stderr).into_owned();
    assert!(
        stderr.contains("has tables of another program (runs)"),
        "{stderr}"
    );
    assert_eq!(
        query(&url, "SELECT name FROM runs"),
        vec![vec![Some("x".to_owned())]]
    );
    assert!(query(&url, "SELECT to_regclass('phases')::text")[0][0].is_none());
}

#[test]
fn a_password_in_the_url_shows_up_nowhere() {
    let Some(server) = server("a_password_in_the_url_shows_up_nowhere") else {
        return;
    };
    let url = fresh_database(&server, "password");
    // The test cluster trusts local logins, so any password is accepted, and carried.
    let with_password = url.replacen("postgres@", &format!("postgres:{PASSWORD}@"), 1);
    assert!(with_password.contains(PASSWORD));
    let workspace = Workspace::new();
    let mut outputs = Vec::new();
    let mut run = |arguments: &[&str], history: &str| {
        let output = workspace
            .sombrero(arguments)
            .env("SOMBRERO_HISTORY", history)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push((arguments.join(" "), text));
        output.status.code()
    };
    let file = workspace
        .path("deployments/sombrero.db")
        .display()
        .to_string();
    assert_eq!(run(&["history", "import", &file], &with_password), Some(0));
    assert_eq!(run(&["history", "--json"], &with_password), Some(0));
    assert_eq!(run(&["history"], &with_password), Some(0));
    assert_eq!(run(&["metrics", "--json"], &with_password), Some(0));
    // Errors: a server that is not there, and a URL that does not parse.
    let nowhere = format!("postgres://postgres:{PASSWORD}@127.0.0.1:9/history");
    assert_eq!(run(&["history"], &nowhere), Some(1));
    let broken = format!("postgres://postgres:{PASSWORD}@127.0.0.1:notaport/history");
    assert_eq!(run(&["history"], &broken), Some(2));
    for (command, text) in &outputs {
        assert!(
            !text.contains(PASSWORD),
            "sombrero {command} showed the password:\n{text}"
        );
    }
    assert!(
        outputs[1].1.contains("postgres://postgres@127.0.0.1"),
        "{}",
        outputs[1].1
    );
    assert!(outputs[4].1.contains("127.0.0.1:9"), "{}", outputs[4].1);
    assert!(
        outputs[5].1.contains("SOMBRERO_HISTORY"),
        "{}",
        outputs[5].1
    );

    // `config show` (text and JSON) of a project whose history is the URL.
    let sandbox = Sandbox::new().env("SOMBRERO_HISTORY", &with_password);
    for arguments in [&["config", "show"][..], &["config", "show", "--json"]] {
        let outcome = sandbox.run(arguments).expect_code(0);
        let text = format!("{}{}", outcome.stdout, outcome.stderr);
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(text.contains("postgres://postgres@127.0.0.1"), "{text}");
    }
    let broken = Sandbox::new().env("SOMBRERO_HISTORY", &broken);
    let outcome = broken.run(&["config", "show"]).expect_code(2);
    assert!(!outcome.stderr.contains(PASSWORD), "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("environment variable SOMBRERO_HISTORY"),
        "{}",
        outcome.stderr
    );

    // Nothing stored carries it either.
    for table in ["runs", "phases", "issues", "sombrero_schema"] {
        let rows = query(&url, &format!("SELECT t::text FROM {table} t"));
        assert!(!rows.is_empty() || table != "runs");
        assert!(!format!("{rows:?}").contains(PASSWORD), "{table}");
    }
}
