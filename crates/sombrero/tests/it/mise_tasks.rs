//! The runbook's mise tasks (`mise.toml` at the repository root) and its
//! `.mise.local.toml.example`: every task the runbook names is there, runs the sombrero
//! command it stands for, and that command really exists (its `--help` answers, so a
//! misspelt subcommand or flag fails here); real mise lists the tasks offline and runs
//! them with `ENV` and `TEMPLATE_ID` passed on; every key of the example is one sombrero
//! reads, and does read from `.mise.local.toml`.
//!
//! Why run mise itself when it is installed: what the file means is mise's business (which
//! words it adds to which command, whether a `depends_post` task runs after a failure), and
//! the tasks depend on those answers. A stub `sombrero` on PATH records what mise ran, so
//! nothing is deployed and nothing leaves the machine (`MISE_OFFLINE`). Without mise the
//! test says so and passes; with `CI` set it fails, since `.ci/run` installs mise.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sombrero_core::settings::env_vars;

use crate::sandbox::{SSH_KEY, Sandbox};

/// The repository root: where `mise.toml` and the example live.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Every task the runbook names, with the sombrero command lines it must run, in order.
const RUNBOOK_TASKS: &[(&str, &[&str])] = &[
    ("deploy-full", &["up"]),
    ("deploy-packer", &["build"]),
    ("deploy-terraform", &["deploy"]),
    ("deploy-ansible", &["configure"]),
    ("prod-init", &["doctor --env production"]),
    ("prod-validate", &["validate --env production"]),
    ("prod-plan", &["plan --env production"]),
    ("prod-apply", &["deploy --env production"]),
    ("smoke-test", &["verify"]),
    ("smoke-test-quick", &["verify --quick"]),
    ("smoke-test-docker", &["verify --docker"]),
    ("deployment-start", &["checklist"]),
    ("deploy-full-tracked", &["up"]),
    ("deployment-metrics", &["metrics"]),
    ("deployment-verify", &["outputs", "status"]),
];

/// The placeholder SSH key of the runbook's example, which sombrero must refuse.
const PLACEHOLDER_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI-example-key ansible@jump-man";

fn mise_file() -> toml::Table {
    let text = std::fs::read_to_string(repository().join("mise.toml")).unwrap();
    text.parse().unwrap()
}

fn task<'table>(file: &'table toml::Table, name: &str) -> &'table toml::Table {
    file["tasks"]
        .get(name)
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| panic!("mise.toml has no task {name}"))
}

/// A task's `run` lines (a string or an array of strings).
fn run_lines(task: &toml::Table) -> Vec<String> {
    match &task["run"] {
        toml::Value::String(line) => vec![line.clone()],
        toml::Value::Array(lines) => lines
            .iter()
            .map(|line| line.as_str().unwrap().to_owned())
            .collect(),
        other => panic!("run is neither a string nor an array: {other}"),
    }
}

#[test]
fn every_runbook_task_runs_the_sombrero_command_it_stands_for() {
    let file = mise_file();
    assert!(
        !file.contains_key("env"),
        "no [env] table: mise's [env] beats the caller's ENV, so ENV=staging would be ignored"
    );
    for (name, expected) in RUNBOOK_TASKS {
        let task = task(&file, name);
        let description = task.get("description").and_then(toml::Value::as_str);
        assert!(
            description.is_some_and(|text| !text.trim().is_empty()),
            "{name} has no description"
        );
        let expected: Vec<String> = expected
            .iter()
            .map(|command| format!("sombrero {command}"))
            .collect();
        assert_eq!(run_lines(task), expected, "task {name}");
    }
    assert_eq!(
        task(&file, "deploy-full-tracked")["depends_post"],
        toml::Value::Array(vec!["deployment-start".into()]),
        "the tracked deployment writes its checklist afterwards"
    );
    let names: BTreeSet<&str> = file["tasks"]
        .as_table()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let runbook: BTreeSet<&str> = RUNBOOK_TASKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, runbook, "exactly the runbook's tasks");
}

#[test]
fn every_task_command_exists_in_the_binary() {
    let file = mise_file();
    let sandbox = Sandbox::new();
    let mut refused = Vec::new();
    for (name, _) in RUNBOOK_TASKS {
        for line in run_lines(task(&file, name)) {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "sombrero", "{name}: {line}");
            // Plain words only: the `--help` check below must see the whole command.
            assert!(
                !line.contains([';', '&', '|', '$', '`', '<', '>', '"', '\'']),
                "{name}: {line}"
            );
            let mut arguments = words[1..].to_vec();
            arguments.push("--help");
            let outcome = sandbox.run(&arguments);
            if outcome.code != Some(0) {
                refused.push(format!(
                    "{name}: `{line} --help`: {}",
                    outcome.stderr.trim()
                ));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "commands sombrero does not have:\n{}",
        refused.join("\n")
    );
}

/// `mise` on PATH, if installed.
fn mise() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join("mise"))
        .find(|candidate| candidate.is_file())
}

/// mise in the repository with a fresh home, offline, trusting only the repository's
/// file, and with a stub `sombrero` first on PATH that logs what it was run with.
fn mise_command(mise: &Path, home: &Path, log: &Path) -> Command {
    let stub_directory = home.join("bin");
    if !stub_directory.exists() {
        std::fs::create_dir_all(&stub_directory).unwrap();
        let stub = stub_directory.join("sombrero");
        std::fs::write(
            &stub,
            "#!/bin/sh\n\
             echo \"ENV=${ENV:-} TEMPLATE_ID=${TEMPLATE_ID:-} $*\" >>\"$STUB_LOG\"\n\
             [ \"$1\" = up ] && exit \"${STUB_UP_EXIT:-0}\"\n\
             exit 0\n",
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let path = std::env::join_paths(
        std::iter::once(stub_directory)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut command = Command::new(mise);
    command
        .current_dir(repository())
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("MISE_OFFLINE", "1")
        .env("MISE_TRUSTED_CONFIG_PATHS", repository())
        .env("MISE_YES", "1")
        .env("STUB_LOG", log)
        .stdin(std::process::Stdio::null());
    command
}

/// Runs `mise ARGS` and returns (exit code, the stub's log since the last call).
fn mise_run(command: &mut Command, log: &Path) -> (Option<i32>, Vec<String>) {
    let _ = std::fs::remove_file(log);
    let output = command.output().unwrap();
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        output.status.code().is_some(),
        "mise was killed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        output.status.code(),
        logged.lines().map(ToOwned::to_owned).collect(),
    )
}

#[test]
fn mise_lists_and_runs_the_tasks_offline() {
    let test = "mise_tasks::mise_lists_and_runs_the_tasks_offline";
    let Some(mise) = mise() else {
        pve_lab::testing::skip(
            test,
            "mise is not on PATH (.ci/run installs it: npm install -g @jdxcode/mise-linux-x64)",
        );
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("sombrero.log");
    let command = || mise_command(&mise, home.path(), &log);

    let listed = command().args(["tasks", "ls", "--json"]).output().unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let file = mise_file();
    for (name, _) in RUNBOOK_TASKS {
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["name"] == *name)
            .unwrap_or_else(|| panic!("mise does not list {name}: {listed}"));
        assert_eq!(
            entry["run"],
            serde_json::json!(run_lines(task(&file, name))),
            "{name}"
        );
    }

    // ENV and TEMPLATE_ID reach sombrero; words after the task name are added to it.
    let (code, logged) = mise_run(
        command()
            .args(["run", "deploy-full"])
            .env("ENV", "staging")
            .env("TEMPLATE_ID", "1001"),
        &log,
    );
    assert_eq!(code, Some(0));
    assert_eq!(logged, ["ENV=staging TEMPLATE_ID=1001 up"]);
    let (_, logged) = mise_run(command().args(["run", "smoke-test-quick", "--json"]), &log);
    assert_eq!(logged, ["ENV= TEMPLATE_ID= verify --quick --json"]);
    // prod-* act on production whatever ENV says (the flag beats the variable).
    let (_, logged) = mise_run(
        command().args(["run", "prod-plan"]).env("ENV", "staging"),
        &log,
    );
    assert_eq!(logged, ["ENV=staging TEMPLATE_ID= plan --env production"]);

    // The tracked deployment writes the checklist after up, even when up failed, and
    // still fails.
    let (code, logged) = mise_run(
        command()
            .args(["run", "deploy-full-tracked"])
            .env("STUB_UP_EXIT", "1"),
        &log,
    );
    assert_ne!(code, Some(0), "up failed, so the task fails");
    assert_eq!(
        logged,
        ["ENV= TEMPLATE_ID= up", "ENV= TEMPLATE_ID= checklist"]
    );
    let (_, logged) = mise_run(command().args(["run", "deployment-verify"]), &log);
    assert_eq!(
        logged,
        ["ENV= TEMPLATE_ID= outputs", "ENV= TEMPLATE_ID= status"]
    );
}

/// Every `source` string anywhere in a `config show --json` document.
fn sources(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(source)) = map.get("source") {
                found.insert(source.clone());
            }
            map.values().for_each(|child| sources(child, found));
        }
        Value::Array(items) => items.iter().for_each(|child| sources(child, found)),
        _ => {}
    }
}

#[test]
fn the_example_holds_only_variables_sombrero_reads_from_the_file() {
    let root = repository();
    let example = std::fs::read_to_string(root.join(".mise.local.toml.example")).unwrap();
    let table: toml::Table = example.parse().unwrap();
    let active: BTreeSet<String> = table["env"].as_table().unwrap().keys().cloned().collect();
    // The alternatives shown commented out (`# NAME = value`) must be real names too.
    let commented: BTreeSet<String> = example
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter_map(|line| line.split_once(" = "))
        .map(|(name, _)| name.trim().to_owned())
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    assert!(!commented.is_empty());
    let read_from_the_file: BTreeSet<&str> = env_vars::ALL
        .iter()
        .filter(|var| var.origin != env_vars::Origin::Knob && var.name != env_vars::SOMBRERO_CONFIG)
        .map(|var| var.name)
        .collect();
    for name in active.iter().chain(&commented) {
        assert!(
            read_from_the_file.contains(name.as_str()),
            "{name} is not a variable sombrero reads from .mise.local.toml"
        );
    }
    for name in [
        env_vars::PVE_API_URL,
        env_vars::PVE_API_TOKEN,
        env_vars::CI_SSH_KEY,
    ] {
        assert!(active.contains(name), "the runbook's {name} is set");
    }
    for name in [env_vars::ENVIRONMENT, env_vars::TEMPLATE_ID] {
        assert!(
            !active.contains(name),
            "{name} in the file would beat `ENV=... mise run` (mise's [env] wins)"
        );
    }
    let ignored = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|line| line == "/.mise.local.toml"));

    // Copied as the runbook says, with a real key in place of the placeholder: sombrero
    // takes every value from the file.
    assert!(example.contains(PLACEHOLDER_KEY));
    let sandbox = Sandbox::new();
    sandbox.write(
        ".mise.local.toml",
        &example.replace(PLACEHOLDER_KEY, SSH_KEY),
    );
    let outcome = sandbox.run(&["config", "show", "--json"]).expect_code(0);
    assert!(!outcome.stderr.contains("warning"), "{}", outcome.stderr);
    let mut found = BTreeSet::new();
    sources(&serde_json::from_str(&outcome.stdout).unwrap(), &mut found);
    for name in &active {
        let source = format!(".mise.local.toml:env.{name}");
        assert!(found.contains(&source), "{source} not among {found:?}");
    }

    // Copied and not edited: the placeholder key is refused, naming the line to change.
    let sandbox = Sandbox::new();
    sandbox.write(".mise.local.toml", &example);
    sandbox
        .run(&["config", "show"])
        .expect_code(2)
        .stderr_has("env.TF_VAR_ci_ssh_key: not an SSH public key");
}
