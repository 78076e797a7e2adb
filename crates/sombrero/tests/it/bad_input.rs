//! Every kind of bad configuration input: a clear message naming the problem and where it
//! is, a hint, and exit code 2, never a panic.

use crate::sandbox::{Outcome, SHIPPED_CONFIG, Sandbox};
use crate::snapshot::sombrero_snapshot;

/// A filter showing line `line` of `sombrero.toml` as `[LINE]`: the snapshot then checks
/// the reported line without breaking when the shipped file gains a line above it.
fn at_line(line: usize) -> String {
    format!(r"sombrero\.toml:{line}:")
}

fn show(sandbox: &Sandbox) -> Outcome {
    let outcome = sandbox.run(&["config", "show"]).expect_code(2);
    assert!(
        outcome.stdout.is_empty(),
        "no data on failure: {}",
        outcome.stdout
    );
    assert!(outcome.stderr.starts_with("error: "), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("\nhint: "), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
    outcome
}

#[test]
fn malformed_toml_reports_file_line_and_column() {
    let sandbox = Sandbox::with_config("[defaults]\nname = \"jump-man\"\ncores = = 2\n");
    sombrero_snapshot!(sandbox, &["config", "show"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: sombrero.toml:3:9: invalid TOML: extra `=`, expected nothing

    hint: fix the TOML syntax at the position shown
    ");
}

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    let sandbox = Sandbox::replacing("cores = 2", "coers = 2");
    let line = Sandbox::line_of(SHIPPED_CONFIG, "cores = 2");
    sombrero_snapshot!(
        sandbox,
        &["config", "show"],
        filters = [(&at_line(line), "sombrero.toml:[LINE]:")],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: sombrero.toml:[LINE]:1: defaults.coers: unknown key `coers` (did you mean `cores`?)

        hint: rename the key to `cores` (docs/configuration.md lists every key)
        "
    );
    let secret = Sandbox::replacing("[api]\n", "[api]\ntoken = \"root@pam!x=y\"\n");
    let line = Sandbox::line_of(SHIPPED_CONFIG, "[api]") + 1;
    sombrero_snapshot!(
        secret,
        &["config", "show"],
        filters = [(&at_line(line), "sombrero.toml:[LINE]:")],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: sombrero.toml:[LINE]:1: api.token: unknown key `token`

        hint: secrets are never read from sombrero.toml: set TF_VAR_pve_api_token or PKR_VAR_proxmox_password in the environment or .mise.local.toml
        "
    );
}

#[test]
fn invalid_ip_and_cidr() {
    let line = Sandbox::line_of(SHIPPED_CONFIG, "192.168.10.252/24");
    show(&Sandbox::replacing("192.168.10.252/24", "192.168.10.352/24")).stderr_has(&format!(
        "sombrero.toml:{line}:6: environments.staging.ip: \"192.168.10.352/24\" is not an IP address with a prefix length (CIDR): \"192.168.10.352\" is not an IPv4 or IPv6 address"
    ));
    show(&Sandbox::replacing("192.168.10.252/24", "192.168.10.252")).stderr_has(
        "environments.staging.ip: \"192.168.10.252\" is not an IP address with a prefix length (CIDR): the prefix length is missing",
    );
    show(&Sandbox::replacing(
        "gateway = \"192.168.10.1\"",
        "gateway = \"192.168.10\"",
    ))
    .stderr_has("environments.production.gateway: \"192.168.10\" is not an IP address");
}

#[test]
fn gateway_outside_the_subnet() {
    let staging = SHIPPED_CONFIG
        .find("[environments.staging]")
        .expect("staging");
    let mut config = SHIPPED_CONFIG.to_owned();
    let gateway = staging
        + config[staging..]
            .find("gateway = \"192.168.10.1\"")
            .expect("gateway");
    config.replace_range(
        gateway..gateway + "gateway = \"192.168.10.1\"".len(),
        "gateway = \"192.168.11.1\"",
    );
    let line = Sandbox::line_of(&config, "192.168.11.1");
    sombrero_snapshot!(
        Sandbox::with_config(&config),
        &["config", "show"],
        filters = [(&at_line(line), "sombrero.toml:[LINE]:")],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: sombrero.toml:[LINE]:11: environments.staging.gateway: gateway 192.168.11.1 is outside the VM's subnet 192.168.10.0/24

        hint: the gateway must be inside the VM's subnet; check the ip prefix and gateway
        "
    );
}

#[test]
fn vm_id_outside_the_proxmox_range() {
    show(&Sandbox::replacing("vmid = 151", "vmid = 99"))
        .stderr_has("environments.development.vmid: VM id 99 is outside 100..=999999999")
        .stderr_has("hint: Proxmox VM ids are 100..=999999999");
    show(&Sandbox::replacing("vmid = 151", "vmid = 1000000000"))
        .stderr_has("VM id 1000000000 is outside 100..=999999999");
    show(&Sandbox::new().env("TEMPLATE_ID", "42"))
        .stderr_has("error: environment variable TEMPLATE_ID: VM id 42 is outside 100..=999999999");
}

#[test]
fn balloon_greater_than_memory() {
    let line = Sandbox::line_of(SHIPPED_CONFIG, "balloon_mib = 1024");
    sombrero_snapshot!(
        Sandbox::replacing("balloon_mib = 1024", "balloon_mib = 3072"),
        &["config", "show"],
        filters = [(&at_line(line), "sombrero.toml:[LINE]:")],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: sombrero.toml:[LINE]:15: defaults.balloon_mib: balloon minimum 3072 MiB is greater than memory 2048 MiB

        hint: balloon_mib is the minimum memory; it must not exceed memory_mib
        "
    );
}

#[test]
fn two_environments_with_the_same_vm_id_or_ip() {
    let config = SHIPPED_CONFIG
        .replace("vmid = 151", "vmid = 150")
        .replace("192.168.10.252/24", "192.168.10.251/24");
    let vmid_line = Sandbox::line_of(SHIPPED_CONFIG, "vmid = 150");
    let ip_line = Sandbox::line_of(SHIPPED_CONFIG, "192.168.10.252/24");
    sombrero_snapshot!(
        Sandbox::with_config(&config),
        &["config", "show"],
        filters = [
            (&at_line(vmid_line), "sombrero.toml:[LINE production.vmid]:"),
            (&at_line(ip_line), "sombrero.toml:[LINE staging.ip]:"),
        ],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: 2 problems in the configuration:
          - sombrero.toml:[LINE production.vmid]:8: environments.production.vmid: environments development and production both use VM id 150
          - sombrero.toml:[LINE staging.ip]:6: environments.staging.ip: environments development and staging both use IP address 192.168.10.251

        hint: each environment needs its own VM id and IP address
        "
    );
}

#[test]
fn malformed_api_token_never_echoes_the_secret() {
    for (token, expected) in [
        (
            "terraform@pve=SuperSecret99",
            "has no '!' before the token id",
        ),
        ("terraform@pve!token", "has no '=' before the secret"),
        ("terraform!token=SuperSecret99", "the user has no '@REALM'"),
    ] {
        let outcome = show(&Sandbox::new().env("TF_VAR_pve_api_token", token))
            .stderr_has("error: environment variable TF_VAR_pve_api_token: malformed API token:")
            .stderr_has(expected)
            .stderr_has("hint: the token looks like terraform@pve!token=");
        assert!(
            !outcome.stderr.contains("SuperSecret99"),
            "{}",
            outcome.stderr
        );
    }
    let sandbox = Sandbox::new();
    sandbox.write(
        ".mise.local.toml",
        "[env]\nTF_VAR_pve_api_token = \"nope\"\n",
    );
    show(&sandbox)
        .stderr_has("error: .mise.local.toml:2:24: env.TF_VAR_pve_api_token: malformed API token");
}

#[test]
fn malformed_url() {
    sombrero_snapshot!(
        Sandbox::new().env("TF_VAR_pve_api_url", "pve.example:8006"),
        &["config", "show"],
        @r#"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: environment variable TF_VAR_pve_api_url: malformed URL "pve.example:8006": scheme must be https or http, not "pve.example"

        hint: the API URL looks like https://pve.example:8006/api2/json
        "#
    );
    show(&Sandbox::new().env("TF_VAR_pve_api_url", "https://pve:8006/json"))
        .stderr_has("the path must be empty or end with /api2/json");
    show(&Sandbox::replacing(
        "# url = \"https://lloyd.example.internal:8006/api2/json\"",
        "url = \"https//pve\"",
    ))
    .stderr_has("api.url: malformed URL \"https//pve\": relative URL without a base");
}

#[test]
fn unknown_environment_lists_the_known_ones() {
    show(&Sandbox::new().env("ENV", "prod"))
        .stderr_has("error: environment variable ENV: unknown environment \"prod\"; known environments: development, production, staging")
        .stderr_has("hint: use one of: development, production, staging");
    sombrero_snapshot!(Sandbox::new(), &["config", "show", "--env", "qa"], @r#"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: flag --env: unknown environment "qa"; known environments: development, production, staging

    hint: use one of: development, production, staging (or add [environments.NAME] to sombrero.toml)
    "#);
}

#[test]
fn missing_required_values_name_what_sets_them() {
    show(&Sandbox::replacing("node = \"lloyd\"\n", ""))
        .stderr_has("missing node of environment production: set PKR_VAR_proxmox_node, or `node`");
    sombrero_snapshot!(
        Sandbox::new(),
        &["--config", "absent.toml", "config", "show"],
        @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: cannot read configuration file absent.toml: No such file or directory (os error 2)

        hint: run sombrero where sombrero.toml is, or pass --config FILE (or set SOMBRERO_CONFIG)
        "
    );
}

#[test]
fn other_bad_values() {
    show(&Sandbox::new().env("TF_VAR_proxmox_insecure", "perhaps"))
        .stderr_has("environment variable TF_VAR_proxmox_insecure: \"perhaps\" is not a boolean");
    show(&Sandbox::new().env("SOMBRERO_PVE_FINGERPRINT", "AA:BB:CC"))
        .stderr_has("environment variable SOMBRERO_PVE_FINGERPRINT: a SHA-256 fingerprint is 32 colon-separated hex bytes");
    show(&Sandbox::new().env(
        "TF_VAR_ci_ssh_key",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI-example-key ansible@jump-man",
    ))
    .stderr_has("environment variable TF_VAR_ci_ssh_key: not an SSH public key: the key data is not valid base64");
    show(&Sandbox::replacing("vmid = 152", "vmid = \"152\""))
        .stderr_has("environments.staging.vmid: invalid type: string \"152\", expected i64");
}

/// The API token is never sent in clear to a remote host: plain http is bad input,
/// naming the variable; a loopback lab over plain http is accepted with a warning.
#[test]
fn plain_http_to_a_remote_api_is_refused() {
    show(&Sandbox::new().env("TF_VAR_pve_api_url", "http://pve.example.invalid:8006"))
        .stderr_has("environment variable TF_VAR_pve_api_url: malformed URL")
        .stderr_has("would send the API token in clear; use https://");
    let loopback = Sandbox::new()
        .env("TF_VAR_pve_api_url", "http://127.0.0.1:8006")
        .run(&["config", "show"])
        .expect_code(0);
    assert!(
        loopback
            .stderr
            .contains("warning: the API at http://127.0.0.1:8006/api2/json is plain http"),
        "{}",
        loopback.stderr
    );
}
