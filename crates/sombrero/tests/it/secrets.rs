//! Secrets never reach stdout or stderr: every command of the binary runs with a known API
//! token and password set, and neither string may appear in its output.
//!
//! Why discover the commands from `--help` instead of listing them: a command added later
//! is covered without anyone remembering to add it here. The walk reads each command's
//! usage line and supplies a value for every required argument, so leaf commands really
//! run (not just fail on a missing argument). The API URL points at a closed port on
//! 127.0.0.1, so nothing leaves the machine.

use std::time::Duration;

use crate::sandbox::{SSH_KEY, Sandbox};

pub(crate) const TOKEN_SECRET: &str = "SECRET-TOKEN-VALUE-5ec7e7a1";
pub(crate) const PASSWORD: &str = "SECRET-PASSWORD-VALUE-hunter2";

/// Commands that must not really run in a unit of the test suite; they still run with
/// `--help`, and their arguments' parsing is covered by their own tests.
pub(crate) const HELP_ONLY: &[&str] = &[
    // Builds the lab's guest image: minutes of work and package downloads.
    "lab image build",
];

/// Commands that serve until stopped: they run for a few seconds, then are killed and
/// their output so far is checked.
pub(crate) const SERVERS: &[&str] = &["lab serve"];

/// A leaf command: its path and the arguments to give it.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub(crate) path: Vec<String>,
    pub(crate) arguments: Vec<String>,
}

fn sandbox() -> Sandbox {
    Sandbox::new()
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:9/api2/json")
        .env(
            "TF_VAR_pve_api_token",
            &format!("terraform@pve!token={TOKEN_SECRET}"),
        )
        .env("PKR_VAR_proxmox_url", "https://127.0.0.1:9/api2/json")
        .env("PKR_VAR_proxmox_username", "root@pam")
        .env("PKR_VAR_proxmox_password", PASSWORD)
        .env("TF_VAR_ci_ssh_key", SSH_KEY)
        // The closed port is retried with the same attempts, without the waits.
        .env("SOMBRERO_RETRY_DELAY_MS", "0")
        .timeout(Duration::from_secs(20))
}

fn help(sandbox: &Sandbox, path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let outcome = sandbox.run(&args).expect_code(0);
    outcome.stdout
}

/// The subcommand names listed under `Commands:` (without `help`).
fn subcommands(help_text: &str) -> Vec<String> {
    let Some(start) = help_text.find("\nCommands:\n") else {
        return Vec::new();
    };
    help_text[start + "\nCommands:\n".len()..]
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// A value for the argument `<NAME>`: the first possible value if clap lists some, else a
/// plausible one by name.
fn value_for(help_text: &str, name: &str, sandbox: &Sandbox) -> String {
    let marker = format!("  <{name}>");
    if let Some(start) = help_text.find(&marker) {
        let rest = &help_text[start..];
        let end = rest[marker.len()..]
            .find("\n  <")
            .map_or(rest.len(), |end| end + marker.len());
        if let Some(values) = rest[..end].split("[possible values: ").nth(1) {
            let first = values.split([',', ']']).next().unwrap_or_default();
            return first.trim().to_owned();
        }
    }
    match name {
        "METHOD" => "GET".to_owned(),
        "PATH" => "/version".to_owned(),
        "VMID" | "ID" => "150".to_owned(),
        "FILE" | "DIR" | "OUTPUT" => sandbox.path().join("output-file").display().to_string(),
        _ => "1".to_owned(),
    }
}

/// The arguments a leaf's usage line marks as required, with values.
fn required_arguments(help_text: &str, path: &[String], sandbox: &Sandbox) -> Vec<String> {
    let usage = help_text
        .lines()
        .find(|line| line.starts_with("Usage: "))
        .unwrap_or_default();
    let mut arguments = Vec::new();
    let mut depth = 0_i32;
    for token in usage.split_whitespace().skip(2 + path.len()) {
        let opening = i32::try_from(token.matches('[').count()).unwrap_or(0);
        let closing = i32::try_from(token.matches(']').count()).unwrap_or(0);
        let optional = depth > 0 || token.starts_with('[');
        depth += opening - closing;
        if optional {
            continue;
        }
        if token.starts_with('-') {
            arguments.push(token.trim_start_matches('(').to_owned());
        } else if let Some(name) = token.strip_prefix('<') {
            let name = name.trim_end_matches("...").trim_end_matches(['>', ')']);
            arguments.push(value_for(help_text, name, sandbox));
        }
    }
    arguments
}

/// Every leaf command, found by walking `--help` from the top.
pub(crate) fn leaves(sandbox: &Sandbox) -> Vec<(Leaf, String)> {
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut found = Vec::new();
    while let Some(path) = pending.pop() {
        let help_text = help(sandbox, &path);
        let children = subcommands(&help_text);
        if children.is_empty() {
            let arguments = required_arguments(&help_text, &path, sandbox);
            found.push((Leaf { path, arguments }, help_text));
        } else {
            for child in children {
                let mut child_path = path.clone();
                child_path.push(child);
                pending.push(child_path);
            }
        }
    }
    found.sort_by(|left, right| left.0.path.cmp(&right.0.path));
    found
}

#[test]
fn the_walk_finds_the_known_commands() {
    let sandbox = sandbox();
    let paths: Vec<String> = leaves(&sandbox)
        .iter()
        .map(|(leaf, _)| leaf.path.join(" "))
        .collect();
    for expected in ["completions", "config show", "validate"] {
        assert!(
            paths.iter().any(|path| path == expected),
            "{expected} in {paths:?}"
        );
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    let sandbox = sandbox();
    for (leaf, help_text) in leaves(&sandbox) {
        assert!(
            help_text.contains("Example"),
            "`sombrero {} --help` has no example:\n{help_text}",
            leaf.path.join(" ")
        );
    }
}

#[test]
fn no_command_prints_the_token_or_password() {
    let sandbox = sandbox();
    let all = leaves(&sandbox);
    assert!(all.len() >= 3, "{all:?}");
    for (leaf, _) in all {
        let name = leaf.path.join(" ");
        let mut runs: Vec<Vec<String>> =
            vec![[leaf.path.clone(), vec!["--help".to_owned()]].concat()];
        if !HELP_ONLY.contains(&name.as_str()) {
            let base = [leaf.path.clone(), leaf.arguments.clone()].concat();
            runs.push(base.clone());
            runs.push([base, vec!["--json".to_owned(), "-vv".to_owned()]].concat());
        }
        for args in runs {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let outcome = if SERVERS.contains(&name.as_str()) {
                sandbox.run_for(&args, Duration::from_secs(3))
            } else {
                sandbox.run(&args)
            };
            for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
                for secret in [TOKEN_SECRET, PASSWORD] {
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
    }
}

#[test]
fn secrets_from_mise_are_redacted_too() {
    let sandbox = Sandbox::new();
    sandbox.write(
        ".mise.local.toml",
        &format!(
            "[env]\nTF_VAR_pve_api_token = \"terraform@pve!token={TOKEN_SECRET}\"\nPKR_VAR_proxmox_password = \"{PASSWORD}\"\n"
        ),
    );
    for args in [
        &["config", "show"][..],
        &["config", "show", "--json"],
        &["validate", "--json"],
    ] {
        let outcome = sandbox.run(args);
        let all = format!("{}{}", outcome.stdout, outcome.stderr);
        assert!(
            !all.contains(TOKEN_SECRET) && !all.contains(PASSWORD),
            "{all}"
        );
        if args.len() == 3 && args[0] == "config" {
            assert!(
                all.contains("\"value\": \"[redacted]\""),
                "the password is shown as redacted: {all}"
            );
            assert!(all.contains("terraform@pve!token=[redacted]"), "{all}");
        }
    }
}
