//! `--lab` is a layer of resolution, not a rewrite after it: `config show --lab` names the
//! lab as the source of every API setting, and nothing of the configured cluster (a CA
//! file, a password login) survives under it.

use serde_json::Value;

use crate::sandbox::{SSH_KEY, Sandbox};

#[test]
fn config_show_with_lab_names_the_lab_as_the_source_of_the_api_settings() {
    let sandbox = Sandbox::new()
        .env("TF_VAR_pve_api_url", "https://pve.example.invalid:8006")
        .env("SOMBRERO_PVE_CA_FILE", "/etc/pve/pve-root-ca.pem")
        .env("PKR_VAR_proxmox_username", "root@pam")
        .env("PKR_VAR_proxmox_password", "not-the-labs-password")
        .env("TF_VAR_ci_ssh_key", SSH_KEY);
    let outcome = sandbox
        .run(&["--lab", "config", "show", "--json"])
        .expect_code(0);
    let shown: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    let api = &shown["api"];
    assert_eq!(api["url"]["source"], "flag --lab", "{api}");
    assert!(
        api["url"]["value"]
            .as_str()
            .is_some_and(|url| url.starts_with("https://127.0.0.1:")),
        "{api}"
    );
    assert_eq!(api["token"]["source"], "flag --lab", "{api}");
    assert_eq!(api["fingerprint"]["source"], "flag --lab", "{api}");
    assert!(
        api["ca_file"].is_null() && api["username"].is_null(),
        "{api}"
    );
    assert!(api["password"].is_null(), "{api}");
    // The VM's key is the configured one, not the lab's placeholder.
    assert_eq!(
        shown["vm"]["ssh_public_key"]["source"],
        "env TF_VAR_ci_ssh_key"
    );
    assert!(!outcome.stdout.contains("not-the-labs-password"));

    // The text view says the same.
    let text = sandbox.run(&["--lab", "config", "show"]).expect_code(0);
    let url_line = text
        .stdout
        .lines()
        .find(|line| line.starts_with("api.url"))
        .expect("an api.url line");
    assert!(url_line.trim_end().ends_with("flag --lab"), "{url_line}");
}

#[test]
fn without_a_key_the_lab_says_it_uses_a_placeholder_once() {
    let outcome = Sandbox::new()
        .run(&["--lab", "config", "show", "--json"])
        .expect_code(0);
    let shown: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
    assert_eq!(shown["vm"]["ssh_public_key"]["source"], "flag --lab");
    assert_eq!(
        outcome.stderr.matches("placeholder key").count(),
        1,
        "{}",
        outcome.stderr
    );
}
