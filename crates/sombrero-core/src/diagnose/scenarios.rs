//! The five scenarios of the runbook's troubleshooting guide, each looked at the way its
//! "Diagnosis" block does, with its "Solutions" as the hint.

use pve::Client;

use super::guest::{Guest, key_body};
use super::privileges;
use super::{DiagnoseRequest, Finding, FindingStatus, Scenario};

fn finding(scenario: Scenario, status: FindingStatus, summary: impl Into<String>) -> Finding {
    Finding {
        scenario,
        status,
        summary: summary.into(),
        evidence: Vec::new(),
        hint: None,
    }
}

fn last_lines(text: &str, count: usize) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|line| line.trim_end().to_owned())
        .collect()
}

/// "API Authentication Failed": `/version` with the token, its format, its privileges.
/// The flag says whether the API answered (the other scenarios use it only then).
pub async fn api_auth(client: Option<&Client>, request: &DiagnoseRequest) -> (Finding, bool) {
    let fix = "the runbook's fixes: regenerate the API token in Proxmox (Datacenter > \
               Permissions > API Tokens), check its format `user@realm!tokenid=secret` \
               (TF_VAR_pve_api_token), give it the privileges the stages need, and update \
               .mise.local.toml";
    let Some(client) = client else {
        let mut found = finding(
            Scenario::ApiAuth,
            FindingStatus::Problem,
            request
                .api_problem
                .clone()
                .unwrap_or_else(|| "no API client could be made".to_owned()),
        );
        found.hint = Some(fix.to_owned());
        return (found, false);
    };
    let token = request
        .token_id
        .clone()
        .unwrap_or_else(|| "a ticket (user and password)".to_owned());
    let version = match client.version().await {
        Ok(version) => version,
        Err(error) => {
            let status = if error.is_unauthorized() {
                "the API refused the credentials (401)"
            } else {
                "the API did not answer /version"
            };
            let mut found = finding(Scenario::ApiAuth, FindingStatus::Problem, status);
            found
                .evidence
                .push(format!("GET /version as {token}: {error}"));
            found.hint = Some(fix.to_owned());
            return (found, false);
        }
    };
    let mut found = finding(
        Scenario::ApiAuth,
        FindingStatus::Ok,
        format!("the API answers as {token}"),
    );
    found.evidence.push(format!(
        "GET /version: Proxmox VE {} ({})",
        version.version, version.release
    ));
    match client.permissions().await {
        Ok(held) => {
            let needs = privileges::needs(
                request.vmid,
                request.template_id,
                &request.storage,
                &request.node,
            );
            let missing = privileges::missing(&held, &needs);
            if missing.is_empty() {
                found.evidence.push(format!(
                    "GET /access/permissions: all {} privileges the stages need",
                    needs.len()
                ));
            } else {
                found.status = FindingStatus::Problem;
                found.summary = format!(
                    "the token {token} lacks {} privilege(s) the stages need",
                    missing.len()
                );
                for need in &missing {
                    found.evidence.push(format!(
                        "{} needs {} on {}",
                        need.stage, need.privilege, need.path
                    ));
                }
                found.hint = Some(format!(
                    "grant them (e.g. `pveum acl modify / --tokens '{token}' --roles \
                     PVEVMAdmin,PVEDatastoreUser`), or create the token without privilege \
                     separation; {fix}"
                ));
            }
        }
        Err(error) => found
            .evidence
            .push(format!("GET /access/permissions failed: {error}")),
    }
    (found, true)
}

/// "Template Not Found": the templates on the node, what the configuration and
/// `packer-outputs.json` ask for.
pub async fn template(client: Option<&Client>, request: &DiagnoseRequest) -> Finding {
    let Some(client) = client else {
        return finding(
            Scenario::Template,
            FindingStatus::Unknown,
            "not looked at: the API does not answer",
        );
    };
    let Some(wanted) = request.template_id else {
        return finding(
            Scenario::Template,
            FindingStatus::Ok,
            "no template configured (the VM is adopted or created without one)",
        );
    };
    let fix = format!(
        "the runbook's fixes: build the template (`sombrero build`; the runbook: `mise run \
         deploy-packer`), make template_id in sombrero.toml match packer-outputs.json, and \
         build it on node {} (or set node)",
        request.node
    );
    let listed = match client.vm_list(&request.node).await {
        Ok(list) => list,
        Err(error) => {
            let mut found = finding(
                Scenario::Template,
                FindingStatus::Unknown,
                "cannot list the node's VMs",
            );
            found
                .evidence
                .push(format!("GET /nodes/{}/qemu: {error}", request.node));
            return found;
        }
    };
    let templates: Vec<String> = listed
        .iter()
        .filter(|vm| vm.template)
        .map(|vm| format!("{} ({})", vm.vmid, vm.name.as_deref().unwrap_or("")))
        .collect();
    let mut evidence = vec![format!(
        "templates on node {}: {}",
        request.node,
        if templates.is_empty() {
            "none".to_owned()
        } else {
            templates.join(", ")
        }
    )];
    evidence.push(format!("sombrero.toml asks for template {wanted}"));
    let mut problems = Vec::new();
    if let Some((id, node)) = &request.packer_template {
        evidence.push(format!("packer-outputs.json: template {id} on node {node}"));
        if id != &wanted.to_string() {
            problems.push(format!(
                "packer-outputs.json names template {id}, the configuration {wanted}"
            ));
        }
    }
    let present = listed.iter().find(|vm| vm.vmid == u64::from(wanted));
    match present {
        Some(vm) if vm.template => {}
        Some(_) => problems.push(format!(
            "VM {wanted} exists on {} but is not a template",
            request.node
        )),
        None => problems.push(format!("template {wanted} is not on node {}", request.node)),
    }
    let status = if problems.is_empty() {
        FindingStatus::Ok
    } else {
        FindingStatus::Problem
    };
    let summary = if problems.is_empty() {
        format!("template {wanted} is on node {}", request.node)
    } else {
        problems.join("; ")
    };
    Finding {
        scenario: Scenario::Template,
        status,
        summary,
        evidence,
        hint: (status == FindingStatus::Problem).then_some(fix),
    }
}

/// "SSH Connection Timeout": VM status, agent interfaces vs the configured address,
/// sshd, the firewall's rules for port 22, the key in `authorized_keys`, then SSH itself.
pub async fn ssh(
    client: Option<&Client>,
    guest: &mut Guest<'_>,
    request: &DiagnoseRequest,
) -> Finding {
    let mut evidence = Vec::new();
    let mut causes = Vec::new();
    let mut hints = Vec::new();
    let vmid = u64::from(request.vmid);
    if let Some(client) = client {
        match client.vm_status_opt(&request.node, vmid).await {
            Ok(Some(status)) => {
                let state = format!("{:?}", status.status).to_lowercase();
                evidence.push(format!("VM {vmid} is {state}"));
                if status.status != pve::types::VmState::Running {
                    causes.push(format!("VM {vmid} is {state}"));
                    hints.push(format!(
                        "start it: `sombrero deploy` (or `qm start {vmid}`)"
                    ));
                }
            }
            Ok(None) => {
                causes.push(format!("VM {vmid} does not exist on node {}", request.node));
                hints.push("deploy it: `sombrero deploy`".to_owned());
            }
            Err(error) => evidence.push(format!("VM status unknown: {error}")),
        }
        if guest.agent {
            match client.agent_interfaces(&request.node, vmid).await {
                Ok(interfaces) => {
                    let seen: Vec<String> = interfaces
                        .result
                        .iter()
                        .filter(|interface| interface.name != "lo")
                        .flat_map(|interface| &interface.addresses)
                        .filter(|address| address.address_type == "ipv4")
                        .map(|address| match address.prefix {
                            Some(prefix) => format!("{}/{prefix}", address.address),
                            None => address.address.clone(),
                        })
                        .collect();
                    evidence.push(format!("agent interfaces: {}", seen.join(", ")));
                    if !seen
                        .iter()
                        .any(|address| address == &request.expected_address)
                    {
                        causes.push(format!(
                            "the VM does not have {} (it has {})",
                            request.expected_address,
                            seen.join(", ")
                        ));
                        hints.push("check the network configuration in the VM (cloud-init's ipconfig0, `sombrero plan` shows drift)".to_owned());
                    }
                }
                Err(error) => evidence.push(format!("agent interfaces unavailable: {error}")),
            }
        } else {
            evidence.push("the guest agent does not answer".to_owned());
        }
    }
    if let Some(output) = guest.run("systemctl is-active ssh").await {
        let state = output.stdout.trim().to_owned();
        evidence.push(format!("sshd: {state}"));
        if state != "active" {
            causes.push(format!("sshd is {state}"));
            hints.push("start it: `sudo systemctl start ssh`".to_owned());
        }
    }
    if let Some(output) = guest
        .run("nft -a list ruleset 2>/dev/null | grep -E 'dport (22|\\{[^}]*22)'")
        .await
    {
        let rules: Vec<&str> = output.stdout.lines().map(str::trim).collect();
        let blocking: Vec<&str> = rules
            .iter()
            .copied()
            .filter(|rule| rule.contains("drop") || rule.contains("reject"))
            .collect();
        evidence.push(format!("firewall rules for port 22: {}", rules.len()));
        if let Some(rule) = blocking.first() {
            causes.push(format!("a firewall rule blocks SSH: `{rule}`"));
            hints.push("remove it (`sudo nft delete rule inet sombrero input handle N`, N from `nft -a list ruleset`) or re-run `sombrero configure`, which loads the jump host's firewall again".to_owned());
        } else if !rules.iter().any(|rule| rule.contains("accept")) {
            causes.push("no firewall rule accepts port 22".to_owned());
            hints.push("re-run `sombrero configure` (its firewall accepts SSH)".to_owned());
        }
    }
    if let Some(key) = request.public_key.as_deref().and_then(key_body) {
        let file = format!("/home/{}/.ssh/authorized_keys", request.user);
        match guest.read_file(&file).await {
            Some(keys) if keys.contains(key) => evidence.push(format!("{file} has the key")),
            Some(_) => {
                causes.push(format!("{file} does not have the configured public key"));
                hints.push("check SSH keys: the VM authorizes TF_VAR_ci_ssh_key / SOMBRERO_SSH_PUBLIC_KEY_FILE at deploy; redeploy or add it".to_owned());
            }
            None => evidence.push(format!("{file} could not be read")),
        }
    }
    if let Some(session) = guest.ssh.as_ref() {
        match session
            .run("true", std::time::Duration::from_secs(20))
            .await
        {
            Ok(_) => evidence.push(format!("ssh {}: connected", session.target().display())),
            Err(error) => {
                evidence.push(format!("ssh: {error}"));
                if causes.is_empty() {
                    causes.push(format!("SSH fails: {error}"));
                    if let Some(hint) = error.hint() {
                        hints.push(hint);
                    }
                }
            }
        }
    } else {
        evidence.push("no stage 2 outputs: SSH not tried".to_owned());
    }
    let status = if !causes.is_empty() {
        FindingStatus::Problem
    } else if !guest.agent && guest.ssh.is_none() {
        FindingStatus::Unknown
    } else {
        FindingStatus::Ok
    };
    Finding {
        scenario: Scenario::SshTimeout,
        status,
        summary: if causes.is_empty() {
            "SSH works".to_owned()
        } else {
            causes.join("; ")
        },
        evidence,
        hint: (!hints.is_empty()).then(|| hints.join("; ")),
    }
}

/// "Cloud-init Degraded State": `cloud-init status --long` and the errors in its logs.
pub async fn cloud_init(guest: &mut Guest<'_>) -> Finding {
    let Some(output) = guest.run("cloud-init status --long 2>&1").await else {
        return finding(
            Scenario::CloudInit,
            FindingStatus::Unknown,
            "not looked at: no way into the guest",
        );
    };
    let status = output
        .stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("status:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let degraded = output.stdout.contains("degraded");
    if status == "done" && !degraded {
        return finding(
            Scenario::CloudInit,
            FindingStatus::Ok,
            "cloud-init status: done",
        );
    }
    let mut evidence: Vec<String> = last_lines(&output.stdout, 8);
    if let Some(log) = guest
        .run("grep -E ' (ERROR|WARNING|CRITICAL)|Traceback' /var/log/cloud-init.log | tail -n 5")
        .await
    {
        evidence.extend(
            last_lines(&log.stdout, 5)
                .into_iter()
                .map(|line| format!("cloud-init.log: {line}")),
        );
    }
    Finding {
        scenario: Scenario::CloudInit,
        status: FindingStatus::Problem,
        summary: format!(
            "cloud-init status: {status}{}",
            if degraded { " (degraded)" } else { "" }
        ),
        evidence,
        hint: Some(
            "the runbook: most services work despite a degraded cloud-init; run `sombrero \
             configure` (the Ansible playbook) for the complete configuration; the logs are \
             /var/log/cloud-init.log and /var/log/cloud-init-output.log (`sombrero diagnose \
             --bundle FILE` collects them)"
                .to_owned(),
        ),
    }
}

/// "Docker Not Starting": the unit's state and its last journal lines.
pub async fn docker(guest: &mut Guest<'_>) -> Finding {
    let Some(output) = guest.run("systemctl is-active docker").await else {
        return finding(
            Scenario::Docker,
            FindingStatus::Unknown,
            "not looked at: no way into the guest",
        );
    };
    let state = output.stdout.trim().to_owned();
    if state == "active" {
        return finding(Scenario::Docker, FindingStatus::Ok, "docker is active");
    }
    let mut evidence = vec![format!("systemctl is-active docker: {state}")];
    if let Some(journal) = guest
        .run("journalctl -u docker --no-pager -n 10 -o short-iso 2>&1")
        .await
    {
        evidence.extend(last_lines(&journal.stdout, 10));
    }
    Finding {
        scenario: Scenario::Docker,
        status: FindingStatus::Problem,
        summary: format!("docker is {state}"),
        evidence,
        hint: Some(
            "start it (`sudo systemctl start docker`) and read `sudo journalctl -u docker`; \
             the runbook's fixes: check the storage driver (`docker info`), that the kernel \
             modules are loaded (overlay, br_netfilter), conflicting firewall rules, and \
             reinstall Docker if necessary"
                .to_owned(),
        ),
    }
}
