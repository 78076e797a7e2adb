//! Every environment variable sombrero reads, declared in one place.
//!
//! Why one module: environment variables are an interface as stable as the command line.
//! The runbook's names (`TF_VAR_*`, `PKR_VAR_*`, `ENV`, `TEMPLATE_ID`) are honoured exactly so
//! an existing `.mise.local.toml` keeps working; sombrero's own names all start with
//! `SOMBRERO_`. [`ALL`] lists them for documentation and for tests that check nothing
//! secret leaks; docs/configuration.md describes each one.
//!
//! Each variable is read from the process environment first and then from the `[env]` table
//! of `.mise.local.toml` next to the configuration file (the runbook's file, read as is).

/// Proxmox VE API URL, e.g. `https://pve:8006/api2/json` (runbook, Terraform).
pub const PVE_API_URL: &str = "TF_VAR_pve_api_url";
/// API token `USER@REALM!TOKENID=SECRET` (runbook, Terraform). Secret.
pub const PVE_API_TOKEN: &str = "TF_VAR_pve_api_token";
/// `true` to accept the API's certificate without verification (runbook, Terraform).
pub const PROXMOX_INSECURE: &str = "TF_VAR_proxmox_insecure";
/// The SSH public key cloud-init installs for the VM's user (runbook, Terraform).
pub const CI_SSH_KEY: &str = "TF_VAR_ci_ssh_key";
/// API URL for the template build (runbook, Packer); used when `TF_VAR_pve_api_url` is unset.
pub const PACKER_PROXMOX_URL: &str = "PKR_VAR_proxmox_url";
/// User for password authentication, e.g. `root@pam` (runbook, Packer).
pub const PACKER_PROXMOX_USERNAME: &str = "PKR_VAR_proxmox_username";
/// Password for `PKR_VAR_proxmox_username` (runbook, Packer). Secret.
pub const PACKER_PROXMOX_PASSWORD: &str = "PKR_VAR_proxmox_password";
/// The Proxmox node the template and the VM live on (runbook, Packer).
pub const PACKER_PROXMOX_NODE: &str = "PKR_VAR_proxmox_node";
/// Selects the environment (`production`, `staging`, `development`); default production.
pub const ENVIRONMENT: &str = "ENV";
/// Overrides the template VM id the VM is cloned from (runbook: `TEMPLATE_ID=1001`).
pub const TEMPLATE_ID: &str = "TEMPLATE_ID";

/// Path of the configuration file (default `./sombrero.toml`). Read by the binary only,
/// and never from `.mise.local.toml`, which is found next to the configuration file.
pub const SOMBRERO_CONFIG: &str = "SOMBRERO_CONFIG";
/// Pinned SHA-256 fingerprint of the API's TLS certificate, `AA:BB:...` (32 bytes).
pub const SOMBRERO_PVE_FINGERPRINT: &str = "SOMBRERO_PVE_FINGERPRINT";
/// PEM file with the CA that signed the API's certificate.
pub const SOMBRERO_PVE_CA_FILE: &str = "SOMBRERO_PVE_CA_FILE";
/// Deployment history: a database path (default `deployments/sombrero.db`) or a
/// `postgres://USER@HOST/DATABASE` URL.
pub const SOMBRERO_HISTORY: &str = "SOMBRERO_HISTORY";
/// Directory for stage outputs (default `deployments/outputs`).
pub const SOMBRERO_OUTPUTS_DIR: &str = "SOMBRERO_OUTPUTS_DIR";
/// File holding the SSH public key, used when `TF_VAR_ci_ssh_key` is unset.
pub const SOMBRERO_SSH_PUBLIC_KEY_FILE: &str = "SOMBRERO_SSH_PUBLIC_KEY_FILE";
/// File holding the SSH private key `configure` logs in to the VM with (the private half
/// of the public key); only its path is resolved, `configure` checks the file.
pub const SOMBRERO_SSH_PRIVATE_KEY_FILE: &str = "SOMBRERO_SSH_PRIVATE_KEY_FILE";
/// Directory holding the Ansible tree `configure` runs; unset: the project's `ansible/`,
/// else the copy embedded in the binary.
pub const SOMBRERO_ANSIBLE_DIR: &str = "SOMBRERO_ANSIBLE_DIR";

/// Scales the in-process lab's task durations for `--lab` (`0.01` in tests); unset:
/// realistic durations. Read by the binary's lab mode only, from the process environment.
pub const SOMBRERO_LAB_TIME_SCALE: &str = "SOMBRERO_LAB_TIME_SCALE";
/// Which guests `up --lab` asks its in-process lab for: `auto` (default: real QEMU guests
/// when this machine can run them), `state` (state-only, instant) or `qemu` (real, else
/// an error). Read by the binary's lab mode only.
pub const SOMBRERO_LAB_GUESTS: &str = "SOMBRERO_LAB_GUESTS";
/// Cache directory of the lab's guest images (`sombrero lab image build`, `lab doctor`,
/// `lab serve --guests`); default `$XDG_CACHE_HOME/sombrero/lab-images`. Read by `pve-lab`.
pub const SOMBRERO_LAB_IMAGES: &str = "SOMBRERO_LAB_IMAGES";
/// Debian mirror for `sombrero lab image build`; default: this machine's apt sources. Read
/// by `lab/build-image.sh`.
pub const SOMBRERO_DEBIAN_MIRROR: &str = "SOMBRERO_DEBIAN_MIRROR";
/// First API retry delay in milliseconds (`0` turns the delays off; tests). Read by `pve`.
pub const SOMBRERO_RETRY_DELAY_MS: &str = "SOMBRERO_RETRY_DELAY_MS";
/// Seconds one API request may take to be answered (default 60); a request that times out
/// is tried once more, then fails. Read by `pve`.
pub const SOMBRERO_API_TIMEOUT: &str = "SOMBRERO_API_TIMEOUT";
/// Seconds `deploy` waits for the guest agent's address before its one reboot (default
/// 300); for rehearsals and tests. Read by the binary's context.
pub const SOMBRERO_AGENT_WAIT: &str = "SOMBRERO_AGENT_WAIT";
/// Seconds `configure` waits for cloud-init to finish on the VM (default 600); for
/// rehearsals and tests. Read by the binary.
pub const SOMBRERO_CLOUD_INIT_WAIT: &str = "SOMBRERO_CLOUD_INIT_WAIT";
/// The file `ansible/callback_plugins/sombrero_events.py` appends its JSON lines to. Set by
/// `configure` for the `ansible-playbook` it runs (read by the callback, not by sombrero);
/// set it yourself to get the same events from a run by hand.
pub const SOMBRERO_ANSIBLE_EVENTS: &str = "SOMBRERO_ANSIBLE_EVENTS";
/// A tracing filter directive (`pve=debug`) replacing the levels of `-v`/`-q`; `RUST_LOG`
/// is read when it is unset. Read by the binary's logging setup.
pub const SOMBRERO_LOG: &str = "SOMBRERO_LOG";

/// Who defined a variable's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The runbook (Terraform, Packer, mise tasks): honoured by its exact name.
    Runbook,
    /// sombrero itself: a setting, resolved with its source like every other.
    Sombrero,
    /// sombrero itself, but not a setting: a knob of the lab or of the API client, read
    /// from the process environment by the code it tunes (so it never shows in
    /// `config show`), declared here so every name sombrero reads is in one list.
    Knob,
}

/// One environment variable and what it means.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    pub name: &'static str,
    pub origin: Origin,
    /// Whether the value is a secret (never printed).
    pub secret: bool,
    pub description: &'static str,
}

const fn var(
    name: &'static str,
    origin: Origin,
    secret: bool,
    description: &'static str,
) -> EnvVar {
    EnvVar {
        name,
        origin,
        secret,
        description,
    }
}

/// Every variable sombrero reads, in documentation order.
pub const ALL: &[EnvVar] = &[
    var(PVE_API_URL, Origin::Runbook, false, "Proxmox VE API URL"),
    var(
        PVE_API_TOKEN,
        Origin::Runbook,
        true,
        "API token USER@REALM!TOKENID=SECRET",
    ),
    var(
        PROXMOX_INSECURE,
        Origin::Runbook,
        false,
        "skip TLS certificate verification",
    ),
    var(
        CI_SSH_KEY,
        Origin::Runbook,
        false,
        "SSH public key for the VM user",
    ),
    var(
        PACKER_PROXMOX_URL,
        Origin::Runbook,
        false,
        "API URL when TF_VAR_pve_api_url is unset",
    ),
    var(
        PACKER_PROXMOX_USERNAME,
        Origin::Runbook,
        false,
        "user for password authentication",
    ),
    var(
        PACKER_PROXMOX_PASSWORD,
        Origin::Runbook,
        true,
        "password for password authentication",
    ),
    var(PACKER_PROXMOX_NODE, Origin::Runbook, false, "Proxmox node"),
    var(ENVIRONMENT, Origin::Runbook, false, "environment to act on"),
    var(
        TEMPLATE_ID,
        Origin::Runbook,
        false,
        "template VM id to clone",
    ),
    var(
        SOMBRERO_CONFIG,
        Origin::Sombrero,
        false,
        "configuration file",
    ),
    var(
        SOMBRERO_PVE_FINGERPRINT,
        Origin::Sombrero,
        false,
        "pinned SHA-256 fingerprint of the API certificate",
    ),
    var(
        SOMBRERO_PVE_CA_FILE,
        Origin::Sombrero,
        false,
        "CA certificate (PEM) for the API",
    ),
    var(
        SOMBRERO_HISTORY,
        Origin::Sombrero,
        false,
        "history database: a path, or a postgres:// URL for a team history",
    ),
    var(
        SOMBRERO_OUTPUTS_DIR,
        Origin::Sombrero,
        false,
        "stage outputs directory",
    ),
    var(
        SOMBRERO_SSH_PUBLIC_KEY_FILE,
        Origin::Sombrero,
        false,
        "file holding the SSH public key",
    ),
    var(
        SOMBRERO_SSH_PRIVATE_KEY_FILE,
        Origin::Sombrero,
        false,
        "file holding the SSH private key configure logs in with",
    ),
    var(
        SOMBRERO_ANSIBLE_DIR,
        Origin::Sombrero,
        false,
        "directory of the Ansible playbooks configure runs",
    ),
    var(
        SOMBRERO_LAB_TIME_SCALE,
        Origin::Knob,
        false,
        "scale of the --lab task durations",
    ),
    var(
        SOMBRERO_LAB_GUESTS,
        Origin::Knob,
        false,
        "guests of up --lab: auto, state or qemu",
    ),
    var(
        SOMBRERO_LAB_IMAGES,
        Origin::Knob,
        false,
        "cache directory of the lab's guest images",
    ),
    var(
        SOMBRERO_DEBIAN_MIRROR,
        Origin::Knob,
        false,
        "Debian mirror for the lab image build",
    ),
    var(
        SOMBRERO_API_TIMEOUT,
        Origin::Knob,
        false,
        "seconds one API request may take",
    ),
    var(
        SOMBRERO_AGENT_WAIT,
        Origin::Knob,
        false,
        "seconds deploy waits for the guest agent",
    ),
    var(
        SOMBRERO_CLOUD_INIT_WAIT,
        Origin::Knob,
        false,
        "seconds configure waits for cloud-init",
    ),
    var(
        SOMBRERO_ANSIBLE_EVENTS,
        Origin::Knob,
        false,
        "file the Ansible events callback writes",
    ),
    var(
        SOMBRERO_LOG,
        Origin::Knob,
        false,
        "log filter replacing the -v levels",
    ),
    var(
        SOMBRERO_RETRY_DELAY_MS,
        Origin::Knob,
        false,
        "first API retry delay in milliseconds",
    ),
];

/// The names of the variables whose values are secrets.
pub fn secret_names() -> impl Iterator<Item = &'static str> {
    ALL.iter().filter(|var| var.secret).map(|var| var.name)
}

#[cfg(test)]
mod tests {
    use super::{ALL, Origin};

    #[test]
    fn names_are_unique_and_sombreros_own_are_prefixed() {
        let mut names: Vec<&str> = ALL.iter().map(|var| var.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for var in ALL.iter().filter(|var| var.origin != Origin::Runbook) {
            assert!(var.name.starts_with("SOMBRERO_"), "{}", var.name);
        }
        let secrets: Vec<&str> = super::secret_names().collect();
        assert_eq!(
            secrets,
            ["TF_VAR_pve_api_token", "PKR_VAR_proxmox_password"]
        );
    }

    #[test]
    fn knobs_read_by_other_crates_have_the_names_declared_here() {
        assert_eq!(pve::retry::RETRY_DELAY_ENV, super::SOMBRERO_RETRY_DELAY_MS);
        assert_eq!(pve::REQUEST_TIMEOUT_ENV, super::SOMBRERO_API_TIMEOUT);
    }
}
