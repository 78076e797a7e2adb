//! Tests of [`resolve`]: precedence, sources, and every configuration problem.

use std::collections::HashMap;

use super::{CliOverrides, ConfigFile, Inputs, MiseEnv, Settings, SettingsErrors, Source, resolve};

pub(super) const SHIPPED: &str = include_str!("../../../../sombrero.toml");
pub(super) const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ test@sombrero";

pub(super) struct Case {
    pub(super) cli: CliOverrides,
    pub(super) env: HashMap<String, String>,
    pub(super) mise: Option<String>,
    pub(super) file: String,
}

impl Case {
    pub(super) fn new() -> Self {
        Self {
            cli: CliOverrides::default(),
            env: HashMap::new(),
            mise: None,
            file: SHIPPED.to_owned(),
        }
    }

    pub(super) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    pub(super) fn mise(mut self, env_table: &str) -> Self {
        self.mise = Some(format!("[env]\n{env_table}\n"));
        self
    }

    pub(super) fn file(mut self, text: &str) -> Self {
        self.file = text.to_owned();
        self
    }

    pub(super) fn replace(mut self, from: &str, to: &str) -> Self {
        assert!(self.file.contains(from), "{from}");
        self.file = self.file.replacen(from, to, 1);
        self
    }

    pub(super) fn run(&self) -> Result<Settings, SettingsErrors> {
        let file = ConfigFile::parse("conf/sombrero.toml", self.file.as_str())?;
        let mise = match &self.mise {
            Some(text) => Some(MiseEnv::parse("conf/.mise.local.toml", text, &self.env)?),
            None => None,
        };
        resolve(Inputs {
            cli: &self.cli,
            env: &self.env,
            mise: mise.as_ref(),
            file: &file,
        })
    }

    pub(super) fn ok(&self) -> Settings {
        self.run().expect("configuration resolves")
    }

    pub(super) fn error(&self) -> String {
        self.run()
            .expect_err("configuration is rejected")
            .to_string()
    }
}

pub(super) fn file_source(key: &str) -> Source {
    Source::File {
        path: "conf/sombrero.toml".into(),
        key: key.to_owned(),
    }
}

#[test]
fn defaults_to_production_from_the_shipped_file() {
    let settings = Case::new().ok();
    assert_eq!(settings.environment.value, "production");
    assert_eq!(settings.environment.source, Source::Default);
    let vm = &settings.vm;
    assert_eq!(vm.vmid.value, 150);
    assert_eq!(vm.vmid.source, file_source("environments.production.vmid"));
    assert_eq!(vm.ip.value.to_string(), "192.168.10.250/24");
    assert_eq!(vm.gateway.value.to_string(), "192.168.10.1");
    assert_eq!(vm.name.value, "jump-man");
    assert_eq!(vm.name.source, file_source("defaults.name"));
    assert_eq!((vm.cores.value, vm.memory_mib.value), (2, 2048));
    assert_eq!(vm.balloon_mib.as_ref().map(|b| b.value), Some(1024));
    assert_eq!(vm.template_id.as_ref().map(|t| t.value), Some(1001));
    assert_eq!(vm.disk_slot.value, "scsi0");
    assert!(vm.ssh_public_key.is_none());
    assert!(settings.api.url.is_none() && settings.api.token.is_none());
    assert_eq!(
        settings.paths.history.value.file(),
        Some(std::path::Path::new("conf/deployments/sombrero.db"))
    );
}

#[test]
fn the_runbook_table_for_each_environment() {
    for (name, vmid, ip) in [
        ("production", 150, "192.168.10.250/24"),
        ("staging", 152, "192.168.10.252/24"),
        ("development", 151, "192.168.10.251/24"),
    ] {
        let settings = Case::new().env("ENV", name).ok();
        assert_eq!(settings.environment.source, Source::Env("ENV".into()));
        assert_eq!(settings.vm.vmid.value, vmid, "{name}");
        assert_eq!(settings.vm.ip.value.to_string(), ip, "{name}");
        assert_eq!(
            settings.vm.nameservers.value,
            ["192.168.10.1".parse::<std::net::IpAddr>().expect("ip")]
        );
    }
}

#[test]
fn precedence_flag_env_mise_file_default() {
    // template_id: flag > TEMPLATE_ID env > mise > file.
    let mut case = Case::new()
        .env("TEMPLATE_ID", "2002")
        .mise("TEMPLATE_ID = \"3003\"");
    case.cli.template_id = Some(1111);
    assert_eq!(case.ok().vm.template_id.map(|t| t.value), Some(1111));
    assert_eq!(
        case.ok().vm.template_id.map(|t| t.source),
        Some(Source::Flag("--template"))
    );
    case.cli.template_id = None;
    assert_eq!(
        case.ok()
            .vm
            .template_id
            .clone()
            .expect("a template id")
            .value,
        2002
    );
    assert_eq!(
        case.ok()
            .vm
            .template_id
            .clone()
            .expect("a template id")
            .source,
        Source::Env("TEMPLATE_ID".into())
    );
    case.env.clear();
    let settings = case.ok();
    assert_eq!(
        settings
            .vm
            .template_id
            .clone()
            .expect("a template id")
            .value,
        3003
    );
    assert_eq!(
        settings
            .vm
            .template_id
            .clone()
            .expect("a template id")
            .source
            .to_string(),
        "conf/.mise.local.toml:env.TEMPLATE_ID"
    );
    case.mise = None;
    assert_eq!(
        case.ok()
            .vm
            .template_id
            .clone()
            .expect("a template id")
            .source,
        file_source("defaults.template_id")
    );

    // history: env > mise > file > default.
    let case = Case::new().replace("history = \"deployments/sombrero.db\"\n", "");
    assert_eq!(case.ok().paths.history.source, Source::Default);
    let case = case.replace("[paths]\n", "[paths]\nhistory = \"h.db\"\n");
    assert_eq!(case.ok().paths.history.source, file_source("paths.history"));
    let case = case.mise("SOMBRERO_HISTORY = \"m.db\"");
    assert_eq!(
        case.ok().paths.history.value.file(),
        Some(std::path::Path::new("conf/m.db"))
    );
    let case = case.env("SOMBRERO_HISTORY", "/var/e.db");
    let settings = case.ok();
    assert_eq!(
        settings.paths.history.value.file(),
        Some(std::path::Path::new("/var/e.db"))
    );
    assert_eq!(
        settings.paths.history.source,
        Source::Env("SOMBRERO_HISTORY".into())
    );
    // A postgres:// URL is a team history; a broken one is an error naming the variable
    // that does not repeat the URL (it may hold a password).
    let team = case.env("SOMBRERO_HISTORY", "postgres://alice:pw-x1@db.invalid/h");
    let settings = team.ok();
    assert!(settings.paths.history.value.is_postgres());
    assert_eq!(
        settings.paths.history.value.to_string(),
        "postgres://alice@db.invalid/h"
    );
    let broken = team.env("SOMBRERO_HISTORY", "postgres://alice:pw-x1@/h");
    let errors = broken.error();
    assert!(
        errors.contains("environment variable SOMBRERO_HISTORY"),
        "{errors}"
    );
    assert!(errors.contains("empty host"), "{errors}");
    assert!(!errors.contains("pw-x1"), "{errors}");

    // environment: flag > ENV.
    let mut case = Case::new().env("ENV", "staging");
    case.cli.environment = Some("development".into());
    let settings = case.ok();
    assert_eq!(settings.environment.value, "development");
    assert_eq!(settings.environment.source, Source::Flag("--env"));
}

#[test]
fn api_settings_from_runbook_variables() {
    let settings = Case::new()
        .env("TF_VAR_pve_api_url", "https://pve.example:8006")
        .env(
            "TF_VAR_pve_api_token",
            "terraform@pve!token=very-secret-value",
        )
        .env("TF_VAR_proxmox_insecure", "true")
        .env("TF_VAR_ci_ssh_key", KEY)
        .env("PKR_VAR_proxmox_password", "hunter2-password")
        .env("SOMBRERO_PVE_FINGERPRINT", &["ab"; 32].join(":"))
        .ok();
    let url = settings.api.url.as_ref().expect("url");
    assert_eq!(url.value.as_str(), "https://pve.example:8006/api2/json");
    assert!(settings.api.insecure.value);
    let token = settings.require_api_token().expect("token");
    assert_eq!(token.full_token_id(), "terraform@pve!token");
    assert!(
        settings
            .pipeline_problems(|_| unreachable!("inline key"))
            .is_empty()
    );
    let json = serde_json::to_string(&settings).expect("json");
    assert!(
        !json.contains("very-secret-value") && !json.contains("hunter2"),
        "{json}"
    );
    assert!(json.contains("terraform@pve!token=[redacted]"), "{json}");
    assert!(!format!("{settings:?}").contains("very-secret-value"));
    assert_eq!(settings.warnings.len(), 1, "insecure + fingerprint warns");
    assert!(
        matches!(settings.tls_mode(), pve::TlsMode::Fingerprint(pinned) if pinned.bytes() == &[0xAB; 32]),
        "the pinned fingerprint wins over insecure"
    );
    let insecure = Case::new().env("TF_VAR_proxmox_insecure", "1").ok();
    assert_eq!(insecure.tls_mode(), pve::TlsMode::Insecure);
    assert_eq!(Case::new().ok().tls_mode(), pve::TlsMode::SystemRoots);
}

#[test]
fn packer_url_is_the_fallback_and_mise_templates_expand() {
    let settings = Case::new()
        .mise("TF_VAR_pve_api_url = \"https://a:8006/api2/json\"\nPKR_VAR_proxmox_url = \"{{env.TF_VAR_pve_api_url}}\"")
        .ok();
    assert_eq!(
        settings.api.url.as_ref().map(|url| url.source.to_string()),
        Some("conf/.mise.local.toml:env.TF_VAR_pve_api_url".to_owned())
    );
    let settings = Case::new()
        .env("PKR_VAR_proxmox_url", "https://b:8006")
        .ok();
    assert_eq!(
        settings.api.url.map(|url| url.value.to_string()),
        Some("https://b:8006/api2/json".to_owned())
    );
}

#[test]
fn pipeline_problems_name_the_variables() {
    let settings = Case::new().ok();
    let problems: Vec<String> = settings
        .pipeline_problems(|_| unreachable!("no key file configured"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("TF_VAR_pve_api_url"));
    assert!(problems[1].contains("TF_VAR_pve_api_token"));
    assert!(problems[2].contains("TF_VAR_ci_ssh_key"));
    let settings = Case::new()
        .env("SOMBRERO_SSH_PUBLIC_KEY_FILE", "~/k.pub")
        .env("HOME", "/home/op")
        .ok();
    let key = settings.ssh_public_key(|path| {
        assert_eq!(path, std::path::Path::new("/home/op/k.pub"));
        Ok(format!("{KEY}\n"))
    });
    assert_eq!(key.expect("key from file").algorithm(), "ssh-ed25519");
}

#[test]
fn bad_values_name_their_location() {
    let error = Case::new()
        .replace("192.168.10.252/24", "192.168.10.300/24")
        .error();
    let line = SHIPPED
        .lines()
        .position(|line| line.contains("192.168.10.252/24"))
        .expect("staging ip")
        + 1;
    let expected = format!(
        "conf/sombrero.toml:{line}:6: environments.staging.ip: \"192.168.10.300/24\" is not an IP address with a prefix length (CIDR): \"192.168.10.300\" is not an IPv4 or IPv6 address"
    );
    assert_eq!(error, expected);
    let error = Case::new().replace("gateway = \"192.168.10.1\"\nnameservers = [\"192.168.10.1\"]\n\n[environments.staging]", "gateway = \"10.0.0.1\"\nnameservers = [\"192.168.10.1\"]\n\n[environments.staging]").error();
    assert!(error.contains("environments.production.gateway: gateway 10.0.0.1 is outside the VM's subnet 192.168.10.0/24"), "{error}");
    let error = Case::new().replace("gateway = \"192.168.10.1\"\nnameservers = [\"192.168.10.1\"]\n\n[environments.staging]", "gateway = \"192.168.10.250\"\nnameservers = [\"192.168.10.1\"]\n\n[environments.staging]").error();
    assert!(
        error.contains(
            "environments.production.gateway: gateway 192.168.10.250 is the VM's own address"
        ),
        "{error}"
    );
    assert!(!error.contains("outside"), "{error}");
    let error = Case::new().replace("vmid = 151", "vmid = 99").error();
    assert!(
        error.contains("environments.development.vmid: VM id 99 is outside 100..=999999999"),
        "{error}"
    );
    let error = Case::new()
        .replace("balloon_mib = 1024", "balloon_mib = 4096")
        .error();
    assert!(
        error.contains(
            "defaults.balloon_mib: balloon minimum 4096 MiB is greater than memory 2048 MiB"
        ),
        "{error}"
    );
    let error = Case::new()
        .replace("vmid = 152", "vmid = 150")
        .replace("192.168.10.251/24", "192.168.10.250/24")
        .error();
    assert!(error.starts_with("2 problems"), "{error}");
    assert!(
        error.contains("environments production and staging both use VM id 150"),
        "{error}"
    );
    assert!(
        error
            .contains("environments development and production both use IP address 192.168.10.250"),
        "{error}"
    );
}

#[test]
fn bad_variables_name_the_variable() {
    let error = Case::new()
        .env("TF_VAR_pve_api_token", "root@pam=secretvalue")
        .error();
    assert!(
        error.starts_with("environment variable TF_VAR_pve_api_token: malformed API token"),
        "{error}"
    );
    assert!(!error.contains("secretvalue"));
    let error = Case::new().env("TF_VAR_pve_api_url", "pve:8006").error();
    assert!(
        error.starts_with("environment variable TF_VAR_pve_api_url: malformed URL"),
        "{error}"
    );
    let error = Case::new().env("ENV", "prod").error();
    assert!(error.contains("environment variable ENV: unknown environment \"prod\"; known environments: development, production, staging"), "{error}");
    let error = Case::new().env("TEMPLATE_ID", "abc").error();
    assert!(
        error.contains("environment variable TEMPLATE_ID: \"abc\" is not a VM id"),
        "{error}"
    );
    let error = Case::new().env("PKR_VAR_proxmox_username", "root").error();
    assert!(
        error.contains("PKR_VAR_proxmox_username: \"root\" is not a Proxmox user id"),
        "{error}"
    );
    let error = Case::new().env("SOMBRERO_PVE_FINGERPRINT", "AB:CD").error();
    assert!(
        error.contains("SOMBRERO_PVE_FINGERPRINT: a SHA-256 fingerprint is 32"),
        "{error}"
    );
    let error = Case::new()
        .env(
            "TF_VAR_ci_ssh_key",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI-example-key x",
        )
        .error();
    assert!(
        error.contains("TF_VAR_ci_ssh_key: not an SSH public key"),
        "{error}"
    );
}

#[test]
fn missing_values_say_how_to_set_them() {
    let error = Case::new()
        .replace("template_id = 1001\n", "")
        .replace("cpu = \"host\"\n", "")
        .error();
    // A template id is optional: without one, stage 2 discovers the template.
    assert!(!error.contains("template_id"), "{error}");
    assert!(
        error.contains("missing cpu of environment staging"),
        "{error}"
    );
    let without_template = Case::new().replace("template_id = 1001\n", "").ok();
    assert!(without_template.vm.template_id.is_none());
    let error = Case::new().file("").error();
    assert!(
        error.contains(
            "unknown environment \"production\"; the configuration file defines no environment"
        ),
        "{error}"
    );
    assert!(!error.contains("known environments"), "{error}");
}

#[test]
fn plain_http_is_refused_for_a_remote_api_and_warned_about_on_loopback() {
    let error = Case::new()
        .env("TF_VAR_pve_api_url", "http://pve.example.invalid:8006")
        .error();
    assert!(
        error.contains("environment variable TF_VAR_pve_api_url: malformed URL")
            && error.contains("would send the API token in clear"),
        "{error}"
    );
    let settings = Case::new()
        .env("TF_VAR_pve_api_url", "http://127.0.0.1:8006")
        .ok();
    assert!(
        settings
            .warnings
            .iter()
            .any(|warning| warning.contains("plain http: the token travels unencrypted")),
        "{:?}",
        settings.warnings
    );
    let secure = Case::new()
        .env("TF_VAR_pve_api_url", "https://127.0.0.1:8006")
        .ok();
    assert!(secure.warnings.is_empty(), "{:?}", secure.warnings);
}
