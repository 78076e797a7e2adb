//! `sombrero config show` and `sombrero validate` end to end: the runbook's environments,
//! where each value came from, the precedence of the layers, and every kind of bad input
//! (message, location and exit code 2).

use serde_json::Value;

use crate::sandbox::{Outcome, SHIPPED_CONFIG, SSH_KEY, Sandbox};
use crate::snapshot::sombrero_snapshot;

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
    let outcome = sombrero_snapshot!(
        sandbox,
        &["config", "show", "--env", "staging"],
        // Which ansible-playbook is found depends on the machine.
        filters = [(r"tools\.ansible +[^\n]*", "tools.ansible [detected]")],
        @r"
    success: true
    exit_code: 0
    ----- stdout -----
    config_file                sombrero.toml
    environment                staging                                         flag --env
    known_environments         development, production, staging

    vm.vmid                    152                                             sombrero.toml:environments.staging.vmid
    vm.name                    jump-man                                        sombrero.toml:defaults.name
    vm.description             Testing & validation                            sombrero.toml:environments.staging.description
    vm.node                    lloyd                                           sombrero.toml:defaults.node
    vm.template_id             1001                                            sombrero.toml:defaults.template_id
    vm.cores                   2                                               sombrero.toml:defaults.cores
    vm.cpu                     host                                            sombrero.toml:defaults.cpu
    vm.memory_mib              2048                                            sombrero.toml:defaults.memory_mib
    vm.balloon_mib             1024                                            sombrero.toml:defaults.balloon_mib
    vm.disk_size_gib           32                                              sombrero.toml:defaults.disk_size_gib
    vm.disk_slot               scsi0                                           sombrero.toml:defaults.disk_slot
    vm.disk_storage            local-lvm                                       sombrero.toml:defaults.disk_storage
    vm.bridge                  vmbr0                                           sombrero.toml:defaults.bridge
    vm.ip                      192.168.10.252/24                               sombrero.toml:environments.staging.ip
    vm.gateway                 192.168.10.1                                    sombrero.toml:environments.staging.gateway
    vm.nameservers             192.168.10.1                                    sombrero.toml:environments.staging.nameservers
    vm.searchdomain            (unset)
    vm.ciuser                  ansible                                         sombrero.toml:defaults.ciuser
    vm.ssh_public_key          (unset)                                         set TF_VAR_ci_ssh_key
    vm.ssh_private_key_file    (unset)                                         set SOMBRERO_SSH_PRIVATE_KEY_FILE
    vm.ssh_allow_users         (none)                                          default
    vm.extra_authorized_keys   (none)                                          default
    vm.tags                    jump-host, sombrero                             sombrero.toml:defaults.tags

    api.url                    (unset)                                         set TF_VAR_pve_api_url
    api.token                  terraform@pve!token=[redacted]                  env TF_VAR_pve_api_token
    api.insecure               false                                           sombrero.toml:api.insecure
    api.fingerprint            (unset)                                         set SOMBRERO_PVE_FINGERPRINT
    api.ca_file                (unset)                                         set SOMBRERO_PVE_CA_FILE
    api.username               (unset)                                         set PKR_VAR_proxmox_username
    api.password               (unset)                                         set PKR_VAR_proxmox_password

    paths.ansible_dir          (unset)                                         set SOMBRERO_ANSIBLE_DIR
    paths.history              deployments/sombrero.db                         sombrero.toml:paths.history
    paths.outputs_dir          deployments/outputs                             sombrero.toml:paths.outputs_dir

    build.base_image           local:import/noble-server-cloudimg-amd64.qcow2  sombrero.toml:build.base_image
    build.base_image_sha256    (unset)
    build.base_image_url       (unset)
    build.disk_size_gib        8                                               sombrero.toml:build.disk_size_gib
    build.os_tag               (unset)
    build.storage              (unset)
    build.template_name        ubuntu-server-numbat-docker                     sombrero.toml:build.template_name

    verify.disk_max_percent    90                                              default
    verify.load_max_per_cpu    2.0                                             default
    verify.memory_max_percent  90                                              default

    tools.ansible [detected]

    ----- stderr -----
    ");
    // Also guarded apart from the snapshot: a secret must not appear even if someone
    // accepts a changed snapshot without reading it.
    assert!(!outcome.stdout.contains("not-shown-4711"));
    assert!(!outcome.stderr.contains("not-shown-4711"));
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
fn configure_settings_show_with_their_sources() {
    let sandbox = Sandbox::replacing(
        "ciuser = \"ansible\"\n",
        &format!(
            "ciuser = \"ansible\"\nssh_private_key_file = \"keys/jump-man-key\"\n\
             ssh_allow_users = [\"ops\"]\nextra_authorized_keys = [\"{SSH_KEY}\"]\n"
        ),
    )
    .env("SOMBRERO_ANSIBLE_DIR", "site/ansible");
    let document = json(&sandbox.run(&["config", "show", "--json"]).expect_code(0));
    assert_eq!(
        resolved(&document, "/vm/ssh_private_key_file"),
        (
            Value::from("keys/jump-man-key"),
            "sombrero.toml:defaults.ssh_private_key_file".to_owned()
        )
    );
    assert_eq!(
        resolved(&document, "/vm/ssh_allow_users"),
        (
            serde_json::json!(["ops"]),
            "sombrero.toml:defaults.ssh_allow_users".to_owned()
        )
    );
    assert_eq!(
        resolved(&document, "/vm/extra_authorized_keys"),
        (
            serde_json::json!([SSH_KEY]),
            "sombrero.toml:defaults.extra_authorized_keys".to_owned()
        )
    );
    assert_eq!(
        resolved(&document, "/paths/ansible_dir"),
        (
            Value::from("site/ansible"),
            "env SOMBRERO_ANSIBLE_DIR".to_owned()
        )
    );
    let text = sandbox.run(&["config", "show"]).expect_code(0).stdout;
    for (key, source) in [
        (
            "vm.ssh_allow_users",
            "sombrero.toml:defaults.ssh_allow_users",
        ),
        ("paths.ansible_dir", "env SOMBRERO_ANSIBLE_DIR"),
    ] {
        let line = text
            .lines()
            .find(|line| line.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in\n{text}"));
        assert!(line.ends_with(source), "{line}");
    }
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
    let sandbox = Sandbox::new()
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006/api2/json")
        .env("TF_VAR_pve_api_token", "terraform@pve!token=0e1f2a3b")
        .env("TF_VAR_ci_ssh_key", SSH_KEY);
    sombrero_snapshot!(sandbox, &["validate"], @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
    configuration is valid: environment production, VM 150 (jump-man) at 192.168.10.250/24 on node lloyd, from template 1001
    ");
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
    // The JSON report on stdout and the same problems as an error on stderr.
    sombrero_snapshot!(Sandbox::new(), &["validate", "--json"], @r#"
    success: false
    exit_code: 2
    ----- stdout -----
    {
      "valid": false,
      "environment": "production",
      "problems": [
        {
          "message": "missing the Proxmox API URL: set TF_VAR_pve_api_url (environment or .mise.local.toml), or api.url in sombrero.toml",
          "hint": "docs/configuration.md lists every setting"
        },
        {
          "message": "missing the Proxmox API token: set TF_VAR_pve_api_token (environment or .mise.local.toml) to USER@REALM!TOKENID=SECRET",
          "hint": "docs/configuration.md lists every setting"
        },
        {
          "message": "missing the VM's SSH public key: set TF_VAR_ci_ssh_key to the key, or SOMBRERO_SSH_PUBLIC_KEY_FILE (or ssh_public_key_file in sombrero.toml) to a .pub file",
          "hint": "docs/configuration.md lists every setting"
        }
      ]
    }

    ----- stderr -----
    error: 3 problems in the configuration:
      - missing the Proxmox API URL: set TF_VAR_pve_api_url (environment or .mise.local.toml), or api.url in sombrero.toml
      - missing the Proxmox API token: set TF_VAR_pve_api_token (environment or .mise.local.toml) to USER@REALM!TOKENID=SECRET
      - missing the VM's SSH public key: set TF_VAR_ci_ssh_key to the key, or SOMBRERO_SSH_PUBLIC_KEY_FILE (or ssh_public_key_file in sombrero.toml) to a .pub file

    hint: docs/configuration.md lists every setting
    "#);
    let missing_file = Sandbox::new().env("SOMBRERO_SSH_PUBLIC_KEY_FILE", "nowhere.pub");
    sombrero_snapshot!(missing_file, &["validate"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: 3 problems in the configuration:
      - missing the Proxmox API URL: set TF_VAR_pve_api_url (environment or .mise.local.toml), or api.url in sombrero.toml
      - missing the Proxmox API token: set TF_VAR_pve_api_token (environment or .mise.local.toml) to USER@REALM!TOKENID=SECRET
      - cannot read SSH public key file nowhere.pub: No such file or directory (os error 2)

    hint: docs/configuration.md lists every setting
    ");
}

#[test]
fn validate_lists_file_problems_and_missing_variables_together() {
    let line = Sandbox::line_of(SHIPPED_CONFIG, "vmid = 151");
    let at_line = format!(r"sombrero\.toml:{line}:");
    let sandbox = Sandbox::replacing("vmid = 151", "vmid = 99")
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006");
    // The URL is set, so it is not among the problems.
    sombrero_snapshot!(
        sandbox,
        &["validate"],
        filters = [(&at_line, "sombrero.toml:[LINE]:")],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: 3 problems in the configuration:
          - sombrero.toml:[LINE]:8: environments.development.vmid: VM id 99 is outside 100..=999999999
          - missing the Proxmox API token: set TF_VAR_pve_api_token (environment or .mise.local.toml) to USER@REALM!TOKENID=SECRET
          - missing the VM's SSH public key: set TF_VAR_ci_ssh_key to the key, or SOMBRERO_SSH_PUBLIC_KEY_FILE (or ssh_public_key_file in sombrero.toml) to a .pub file

        hint: Proxmox VM ids are 100..=999999999
        hint: docs/configuration.md lists every setting
        "
    );
    // `config show` reports only what it needs: the file's problem, not the missing values.
    sombrero_snapshot!(
        sandbox,
        &["config", "show"],
        filters = [(&at_line, "sombrero.toml:[LINE]:")],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: sombrero.toml:[LINE]:8: environments.development.vmid: VM id 99 is outside 100..=999999999

        hint: Proxmox VM ids are 100..=999999999
        "
    );
}

#[test]
fn validate_problems_snapshot_with_temp_paths_filtered() {
    // `~` is the sandbox (it is HOME): the message names the expanded path.
    let sandbox = Sandbox::new()
        .env("SOMBRERO_SSH_PUBLIC_KEY_FILE", "~/keys/absent.pub")
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006");
    sombrero_snapshot!(sandbox, &["validate", "--env", "development"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: 2 problems in the configuration:
      - missing the Proxmox API token: set TF_VAR_pve_api_token (environment or .mise.local.toml) to USER@REALM!TOKENID=SECRET
      - cannot read SSH public key file [TEMP]/keys/absent.pub: No such file or directory (os error 2)

    hint: docs/configuration.md lists every setting
    ");
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
    sombrero_snapshot!(sandbox, &["completions", "tcsh"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid value 'tcsh' for '<SHELL>'
      [possible values: bash, elvish, fish, powershell, zsh]

      tip: a similar value exists: 'zsh'

    For more information, try '--help'.
    ");
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
