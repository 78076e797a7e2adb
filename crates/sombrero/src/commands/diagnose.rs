//! `sombrero diagnose`: the runbook's troubleshooting guide, run against the environment.
//!
//! Why it works without outputs or credentials: the questions it answers ("why does the
//! API refuse me?", "where is the template?") come up before anything was deployed, so
//! a missing API URL or token is a finding, not an error. Exit 1 when a finding is a
//! problem, so a pipeline can gate on it; the findings go to stdout (text or `--json`).

use std::fmt::Write as _;

use sombrero_core::build::{PACKER_OUTPUTS, PackerOutputs};
use sombrero_core::deploy::placement::Cluster;
use sombrero_core::deploy::{Layout, outputs};
use sombrero_core::diagnose::{self, DiagnoseRequest, Diagnosis, FindingStatus, bundle};
use sombrero_core::settings::Settings;
use sombrero_core::ssh::SshTarget;

use super::configure::private_key;
use crate::cli::DiagnoseArgs;
use crate::context::Context;
use crate::exit::ExitStatus;

fn render(diagnosis: &Diagnosis) -> String {
    let mut text = String::new();
    for finding in &diagnosis.findings {
        let mark = match finding.status {
            FindingStatus::Ok => "✓",
            FindingStatus::Problem => "✗",
            FindingStatus::Unknown => "?",
        };
        let _ = writeln!(
            text,
            "{mark} {}: {}",
            finding.scenario.title(),
            finding.summary
        );
        for line in &finding.evidence {
            let _ = writeln!(text, "    {line}");
        }
        if let Some(hint) = &finding.hint {
            let _ = writeln!(text, "  fix: {hint}");
        }
    }
    let via = diagnosis
        .guest_via
        .map_or("no way in (agent and SSH failed)", |via| match via {
            diagnose::Via::Agent => "the guest agent",
            diagnose::Via::Ssh => "SSH",
        });
    let _ = write!(
        text,
        "{} problem(s) on VM {} of environment {} (inside the guest through {via})",
        diagnosis.problems(),
        diagnosis.vm_id,
        diagnosis.environment
    );
    text
}

fn packer_template(settings: &Settings) -> Option<(String, String)> {
    let path = settings.paths.outputs_dir.value.join(PACKER_OUTPUTS);
    let text = std::fs::read_to_string(path).ok()?;
    let outputs: PackerOutputs = serde_json::from_str(&text).ok()?;
    Some((outputs.template_id, outputs.node))
}

fn request(context: &Context) -> (DiagnoseRequest, Layout) {
    let settings = &context.settings;
    let environment = settings.environment.value.clone();
    let layout = Layout::new(&settings.paths.outputs_dir.value, &environment);
    let ssh = outputs::read(&layout).and_then(|outputs| {
        let key = private_key(settings).ok()?;
        Some(SshTarget::from_outputs(&outputs, key))
    });
    let vm = &settings.vm;
    let public_key = settings
        .ssh_public_key(|path| std::fs::read_to_string(path))
        .ok()
        .map(|key| key.as_str().to_owned());
    let token_id = settings.api_identity();
    (
        DiagnoseRequest {
            environment,
            node: vm.node.value.preferred().unwrap_or_default().to_owned(),
            vmid: vm.vmid.value,
            template_id: vm.template_id.as_ref().map(|id| id.value),
            packer_template: packer_template(settings),
            expected_address: vm.ip.value.to_string(),
            user: vm.ciuser.value.clone(),
            public_key,
            ssh,
            token_id,
            storage: vm.disk_storage.value.clone(),
            api_problem: None,
        },
        layout,
    )
}

/// Looks the VM up cluster-wide (it may have been migrated, or placed by `node = "auto"`)
/// and diagnoses it where it is; a VM that does not exist keeps the configured node, or
/// (auto) the first online one. A failed read is left for the diagnosis to report.
async fn locate(client: &pve::Client, request: &mut DiagnoseRequest) {
    let Ok(cluster) = Cluster::read(client).await else {
        return;
    };
    if let Some(node) = cluster.node_of(u64::from(request.vmid)) {
        node.clone_into(&mut request.node);
    } else if request.node.is_empty()
        && let Some(online) = cluster.nodes.iter().find(|node| node.online)
    {
        request.node.clone_from(&online.name);
    }
}

/// Runs `sombrero diagnose`.
///
/// # Errors
/// The bundle cannot be written (exit 1). Problems found are exit 1 without an error.
pub async fn run(args: &DiagnoseArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let (mut request, layout) = request(context);
    let client = match context.client() {
        Ok(client) => Some(client),
        Err(error) => {
            request.api_problem = Some(format!("no API client: {error:#}"));
            None
        }
    };
    if let Some(client) = client {
        locate(client, &mut request).await;
    }
    if !printer.json_mode() {
        printer.info(&format!(
            "→ looking at VM {} on node {} (API, guest agent, SSH)",
            request.vmid, request.node
        ));
    }
    let (diagnosis, mut guest) = diagnose::run(client, &request).await;
    if let Some(path) = &args.bundle {
        let input = bundle::BundleInput {
            diagnosis: &diagnosis,
            outputs_dir: layout.environment_dir(),
            configuration: serde_json::to_string_pretty(&context.settings)?,
            node: request.node.clone(),
        };
        let files = bundle::collect(client, &mut guest, &input).await;
        let api = &context.settings.api;
        let secrets = api
            .token
            .as_ref()
            .map(|token| token.value.secret().expose().to_owned())
            .into_iter()
            .chain(
                api.password
                    .as_ref()
                    .map(|password| password.value.expose().to_owned()),
            );
        bundle::write(path, &files, &bundle::Redactor::new(secrets)).map_err(|error| {
            anyhow::anyhow!("cannot write the bundle {}: {error}", path.display())
        })?;
        if !printer.json_mode() {
            printer.info(&format!(
                "bundle: {} ({} files, secrets redacted)",
                path.display(),
                files.len()
            ));
        }
    }
    drop(guest);
    if printer.json_mode() {
        printer.json(&diagnosis)?;
    } else {
        printer.data(&render(&diagnosis));
    }
    Ok(if diagnosis.problems() == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
