//! `sombrero doctor`: the runbook's prerequisites for the selected environment, one
//! line each (ok, warn, fail) with what to do. Exit 1 when any fails.
//!
//! Why the machine's tools too: the runbook's prerequisites start with what must be
//! installed (ssh, Ansible, and QEMU for the lab); a missing one is found here, not in
//! the middle of stage 3.

use std::fmt::Write as _;
use std::process::Command;

use sombrero_core::configure;
use sombrero_core::doctor::{self, ClusterInput, Level, Line};
use sombrero_core::settings::Settings;

use super::configure::{cache_dir, private_key};
use super::stage2::{KeyUse, Stage2};
use crate::context::Context;
use crate::exit::ExitStatus;
use sombrero_core::deploy::placement::Purpose;

/// The first line a tool prints for `args` (stdout or stderr), if it runs.
fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|line| line.trim().to_owned())
}

fn tools() -> Vec<Line> {
    let mut lines = vec![match version_of("ssh", &["-V"]) {
        Some(version) => Line::ok("ssh", version),
        None => Line::fail(
            "ssh",
            "no OpenSSH client on PATH",
            Some("install openssh-client: configure, verify and build use it".to_owned()),
        ),
    }];
    lines.push(match configure::ansible::find(&cache_dir()) {
        Some(found) => Line::ok("ansible", found.describe()),
        None if version_of("python3", &["--version"]).is_some() => Line::warn(
            "ansible",
            "no ansible-playbook 2.15+ on PATH",
            "the first `sombrero configure` installs ansible-core privately from PyPI",
        ),
        None => Line::fail(
            "ansible",
            "neither ansible-playbook nor python3 on PATH",
            Some("install python3 (or `python3 -m pip install ansible-core`)".to_owned()),
        ),
    });
    lines.push(match version_of("qemu-system-x86_64", &["--version"]) {
        Some(version) => Line::ok("qemu", version),
        None => Line::warn(
            "qemu",
            "no qemu-system-x86_64",
            "only the lab's real guests need it: install qemu-system-x86",
        ),
    });
    lines
}

fn tls(settings: &Settings) -> Line {
    let plain = settings
        .api
        .url
        .as_ref()
        .is_some_and(|url| url.value.scheme() == "http");
    if plain {
        return Line::warn(
            "tls",
            "plain http: nothing is verified",
            "use https (accepted for a loopback address only)",
        );
    }
    match settings.tls_mode() {
        pve::TlsMode::Fingerprint(_) => Line::ok("tls", "certificate pinned by fingerprint"),
        pve::TlsMode::CaFile(path) => Line::ok(
            "tls",
            format!("verified against the CA in {}", path.display()),
        ),
        pve::TlsMode::SystemRoots => Line::ok("tls", "verified against the system's trust store"),
        _ => Line::warn(
            "tls",
            "verification off (insecure)",
            "pin the certificate instead: SOMBRERO_PVE_FINGERPRINT (`sombrero api get /version` \
             prints it when it is untrusted)",
        ),
    }
}

fn ssh_keys(settings: &Settings) -> Line {
    if let Err(error) = settings.ssh_public_key(|path| std::fs::read_to_string(path)) {
        return Line::fail("ssh key", error.to_string(), error.hint());
    }
    match private_key(settings) {
        Ok(key) => Line::ok(
            "ssh key",
            format!("public key set, private key {}", key.describe()),
        ),
        Err(error) => Line::fail("ssh key", error.to_string(), error.hint()),
    }
}

pub fn render(lines: &[Line]) -> String {
    let mut text = String::new();
    for line in lines {
        let mark = match line.level {
            Level::Ok => "✓",
            Level::Warn => "!",
            Level::Fail => "✗",
        };
        let _ = writeln!(text, "{mark} {:<24} {}", line.name, line.detail);
        if let Some(hint) = &line.hint {
            let _ = writeln!(text, "  {:<24} hint: {hint}", "");
        }
    }
    let count = |level| lines.iter().filter(|line| line.level == level).count();
    let _ = write!(
        text,
        "{} checks: {} ok, {} warn, {} fail",
        lines.len(),
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    );
    text
}

/// Every check, in order (`up` runs them as its preflight).
///
/// # Errors
/// A template hand-off file that cannot be read (exit 2).
pub async fn checks(context: &Context) -> anyhow::Result<Vec<Line>> {
    let settings = &context.settings;
    let mut lines = tools();
    lines.push(tls(settings));
    lines.push(ssh_keys(settings));
    match context.client() {
        Ok(client) => {
            let stage = Stage2::prepared(context, false, KeyUse::Optional, Purpose::Find).await?;
            let identity = settings.api_identity().unwrap_or_default();
            let input = ClusterInput {
                desired: &stage.desired,
                storage: settings.vm.disk_storage.value.clone(),
                bridge: settings.vm.bridge.value.clone(),
                disk_gib: settings.vm.disk_size_gib.value,
                template_id: settings.vm.template_id.as_ref().map(|id| id.value),
                base_image: settings.build.base_image.value.clone(),
                base_image_url: settings
                    .build
                    .base_image_url
                    .as_ref()
                    .map(|url| url.value.clone()),
                identity,
            };
            lines.extend(doctor::cluster(client, &input).await);
        }
        Err(error) => lines.push(Line::fail(
            "api",
            format!("{error:#}"),
            crate::exit::hint_for(&error),
        )),
    }
    Ok(lines)
}

/// Runs `sombrero doctor`.
///
/// # Errors
/// As [`checks`]. Failed checks are exit 1 without an error.
pub async fn run(context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let lines = checks(context).await?;
    if printer.json_mode() {
        printer.json(&lines)?;
    } else {
        printer.data(&render(&lines));
    }
    Ok(if lines.iter().any(|line| line.level == Level::Fail) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
