//! `sombrero config show` and `sombrero validate` end to end: the runbook's environments,
//! where each value came from, the precedence of the layers, and every kind of bad input
//! (message, location and exit code 2).

use serde_json::Value;

use crate::sandbox::{Outcome, SHIPPED_CONFIG, SSH_KEY, Sandbox};

fn json(outcome: &Outcome) -> Value {
    serde_json::from_str(&outcome.stdout).expect("stdout is JSON")
}

/// `{"value": ..., "source": ...}` at `pointer`.
fn resolved(document: &Value, pointer: &str) -> (Value, String) {
    let leaf = document
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} in {document}"));
    let source = leaf["source"]
        .as_str()
        .expect("source is a string")
        .to_owned();
    (leaf["value"].clone(), source)
}

#[test]
fn staging_json_shows_vmid_and_ip_with_sources() {
    let outcome = Sandbox::new()
        .run(&["config", "show", "--env", "staging", "--json"])
        .expect_code(0);
    let document = json(&outcome);
    assert_eq!(
        resolved(&document, "/environment"),
        (Value::from("staging"), "flag --env".to_owned())
    );
    assert_eq!(
        resolved(&document, "/vm/vmid"),
        (
            Value::from(152),
            "sombrero.toml:environments.staging.vmid".to_owned()
        )
    );
    assert_eq!(
        resolved(&document, "/vm/ip"),
        (
            Value::from("192.168.10.252/24"),
            "sombrero.toml:environments.staging.ip".to_owned()
        )
    );
    assert_eq!(
        resolved(&document, "/vm/name"),
        (
            Value::from("jump-man"),
            "sombrero.toml:defaults.name".to_owned()
        )
    );
    assert_eq!(document["api"]["url"], Value::Null);
}

#[test]
fn every_environment_matches_the_runbook_table() {
    for (environment, vmid, ip) in [
        ("production", 150, "192.168.10.250/24"),
        ("staging", 152, "192.168.10.252/24"),
        ("development", 151, "192.168.10.251/24"),
    ] {
        let outcome = Sandbox::new()
            .env("ENV", environment)
            .run(&["config", "show", "--json"])
            .expect_code(0);
        let document = json(&outcome);
        assert_eq!(resolved(&document, "/environment").1, "env ENV");
        assert_eq!(document["vm"]["vmid"]["value"], vmid, "{environment}");
        assert_eq!(document["vm"]["ip"]["value"], ip, "{environment}");
        assert_eq!(document["vm"]["gateway"]["value"], "192.168.10.1");
        assert_eq!(document["vm"]["nameservers"]["value"][0], "192.168.10.1");
        assert_eq!(document["vm"]["template_id"]["value"], 1001);
        assert_eq!(document["vm"]["memory_mib"]["value"], 2048);
        assert_eq!(document["vm"]["balloon_mib"]["value"], 1024);
    }
}

#[test]
fn text_view_matches_snapshot() {
    let sandbox = Sandbox::new().env("TF_VAR_pve_api_token", "terraform@pve!token=not-shown-4711");
    let outcome = sandbox
        .run(&["config", "show", "--env", "staging"])
        .expect_code(0);
    assert!(!outcome.stdout.contains("not-shown-4711"));
    insta::assert_snapshot!("config_show_staging", outcome.stdout);
}

#[test]
fn precedence_flag_beats_env_beats_mise_beats_file_beats_default() {
    // Environment: flag > ENV > .mise.local.toml > default.
    let sandbox = Sandbox::new();
    sandbox.write(
        ".mise.local.toml",
        "[env]\nENV = \"development\"\nTEMPLATE_ID = \"3003\"\n",
    );
    let from_mise = json(&sandbox.run(&["config", "show", "--json"]).expect_code(0));
    assert_eq!(
        resolved(&from_mise, "/environment"),
        (
            Value::from("development"),
            ".mise.local.toml:env.ENV".to_owned()
        )
    );
    assert_eq!(
        resolved(&from_mise, "/vm/template_id"),
        (
            Value::from(3003),
            ".mise.local.toml:env.TEMPLATE_ID".to_owned()
        )
    );
    let sandbox = sandbox.env("ENV", "staging").env("TEMPLATE_ID", "2002");
    let from_env = json(&sandbox.run(&["config", "show", "--json"]).expect_code(0));
    assert_eq!(resolved(&from_env, "/environment").1, "env ENV");
    assert_eq!(
        resolved(&from_env, "/vm/template_id"),
        (Value::from(2002), "env TEMPLATE_ID".to_owned())
    );
    let from_flag = json(
        &sandbox
            .run(&["config", "show", "--env", "production", "--json"])
            .expect_code(0),
    );
    assert_eq!(
        resolved(&from_flag, "/environment"),
        (Value::from("production"), "flag --env".to_owned())
    );

    // Template: file beats nothing-else; default applies where the file is silent.
    let plain = json(
        &Sandbox::new()
            .run(&["config", "show", "--json"])
            .expect_code(0),
    );
    assert_eq!(
        resolved(&plain, "/vm/template_id").1,
        "sombrero.toml:defaults.template_id"
    );
    assert_eq!(resolved(&plain, "/environment").1, "default");
    let no_history = Sandbox::replacing("history = \"deployments/sombrero.db\"\n", "");
    let defaulted = json(&no_history.run(&["config", "show", "--json"]).expect_code(0));
    assert_eq!(
        resolved(&defaulted, "/paths/history"),
        (Value::from("deployments/sombrero.db"), "default".to_owned())
    );
    let from_file = Sandbox::replacing(
        "history = \"deployments/sombrero.db\"",
        "history = \"state/h.db\"",
    );
    let document = json(&from_file.run(&["config", "show", "--json"]).expect_code(0));
    assert_eq!(
        resolved(&document, "/paths/history"),
        (
            Value::from("state/h.db"),
            "sombrero.toml:paths.history".to_owned()
        )
    );
}

#[test]
fn config_file_from_flag_and_variable() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path().join("conf")).expect("mkdir");
    sandbox.write(
        "conf/site.toml",
        &SHIPPED_CONFIG.replace("vmid = 152", "vmid = 1152"),
    );
    let by_variable = sandbox.env("SOMBRERO_CONFIG", "conf/site.toml");
    let document = json(
        &by_variable
            .run(&["config", "show", "--env", "staging", "--json"])
            .expect_code(0),
    );
    assert_eq!(
        resolved(&document, "/vm/vmid"),
        (
            Value::from(1152),
            "conf/site.toml:environments.staging.vmid".to_owned()
        )
    );
    let by_flag = by_variable.run(&[
        "--config",
        "sombrero.toml",
        "config",
        "show",
        "--env",
        "staging",
        "--json",
    ]);
    assert_eq!(json(&by_flag.expect_code(0))["vm"]["vmid"]["value"], 152);
}

#[test]
fn validate_passes_with_everything_set() {
    let outcome = Sandbox::new()
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006/api2/json")
        .env("TF_VAR_pve_api_token", "terraform@pve!token=0e1f2a3b")
        .env("TF_VAR_ci_ssh_key", SSH_KEY)
        .run(&["validate"])
        .expect_code(0);
    assert!(
        outcome
            .stderr
            .contains("configuration is valid: environment production, VM 150"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn validate_reads_the_key_file_and_lists_every_missing_value() {
    let sandbox = Sandbox::new();
    sandbox.write("id.pub", &format!("{SSH_KEY}\n"));
    sandbox
        .env("SOMBRERO_SSH_PUBLIC_KEY_FILE", "~/id.pub")
        .env("TF_VAR_pve_api_token", "terraform@pve!token=0e1f2a3b")
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006")
        .run(&["validate"])
        .expect_code(0);
    let outcome = Sandbox::new().run(&["validate", "--json"]).expect_code(2);
    let report = json(&outcome);
    assert_eq!(report["valid"], false);
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(3));
    let outcome = outcome
        .stderr_has("error: 3 problems in the configuration:")
        .stderr_has("missing the Proxmox API URL: set TF_VAR_pve_api_url")
        .stderr_has("missing the Proxmox API token: set TF_VAR_pve_api_token")
        .stderr_has("missing the VM's SSH public key: set TF_VAR_ci_ssh_key");
    let missing_file = Sandbox::new()
        .env("SOMBRERO_SSH_PUBLIC_KEY_FILE", "nowhere.pub")
        .run(&["validate"])
        .expect_code(2);
    missing_file.stderr_has("cannot read SSH public key file nowhere.pub");
    drop(outcome);
}

#[test]
fn validate_lists_file_problems_and_missing_variables_together() {
    let outcome = Sandbox::replacing("vmid = 151", "vmid = 99")
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006")
        .run(&["validate"])
        .expect_code(2)
        .stderr_has("error: 3 problems in the configuration:")
        .stderr_has("environments.development.vmid: VM id 99 is outside 100..=999999999")
        .stderr_has("missing the Proxmox API token: set TF_VAR_pve_api_token")
        .stderr_has("missing the VM's SSH public key");
    assert!(
        !outcome.stderr.contains("missing the Proxmox API URL"),
        "{}",
        outcome.stderr
    );
    // `config show` reports only what it needs.
    Sandbox::replacing("vmid = 151", "vmid = 99")
        .run(&["config", "show"])
        .expect_code(2)
        .stderr_has("error: sombrero.toml:");
}

/// Escapes `text` for use as a literal in an insta filter (a regex).
fn literal(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = "\\.+*?()|[]{}^$#&-~".contains(c);
            escape.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[test]
fn validate_problems_snapshot_with_temp_paths_filtered() {
    let sandbox = Sandbox::new()
        .env("SOMBRERO_SSH_PUBLIC_KEY_FILE", "~/keys/absent.pub")
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006");
    let outcome = sandbox
        .run(&["validate", "--env", "development"])
        .expect_code(2);
    let sandbox_path = sandbox.path().display().to_string();
    insta::with_settings!({filters => vec![(literal(&sandbox_path).as_str(), "[SANDBOX]")]}, {
        insta::assert_snapshot!("validate_problems", outcome.stderr);
    });
}

#[test]
fn completions_cover_the_commands_and_bash_loads_them() {
    let sandbox = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = sandbox.run(&["completions", shell]).expect_code(0).stdout;
        for word in ["deploy", "destroy", "metrics", "history", "validate"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let bash = sandbox.write(
        "sombrero.bash",
        &sandbox.run(&["completions", "bash"]).stdout,
    );
    // Loading the script and asking for the words after `sombrero de` must offer deploy
    // and destroy (and not fail on a syntax error).
    let probe = format!(
        "source {}; COMP_WORDS=(sombrero de); COMP_CWORD=1; COMP_LINE='sombrero de'; \
         COMP_POINT=11; _sombrero sombrero de sombrero; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bash.display()
    );
    let output = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .unwrap();
    let offered = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{offered}{:?}", output.stderr);
    let words: Vec<&str> = offered.lines().collect();
    assert!(
        words.contains(&"deploy") && words.contains(&"destroy"),
        "{words:?}"
    );
    assert!(
        !sandbox
            .run(&["completions", "powershell"])
            .stdout
            .is_empty()
    );
    sandbox
        .run(&["completions", "tcsh"])
        .expect_code(2)
        .stderr_has("invalid value 'tcsh'");
}

#[test]
fn validate_and_config_show_send_nothing_to_the_configured_api() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}/api2/json", listener.local_addr().unwrap());
    let sandbox = Sandbox::new()
        .env("TF_VAR_pve_api_url", &url)
        .env("TF_VAR_pve_api_token", "terraform@pve!token=0e1f2a3b")
        .env("TF_VAR_ci_ssh_key", SSH_KEY);
    sandbox.run(&["validate"]).expect_code(0);
    sandbox.run(&["validate", "--json"]).expect_code(0);
    sandbox.run(&["config", "show"]).expect_code(0);
    match listener.accept() {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected to the API address: {other:?}"),
    }
    // The check itself works: a command that does use the API connects (the listener
    // never answers, so the call is cut short).
    let _ = Sandbox::new()
        .env("TF_VAR_pve_api_url", &url)
        .env("TF_VAR_pve_api_token", "terraform@pve!token=0e1f2a3b")
        .timeout(std::time::Duration::from_secs(2))
        .run(&["api", "get", "/version"]);
    assert!(listener.accept().is_ok(), "the control call connected");
}
