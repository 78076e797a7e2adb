//! `ansible-results.json`: the runbook's stage 3 output, from what the guest reports after
//! the playbook, not from what the playbook meant to do.
//!
//! Why asked afterwards over SSH: the original wrote a template with `firewall_rules: 12`
//! whatever happened. Here every value is read on the VM: units that are enabled AND
//! active, `id`'s groups, the daemon's state, the number of rules really in sombrero's
//! nftables table, and tool versions. Written per environment and as the runbook's
//! top-level copy.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ansible::AnsibleInstall;
use super::events::Recap;
use crate::ssh::{Session, SshError};

/// The file name the runbook uses.
pub const RESULTS_FILE: &str = "ansible-results.json";

/// Services the jump host runs, as (systemd unit, name in `configured_services`). The
/// firewall is reported as `nftables`, the runbook's name, when sombrero's unit runs.
const SERVICES: &[(&str, &str)] = &[
    ("docker", "docker"),
    ("containerd", "containerd"),
    ("ssh", "ssh"),
    ("qemu-guest-agent", "qemu-guest-agent"),
    ("sombrero-firewall", "nftables"),
    ("jump-man-health.timer", "jump-man-health"),
];

/// What the guest reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestFacts {
    /// Unit -> (is-enabled, is-active).
    pub units: Vec<(String, String, String)>,
    pub groups: Vec<String>,
    pub docker_version: Option<String>,
    pub mise_version: Option<String>,
    pub uv_version: Option<String>,
    pub firewall_rules: Option<u32>,
}

fn word(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl GuestFacts {
    /// The shell script printing one `key value` line per fact for `user`.
    pub fn script(user: &str) -> String {
        let units: Vec<&str> = SERVICES.iter().map(|(unit, _)| *unit).collect();
        format!(
            "for unit in {units}; do \
               printf 'unit %s %s %s\\n' \"$unit\" \"$(systemctl is-enabled \"$unit\" 2>/dev/null || true)\" \
               \"$(systemctl is-active \"$unit\" 2>/dev/null || true)\"; done; \
             printf 'groups %s\\n' \"$(id -nG {user} 2>/dev/null)\"; \
             printf 'docker %s\\n' \"$(sudo -n docker version --format '{{{{.Server.Version}}}}' 2>/dev/null)\"; \
             printf 'mise %s\\n' \"$(PATH=$PATH:/usr/local/bin mise --version 2>/dev/null | head -n1)\"; \
             printf 'uv %s\\n' \"$(PATH=$PATH:/usr/local/bin uv --version 2>/dev/null | head -n1)\"; \
             printf 'nft %s\\n' \"$(sudo -n nft -j list table inet sombrero 2>/dev/null)\"",
            units = units.join(" ")
        )
    }

    /// Reads the script's output.
    pub fn parse(text: &str) -> Self {
        let mut facts = Self::default();
        for line in text.lines() {
            let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "unit" => {
                    let mut words = rest.split_whitespace();
                    if let Some(unit) = words.next() {
                        let enabled = words.next().unwrap_or("-").to_owned();
                        let active = words.next().unwrap_or("-").to_owned();
                        facts.units.push((unit.to_owned(), enabled, active));
                    }
                }
                "groups" => facts.groups = rest.split_whitespace().map(str::to_owned).collect(),
                "docker" => facts.docker_version = word(rest),
                "mise" => facts.mise_version = word(rest),
                "uv" => facts.uv_version = word(rest),
                "nft" => facts.firewall_rules = count_rules(rest),
                _ => {}
            }
        }
        facts
    }

    /// Asks the guest.
    ///
    /// # Errors
    /// SSH failures.
    pub async fn gather(session: &Session, user: &str) -> Result<Self, SshError> {
        let output = session
            .run(&Self::script(user), Duration::from_secs(60))
            .await?;
        Ok(Self::parse(&output.stdout))
    }

    fn unit(&self, name: &str) -> Option<(&str, &str)> {
        self.units
            .iter()
            .find(|(unit, _, _)| unit == name)
            .map(|(_, enabled, active)| (enabled.as_str(), active.as_str()))
    }

    /// Services both enabled and active (the runbook's names), then the tools present.
    pub fn configured_services(&self) -> Vec<String> {
        let mut services: Vec<String> = SERVICES
            .iter()
            .filter(|(unit, _)| {
                self.unit(unit)
                    .is_some_and(|(enabled, active)| enabled == "enabled" && active == "active")
            })
            .map(|(_, name)| (*name).to_owned())
            .collect();
        if self.mise_version.is_some() {
            services.push("mise".to_owned());
        }
        if self.uv_version.is_some() {
            services.push("uv".to_owned());
        }
        services
    }

    /// `running` when the Docker daemon is active and answers, else its unit state.
    pub fn docker_status(&self) -> String {
        match self.unit("docker") {
            Some((_, "active")) if self.docker_version.is_some() => "running".to_owned(),
            Some((_, "active")) => "not answering".to_owned(),
            Some((_, "inactive")) => "stopped".to_owned(),
            Some((_, state)) if !state.is_empty() && state != "-" => state.to_owned(),
            _ => "not installed".to_owned(),
        }
    }
}

/// The number of rules in `nft -j list table` output.
fn count_rules(json: &str) -> Option<u32> {
    let value: Value = serde_json::from_str(json.trim()).ok()?;
    let items = value.get("nftables")?.as_array()?;
    u32::try_from(
        items
            .iter()
            .filter(|item| item.get("rule").is_some())
            .count(),
    )
    .ok()
}

/// `ansible-results.json`: the runbook's keys first, then sombrero's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnsibleResults {
    /// `success` or `failed`.
    pub deployment_status: String,
    pub configured_services: Vec<String>,
    pub docker_status: String,
    pub user_groups: Vec<String>,
    /// Rules in sombrero's `inet sombrero` table (`null` when it could not be read).
    pub firewall_rules: Option<u32>,
    pub completion_time: String,
    pub environment: String,
    pub vm_id: String,
    pub docker_version: Option<String>,
    pub mise_version: Option<String>,
    pub uv_version: Option<String>,
    pub recap: Recap,
    pub ansible: AnsibleInstall,
    /// Seconds from Ansible's first event to its recap (its own timing).
    pub ansible_seconds: f64,
    pub log_file: String,
    pub events_file: String,
    /// The failure, when `deployment_status` is `failed`.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::GuestFacts;

    #[test]
    fn facts_come_from_what_the_guest_printed() {
        let text = "unit docker enabled active\nunit containerd enabled active\n\
                    unit ssh enabled active\nunit qemu-guest-agent static active\n\
                    unit sombrero-firewall enabled active\nunit jump-man-health.timer enabled inactive\n\
                    groups ansible sudo docker\ndocker 20.10.24+dfsg1\nmise 2026.9.15 linux-x64\nuv \n\
                    nft {\"nftables\": [{\"metainfo\": {}}, {\"table\": {}}, {\"chain\": {}}, {\"rule\": {}}, {\"rule\": {}}]}\n";
        let facts = GuestFacts::parse(text);
        assert_eq!(facts.groups, ["ansible", "sudo", "docker"]);
        assert_eq!(facts.firewall_rules, Some(2));
        assert_eq!(facts.uv_version, None);
        assert_eq!(facts.docker_status(), "running");
        // Static (not enabled) and inactive units are not "configured services".
        assert_eq!(
            facts.configured_services(),
            ["docker", "containerd", "ssh", "nftables", "mise"]
        );
        let stopped = GuestFacts::parse("unit docker enabled inactive\nnft \n");
        assert_eq!(stopped.docker_status(), "stopped");
        assert_eq!(stopped.firewall_rules, None);
        assert_eq!(GuestFacts::parse("").docker_status(), "not installed");
    }
}
