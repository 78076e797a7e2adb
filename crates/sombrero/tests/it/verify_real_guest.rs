//! Issue 14's tests on a real lab guest, run inside the real-guest journey of
//! `deploy_real_guest.rs` (the built, deployed and configured VM 151, so CI boots it
//! once): every check of the full, quick and Docker suites passes, and a host key other
//! than the pinned one is refused naming the file; then the guest is
//! broken on purpose (Docker stopped, a failed unit, another hostname, cloud-init's status
//! forced to error) and exactly the matching checks fail while the rest still run, and
//! `diagnose` names the causes with the runbook's fixes; last, a firewall rule that drops
//! SSH, inserted through the guest agent, makes verify fail at SSH and `diagnose` find
//! the rule through the agent, and its bundle holds the guest's logs without a secret.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sombrero_core::history::{RunStatus, Store};

use crate::sandbox::Sandbox;
use crate::verify_cli::finding;

fn json(outcome: &crate::sandbox::Outcome) -> Value {
    serde_json::from_str(&outcome.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}{}", outcome.stdout, outcome.stderr))
}

/// The names of the checks with `status`.
fn named(report: &Value, status: &str) -> BTreeSet<String> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|check| check["status"] == status)
        .filter_map(|check| check["name"].as_str().map(str::to_owned))
        .collect()
}

/// Every suite passes on the configured guest; the records are in the file and history.
pub fn every_check_passes(sandbox: &Sandbox, outputs_dir: &Path) {
    let outcome = sandbox.run(&["verify", "--env", "development", "--json"]);
    let report = json(&outcome);
    assert_eq!(outcome.code, Some(0), "{report:#}");
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.len() >= 26, "{}", checks.len());
    assert!(named(&report, "fail").is_empty(), "{report:#}");
    assert!(named(&report, "skip").is_empty(), "{report:#}");
    for check in checks {
        assert!(
            check["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{check}"
        );
        assert!(check["duration_ms"].is_u64(), "{check}");
        assert!(check["group"].is_string(), "{check}");
    }
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(outputs_dir.join("verify-results.json")).expect("results"),
    )
    .expect("json");
    assert_eq!(written, report);
    let store = Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("db");
    let detail = store.run_detail(None).expect("run");
    assert_eq!(
        (detail.run.command.as_str(), detail.run.status),
        ("verify", RunStatus::Success)
    );
    assert_eq!(detail.phases[0].name, "verify");
    assert_eq!(detail.phases[0].status, RunStatus::Success);
    // The runbook's deployment record fills its "Verification Tests" line from it.
    let checklist = sandbox.run(&["checklist"]).expect_code(0);
    let record =
        std::fs::read_to_string(sandbox.path().join(checklist.stdout.trim())).expect("checklist");
    let line = record
        .lines()
        .find(|line| line.contains("**Verification Tests**"))
        .expect("a Verification Tests line");
    assert!(!line.contains("N/A"), "{line}");

    let quick = sandbox.run(&["verify", "--quick", "--env", "development", "--json"]);
    let quick = json(&quick.expect_code(0));
    let names: Vec<&str> = quick["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|check| check["name"].as_str())
        .collect();
    assert_eq!(names, ["ssh", "hostname", "uptime"]);
    let docker = sandbox.run(&["verify", "--docker", "--env", "development", "--json"]);
    let docker = json(&docker.expect_code(0));
    for name in [
        "container-run",
        "storage-driver",
        "server-version",
        "compose",
    ] {
        assert!(named(&docker, "pass").contains(name), "{name}: {docker:#}");
    }

    // Another host key pinned: refused, naming the file, and nothing new accepted.
    let known_hosts = outputs_dir.join("known_hosts");
    let pinned = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    let other = sandbox.path().join("verify-forged-host-key");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub")).expect("key");
    let key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    let mut forged = String::new();
    for host in pinned
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        forged.push_str(host);
        forged.push(' ');
        forged.push_str(&key.join(" "));
        forged.push('\n');
    }
    std::fs::write(&known_hosts, &forged).expect("forge");
    let refused = sandbox.run(&["verify", "--quick", "--env", "development", "--json"]);
    let report = json(&refused);
    assert_eq!(refused.code, Some(1), "{report:#}");
    let ssh = &report["checks"][0];
    assert_eq!(ssh["status"], "fail");
    let expected = format!("does not match the one pinned in {}", known_hosts.display());
    assert!(
        ssh["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&expected)),
        "{ssh}"
    );
    assert_eq!(
        std::fs::read_to_string(&known_hosts).expect("known_hosts"),
        forged,
        "no key was accepted"
    );
    std::fs::write(&known_hosts, pinned).expect("restore");
}

/// Breaks the guest four ways; verify fails exactly there, diagnose names the causes.
pub fn broken_guest_fails_where_it_is_broken(sandbox: &Sandbox, ssh: &dyn Fn(&str) -> Command) {
    let broken = ssh(
        "sudo systemctl stop docker.socket docker.service \
         && sudo systemd-run --unit=sombrero-broken --quiet /bin/false \
         && sudo hostname broken-host \
         && sudo python3 -c 'import json; p = \"/var/lib/cloud/data/status.json\"; \
            d = json.load(open(p)); d[\"v1\"][\"modules-final\"][\"errors\"] = [\"forced by the verify test\"]; \
            json.dump(d, open(p, \"w\"))'",
    )
    .output()
    .expect("ssh runs");
    assert!(
        broken.status.success(),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    let outcome = sandbox.run(&["verify", "--env", "development", "--json"]);
    let report = json(&outcome);
    assert_eq!(outcome.code, Some(1), "{report:#}");
    let expected: BTreeSet<String> = [
        "hostname",
        "cloud-init",
        "docker",
        "failed-units",
        "docker-without-sudo",
        "container-run",
        "bridge-network",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(named(&report, "fail"), expected, "{report:#}");
    assert!(
        named(&report, "pass").len() >= 26,
        "the others still ran: {report:#}"
    );
    let detail = |name: &str| {
        report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|check| check["name"] == name)
            .and_then(|check| check["detail"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(detail("hostname"), "expected jump-man, seen broken-host");
    assert!(
        detail("failed-units").contains("sombrero-broken.service"),
        "{report:#}"
    );
    assert!(detail("cloud-init").contains("status: error"), "{report:#}");

    let outcome = sandbox.run(&["diagnose", "--env", "development", "--json"]);
    let diagnosis = json(&outcome);
    assert_eq!(outcome.code, Some(1), "{diagnosis:#}");
    assert_eq!(diagnosis["guest_via"], "agent");
    let cloud = finding(&diagnosis, "cloud-init");
    assert_eq!(cloud["status"], "problem");
    assert!(
        cloud["evidence"]
            .to_string()
            .contains("forced by the verify test"),
        "{cloud}"
    );
    assert!(
        cloud["hint"].to_string().contains("sombrero configure"),
        "{cloud}"
    );
    let docker = finding(&diagnosis, "docker");
    assert_eq!(docker["status"], "problem");
    assert!(
        docker["summary"].to_string().contains("docker is inactive"),
        "{docker}"
    );
    assert!(
        docker["hint"].to_string().contains("storage driver"),
        "{docker}"
    );
    assert_eq!(finding(&diagnosis, "ssh-timeout")["status"], "ok");
    assert_eq!(finding(&diagnosis, "template")["status"], "ok");
    assert_eq!(finding(&diagnosis, "api-auth")["status"], "ok");
}

/// A rule dropping SSH, inserted through the agent: verify fails at SSH, diagnose finds
/// the rule without SSH, and the bundle has the logs but no secret.
pub fn ssh_dropped_by_the_firewall(sandbox: &Sandbox, secrets: &[&str]) {
    let rule = [
        "command=nft",
        "command=insert",
        "command=rule",
        "command=inet",
        "command=sombrero",
        "command=input",
        "command=tcp",
        "command=dport",
        "command=22",
        "command=drop",
    ];
    let mut args = vec!["api", "post", "/nodes/lloyd/qemu/151/agent/exec"];
    args.extend(rule);
    sandbox.run(&args).expect_code(0);
    std::thread::sleep(std::time::Duration::from_secs(1));

    let outcome = sandbox.run(&["verify", "--quick", "--env", "development", "--json"]);
    let report = json(&outcome);
    assert_eq!(outcome.code, Some(1), "{report:#}");
    assert_eq!(named(&report, "fail"), BTreeSet::from(["ssh".to_owned()]));
    assert_eq!(named(&report, "skip").len(), 2, "{report:#}");

    let bundle = sandbox.path().join("diagnose.tar.gz");
    let outcome = sandbox.run(&[
        "diagnose",
        "--env",
        "development",
        "--json",
        "--bundle",
        &bundle.display().to_string(),
    ]);
    let diagnosis = json(&outcome);
    assert_eq!(outcome.code, Some(1), "{diagnosis:#}");
    let ssh = finding(&diagnosis, "ssh-timeout");
    assert_eq!(ssh["status"], "problem", "{ssh}");
    let summary = ssh["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("a firewall rule blocks SSH"), "{ssh}");
    assert!(summary.contains("tcp dport 22 drop"), "{ssh}");
    assert!(ssh["hint"].to_string().contains("nft delete rule"), "{ssh}");

    let (listing, contents) = crate::verify_cli::read_bundle(&bundle);
    for name in [
        "guest/cloud-init.log",
        "guest/journal-docker.txt",
        "guest/nft-ruleset.txt",
        "outputs/terraform-outputs.json",
        "outputs/verify-results.json",
        "configuration.json",
    ] {
        assert!(
            listing.contains(&format!("sombrero-diagnose/{name}")),
            "{name}: {listing}"
        );
    }
    assert!(listing.contains("sombrero-diagnose/tasks/"), "{listing}");
    assert!(
        contents.contains("tcp dport 22 drop"),
        "the ruleset is in the bundle"
    );
    for secret in secrets {
        assert!(!contents.contains(secret), "a secret is in the bundle");
    }
}
