//! Benchmark: `sombrero verify`'s full suite over one multiplexed SSH connection with
//! checks in parallel, against the same checks run the original `smoke-test.sh`'s way
//! (a new SSH connection per check, one after another: `verify
//! --one-connection-per-check`) on the same guest in the same run (issue 14, goal: at
//! least 5x faster). Reproduce with `cargo bench -p sombrero --bench verify` (needs QEMU,
//! the lab image and ansible-playbook; about 8 minutes under TCG, most of it the setup).
//!
//! Why alternate: A B A B on one guest, so a drifting machine moves both sides. The
//! guest is a lab QEMU guest deployed and configured by the binary, with the packages a
//! golden template has (installed from the image's staged repository), so every check
//! passes on both sides and both do the same work.
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{missing, project_and_lab, sombrero};
use serde_json::Value;

const ROUNDS: usize = 5;

/// Installs what the golden template would have (the seeded stand-in lacks it).
fn golden_packages(dir: &Path) {
    let outputs: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.join("deployments/outputs/development/terraform-outputs.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let status = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            outputs["known_hosts_file"].as_str().unwrap()
        ))
        .arg("-i")
        .arg(dir.join("jump-key"))
        .arg("-p")
        .arg(outputs["ssh_port"].to_string())
        .arg("ansible@127.0.0.1")
        .arg("sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux curl wget jq >/dev/null")
        .status()
        .unwrap();
    assert!(status.success());
}

/// One run: wall seconds and the number of checks that passed.
fn verify(dir: &Path, env: &[(String, String)], per_check: bool) -> (f64, usize) {
    let mut args = vec!["verify", "--env", "development", "--json"];
    if per_check {
        args.push("--one-connection-per-check");
    }
    let (seconds, stdout) = sombrero(dir, env, &args);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let passed = usize::try_from(report["passed"].as_u64().unwrap()).unwrap();
    assert_eq!(report["failed"], 0, "{report:#}");
    (seconds, passed)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let missing = missing(&["qemu-system-x86_64", "ansible-playbook", "ssh-keygen"]);
    if !missing.is_empty() {
        println!("verify benchmark skipped: missing {missing:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (serve, env) = project_and_lab(dir);
    sombrero(dir, &env, &["deploy", "--env", "development", "--yes"]);
    sombrero(dir, &env, &["configure", "--env", "development"]);
    golden_packages(dir);
    // One unmeasured run each: page caches and Docker's first container start.
    verify(dir, &env, false);
    verify(dir, &env, true);
    let (mut shared, mut separate, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (baseline, checks) = verify(dir, &env, true);
        let (wall, same) = verify(dir, &env, false);
        assert_eq!(checks, same, "both ran the same checks");
        println!(
            "round {round}: {checks} checks, one SSH connection per check, sequential {baseline:.2} s; \
             one connection, parallel {wall:.2} s; speed-up {:.2}x",
            baseline / wall
        );
        shared.push(wall);
        separate.push(baseline);
        ratios.push(baseline / wall);
    }
    println!(
        "median over {ROUNDS} rounds: sequential per-check {:.2} s, shared connection {:.2} s, \
         speed-up {:.2}x (min {:.2} s, max {:.2} s shared)",
        median(&mut separate),
        median(&mut shared),
        median(&mut ratios),
        shared.iter().copied().fold(f64::INFINITY, f64::min),
        shared.iter().copied().fold(0.0, f64::max),
    );
    drop(serve);
}
