//! Secrets never reach output *or files*, on the code paths that really use them: every
//! command run against the in-process lab (`--lab`: deploy, status, destroy, ... with the
//! user's token set), every command run with a malformed token that embeds the secret
//! (error paths), and the commands that send a token run against a `lab serve` whose
//! token is the one set. After each series, every file under the project directory
//! (history database, outputs, checklists, report, Prometheus file, the lab's state
//! directory) is searched byte for byte.
//!
//! The one file allowed to hold a secret is the lab's own `credentials.json`, which holds
//! the secrets the lab generated for itself (never the user's token). Nothing leaves
//! 127.0.0.1: the configured API URL is a closed port on loopback, the labs listen there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::lab_serve::{serve, terminate};
use crate::sandbox::{Outcome, SSH_KEY, Sandbox};
use crate::secrets::{HELP_ONLY, Leaf, PASSWORD, SERVERS, TOKEN_SECRET, leaves};

fn sandbox(token: &str) -> Sandbox {
    Sandbox::new()
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:9/api2/json")
        .env("TF_VAR_pve_api_token", token)
        .env("PKR_VAR_proxmox_username", "root@pam")
        .env("PKR_VAR_proxmox_password", PASSWORD)
        .env("TF_VAR_ci_ssh_key", SSH_KEY)
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        // `up --lab` would otherwise boot real guests (and build a template) where QEMU is.
        .env("SOMBRERO_LAB_GUESTS", "state")
        .env("SOMBRERO_RETRY_DELAY_MS", "0")
        .timeout(Duration::from_secs(60))
}

/// Every file below `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// Fails when a file below `dir` other than `allowed` holds one of `secrets`.
fn assert_no_file_holds(dir: &Path, secrets: &[&str], allowed: &[PathBuf]) {
    for path in files(dir) {
        if allowed.contains(&path) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in secrets {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds a secret",
                path.display()
            );
        }
    }
}

fn assert_clean(args: &[String], outcome: &Outcome, secrets: &[&str]) {
    for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "`sombrero {}` printed a secret on {stream}:\n{text}",
                args.join(" ")
            );
        }
    }
    assert!(
        !outcome.stderr.contains("panicked"),
        "`sombrero {}` panicked:\n{}",
        args.join(" "),
        outcome.stderr
    );
}

/// Extra arguments so a leaf does its real work (writes, records) instead of stopping at
/// a confirmation or a missing field.
fn extra(name: &str, sandbox: &Sandbox) -> Vec<String> {
    let owned = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
    match name {
        "deploy" | "destroy" | "up" => owned(&["--yes"]),
        "issue add" => owned(&["--phase", "plan", "--description", "a test issue"]),
        "metrics" => vec![
            "--prometheus".to_owned(),
            sandbox.path().join("sombrero.prom").display().to_string(),
        ],
        "lab serve" => vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--state".to_owned(),
            sandbox.path().join("served").display().to_string(),
        ],
        _ => Vec::new(),
    }
}

/// Runs every leaf (deploy first, destroy last, `lab image build` only with `--help`) with
/// `flags`, as text and as `--json -vv`, checking each output.
fn run_every_command(sandbox: &Sandbox, flags: &[&str], secrets: &[&str]) {
    let mut all: Vec<Leaf> = leaves(sandbox).into_iter().map(|(leaf, _)| leaf).collect();
    let rank = |leaf: &Leaf| match leaf.path.join(" ").as_str() {
        "deploy" => 0,
        "destroy" => 2,
        _ => 1,
    };
    all.sort_by_key(rank);
    assert!(all.len() >= 15, "{all:?}");
    for leaf in all {
        let name = leaf.path.join(" ");
        if HELP_ONLY.contains(&name.as_str()) {
            continue;
        }
        let base: Vec<String> = [
            leaf.path.clone(),
            leaf.arguments.clone(),
            extra(&name, sandbox),
            flags.iter().map(|flag| (*flag).to_owned()).collect(),
        ]
        .concat();
        for args in [
            base.clone(),
            [base.clone(), vec!["--json".to_owned(), "-vv".to_owned()]].concat(),
        ] {
            let borrowed: Vec<&str> = args.iter().map(String::as_str).collect();
            let outcome = if SERVERS.contains(&name.as_str()) {
                sandbox.run_for(&borrowed, Duration::from_secs(3))
            } else {
                sandbox.run(&borrowed)
            };
            assert_clean(&args, &outcome, secrets);
        }
    }
}

#[test]
fn every_command_against_the_in_process_lab_leaks_nothing_anywhere() {
    let sandbox = sandbox(&format!("terraform@pve!token={TOKEN_SECRET}"));
    run_every_command(&sandbox, &["--lab"], &[TOKEN_SECRET, PASSWORD]);
    // The series really did its work: recorded, wrote outputs and records.
    for written in [
        "deployments/sombrero.db",
        "deployments/lab/credentials.json",
        "deployments/checklists",
        "sombrero.prom",
        "output-file",
    ] {
        assert!(sandbox.path().join(written).exists(), "{written} written");
    }
    let history = sandbox.run(&["history", "--json"]).expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    for command in ["deploy", "destroy"] {
        let succeeded = history["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["command"] == command && run["status"] == "success");
        assert!(succeeded, "a successful {command} in {history}");
    }
    assert_no_file_holds(sandbox.path(), &[TOKEN_SECRET, PASSWORD], &[]);
}

#[test]
fn every_command_with_a_malformed_token_leaks_nothing_anywhere() {
    for token in [
        format!("terraform@pve={TOKEN_SECRET}"),
        format!("terraform!token={TOKEN_SECRET}"),
        format!("terraform@pve!={TOKEN_SECRET}"),
    ] {
        let sandbox = sandbox(&token);
        run_every_command(&sandbox, &[], &[TOKEN_SECRET, PASSWORD]);
        run_every_command(&sandbox, &["--lab"], &[TOKEN_SECRET, PASSWORD]);
        assert_no_file_holds(sandbox.path(), &[TOKEN_SECRET, PASSWORD], &[]);
    }
}

#[test]
fn commands_sending_the_token_to_a_served_lab_never_write_or_print_it() {
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().display().to_string();
    let (child, ready) = serve(&["--with-template", "--state", &state_arg]);
    let token = ready["token"].as_str().unwrap().to_owned();
    let secret = token.split_once('=').unwrap().1.to_owned();
    let sandbox = sandbox(&token)
        .env("TF_VAR_pve_api_url", ready["url"].as_str().unwrap())
        .env(
            "SOMBRERO_PVE_FINGERPRINT",
            ready["fingerprint"].as_str().unwrap(),
        )
        .timeout(Duration::from_secs(120));
    let secrets = [secret.as_str(), PASSWORD];
    let runs: &[(&[&str], i32)] = &[
        (&["deploy", "--env", "staging", "--yes", "-vv"], 0),
        (&["status", "--env", "staging", "--json", "-vv"], 0),
        (&["outputs", "--env", "staging", "--json"], 0),
        (&["plan", "--env", "staging", "-vv"], 0),
        (&["api", "get", "/version", "-vv"], 0),
        (
            &["api", "get", "/cluster/resources", "type=vm", "--json"],
            0,
        ),
        // Error paths: an API refusal of a write, a VM that is not the environment's.
        (&["api", "post", "/nodes/lloyd/qemu", "vmid=1", "-vv"], 1),
        (&["adopt", "151", "--env", "staging", "-vv"], 2),
        (&["destroy", "--env", "staging", "--yes", "-vv"], 0),
        (&["history", "--json"], 0),
        (&["metrics", "--json"], 0),
        (&["checklist"], 0),
    ];
    for (args, code) in runs {
        let outcome = sandbox.run(args);
        let owned: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        assert_clean(&owned, &outcome, &secrets);
        outcome.expect_code(*code);
    }
    assert!(sandbox.path().join("deployments/checklists").exists());
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
    assert_no_file_holds(sandbox.path(), &secrets, &[]);
    // The lab's state directory: only its own credentials file holds its secret.
    assert_no_file_holds(state.path(), &[TOKEN_SECRET, PASSWORD], &[]);
    assert_no_file_holds(
        state.path(),
        &secrets,
        &[state.path().join("credentials.json")],
    );
}
