//! Tests of the `--lab` layer: it wins for every API setting (and says so), leaves nothing
//! of the configured cluster behind, and fills in the SSH key only when no layer sets one.

use std::collections::HashMap;

use super::{CliOverrides, ConfigFile, Inputs, LabLayer, Source, SshKeySetting, resolve, values};

const SHIPPED: &str = include_str!("../../../../sombrero.toml");
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ test@sombrero";
const PLACEHOLDER: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ placeholder";

fn lab() -> LabLayer {
    LabLayer {
        url: values::parse_api_url("https://127.0.0.1:45678").expect("url"),
        token: "root@pam!lab=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
            .parse()
            .expect("token"),
        fingerprint: Some(values::parse_fingerprint(&["AB"; 32].join(":")).expect("fingerprint")),
        placeholder_ssh_key: values::parse_ssh_public_key(PLACEHOLDER).expect("key"),
        ssh_key_file: None,
    }
}

fn resolve_with(env: &[(&str, &str)], lab: Option<LabLayer>) -> super::Settings {
    let file = ConfigFile::parse("sombrero.toml", SHIPPED).expect("shipped file");
    let env: HashMap<String, String> = env
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let cli = CliOverrides {
        lab,
        ..CliOverrides::default()
    };
    resolve(Inputs {
        cli: &cli,
        env: &env,
        mise: None,
        file: &file,
    })
    .expect("resolves")
}

#[test]
fn the_lab_wins_over_every_api_layer_and_is_named_as_the_source() {
    let cluster = [
        ("TF_VAR_pve_api_url", "https://pve.example.invalid:8006"),
        (
            "TF_VAR_pve_api_token",
            "ci@pve!deploy=11111111-2222-3333-4444-555555555555",
        ),
        ("TF_VAR_proxmox_insecure", "true"),
        ("SOMBRERO_PVE_CA_FILE", "/etc/ssl/pve-ca.pem"),
        ("PKR_VAR_proxmox_username", "root@pam"),
        ("PKR_VAR_proxmox_password", "hunter2"),
        ("TF_VAR_ci_ssh_key", KEY),
    ];
    let without = resolve_with(&cluster, None);
    assert_eq!(
        without
            .api
            .url
            .as_ref()
            .map(|url| url.value.host_str().map(str::to_owned)),
        Some(Some("pve.example.invalid".to_owned()))
    );
    let settings = resolve_with(&cluster, Some(lab()));
    let url = settings.api.url.as_ref().expect("url");
    assert_eq!(url.value.as_str(), "https://127.0.0.1:45678/api2/json");
    assert_eq!(url.source, Source::Flag("--lab"));
    let token = settings.api.token.as_ref().expect("token");
    assert_eq!(token.value.to_string(), "root@pam!lab=[redacted]");
    assert_eq!(token.source.to_string(), "flag --lab");
    assert!(
        !settings.api.insecure.value,
        "the lab's certificate is pinned"
    );
    assert!(settings.api.fingerprint.is_some());
    assert!(settings.api.ca_file.is_none(), "no CA file of the cluster");
    assert!(settings.api.username.is_none() && settings.api.password.is_none());
    assert!(matches!(settings.tls_mode(), pve::TlsMode::Fingerprint(_)));
    // The configured key stays: the lab layer only fills a gap.
    let key = settings.vm.ssh_public_key.as_ref().expect("key");
    assert_eq!(key.source, Source::Env("TF_VAR_ci_ssh_key".into()));
    assert!(settings.warnings.is_empty(), "{:?}", settings.warnings);
}

#[test]
fn without_a_configured_key_the_lab_vm_gets_the_placeholder_with_a_warning() {
    let settings = resolve_with(&[], Some(lab()));
    let key = settings
        .vm
        .ssh_public_key
        .as_ref()
        .expect("placeholder key");
    assert_eq!(key.source, Source::Flag("--lab"));
    assert!(
        matches!(&key.value, SshKeySetting::Inline(inline) if inline.as_str().ends_with("placeholder"))
    );
    assert!(
        settings
            .warnings
            .iter()
            .any(|warning| warning.contains("placeholder key")),
        "{:?}",
        settings.warnings
    );
    // Without the lab, no key is invented.
    assert!(resolve_with(&[], None).vm.ssh_public_key.is_none());
}
