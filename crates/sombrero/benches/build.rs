//! Benchmark: `sombrero build` (issue 13). Reproduce with `cargo bench -p sombrero --bench
//! build` (needs QEMU, the lab image and ansible-playbook; about 15 minutes under TCG).
//!
//! Why this split: a build is mostly the guest's own work (boot, package installs as
//! Ansible times them, generalizing, ACPI shutdown); what sombrero adds is API calls,
//! waits between steps and Ansible's start-up. The build's `--json` report carries both,
//! measured in the same run; the goal is sombrero's own time <= 10% of the build. Then
//! the deploy from the built template against the lab's seeded stand-in (template 1001),
//! alternating (A B A B) on the same lab, each deploy followed by a destroy.
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

mod common;

use common::{missing, project_and_lab, sombrero};
use serde_json::Value;

const ROUNDS: usize = 2;

fn main() {
    let missing = missing(&["qemu-system-x86_64", "ansible-playbook", "ssh-keygen"]);
    if !missing.is_empty() {
        println!("build benchmark skipped: missing {missing:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (serve, env) = project_and_lab(dir);

    let (wall, report) = sombrero(dir, &env, &["build", "--template-id", "1002", "--json"]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let timings = &report["timings"];
    let seconds = |name: &str| timings[name].as_f64().unwrap();
    let guest = seconds("boot_seconds") + seconds("ansible_seconds") + seconds("shutdown_seconds");
    let total = seconds("total_seconds");
    println!(
        "build: wall {wall:.1} s (report {total:.1} s): boot {:.1} s, Ansible {:.1} s, shutdown {:.1} s; \
         guest {guest:.1} s, sombrero's own {:.1} s = {:.3} of the build",
        seconds("boot_seconds"),
        seconds("ansible_seconds"),
        seconds("shutdown_seconds"),
        total - guest,
        (total - guest) / total
    );

    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let deploy = |template: &str| {
            let (seconds, _) = sombrero(
                dir,
                &env,
                &[
                    "deploy",
                    "--env",
                    "development",
                    "--yes",
                    "--template",
                    template,
                ],
            );
            sombrero(dir, &env, &["destroy", "--env", "development", "--yes"]);
            seconds
        };
        let stand_in = deploy("1001");
        let built = deploy("1002");
        ratios.push(built / stand_in);
        println!(
            "round {round}: deploy to SSH from the seeded stand-in {stand_in:.1} s, from the built \
             template {built:.1} s: built / stand-in = {:.3}",
            built / stand_in
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median built / stand-in over {ROUNDS} rounds: {:.3}",
        ratios[ratios.len() / 2]
    );
    drop(serve);
}
