//! `diagnose`: the runbook's troubleshooting guide as code.
//!
//! Why the API and the guest agent first: the runbook's own diagnosis starts on the
//! Proxmox host (`qm status`, `qm guest cmd ... network-get-interfaces`) because the
//! problems it covers are the ones where SSH does not work. Each of its five scenarios
//! (SSH timeout, cloud-init degraded, template not found, Docker not starting, API
//! authentication failed) becomes a [`Finding`]: what was looked at, what was seen, and
//! the runbook's fix as the hint. SSH is used only where the agent cannot answer. Nothing
//! here prints; [`bundle`] packs the evidence for a colleague, secrets redacted.

pub mod bundle;
pub mod guest;
pub mod privileges;
mod scenarios;

use pve::Client;
use serde::Serialize;

pub use guest::{Guest, GuestOutput, Via};

use crate::ssh::{Session, SshTarget};

/// The runbook's five scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    ApiAuth,
    Template,
    SshTimeout,
    CloudInit,
    Docker,
}

impl Scenario {
    pub fn title(self) -> &'static str {
        match self {
            Self::ApiAuth => "API authentication",
            Self::Template => "template",
            Self::SshTimeout => "SSH",
            Self::CloudInit => "cloud-init",
            Self::Docker => "Docker",
        }
    }
}

/// What a scenario's look found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingStatus {
    Ok,
    Problem,
    /// Could not be looked at (no API, no way into the guest).
    Unknown,
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub scenario: Scenario,
    pub status: FindingStatus,
    /// The cause, in one sentence.
    pub summary: String,
    /// What was looked at and seen.
    pub evidence: Vec<String>,
    /// The runbook's fix, made concrete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What diagnose knows before it looks (from the configuration and the outputs).
#[derive(Debug, Clone)]
pub struct DiagnoseRequest {
    pub environment: String,
    pub node: String,
    pub vmid: u32,
    /// The configured template id.
    pub template_id: Option<u32>,
    /// `template_id` and `template_node` of `packer-outputs.json`, when it exists.
    pub packer_template: Option<(String, String)>,
    /// `ADDRESS/PREFIX` the VM should have.
    pub expected_address: String,
    pub user: String,
    /// The public key the VM should authorize.
    pub public_key: Option<String>,
    /// Where SSH goes (from stage 2's outputs); `None` when nothing was deployed.
    pub ssh: Option<SshTarget>,
    /// `user@realm!tokenid` (never the secret).
    pub token_id: Option<String>,
    pub storage: String,
    /// Why there is no API client (no URL, no credentials), when there is none.
    pub api_problem: Option<String>,
}

/// Every finding, in the runbook's order of dependence (API, template, VM and SSH, then
/// what runs inside).
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub environment: String,
    pub vm_id: u32,
    /// How the guest was reached for the inside checks (`null`: not at all).
    pub guest_via: Option<Via>,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|finding| finding.status == FindingStatus::Problem)
            .count()
    }
}

/// Looks at everything; never fails (what cannot be looked at is `unknown`).
pub async fn run<'a>(
    client: Option<&'a Client>,
    request: &DiagnoseRequest,
) -> (Diagnosis, Guest<'a>) {
    let mut findings = Vec::new();
    let (api, api_works) = scenarios::api_auth(client, request).await;
    findings.push(api);
    let client = client.filter(|_| api_works);
    findings.push(scenarios::template(client, request).await);
    let session = request
        .ssh
        .clone()
        .and_then(|target| Session::new(target).ok());
    let mut guest = Guest::open(client, &request.node, u64::from(request.vmid), session).await;
    findings.push(scenarios::ssh(client, &mut guest, request).await);
    findings.push(scenarios::cloud_init(&mut guest).await);
    findings.push(scenarios::docker(&mut guest).await);
    let guest_via = if guest.agent {
        Some(Via::Agent)
    } else if guest.reachable() {
        Some(Via::Ssh)
    } else {
        None
    };
    (
        Diagnosis {
            environment: request.environment.clone(),
            vm_id: request.vmid,
            guest_via,
            findings,
        },
        guest,
    )
}
