//! Issue 16's "`migrate` online of a real QEMU guest keeps SSH with the pinned key", called
//! by `deploy_real_guest.rs` on its guest (VM 151, development) in its two-node lab
//! (`lloyd`, `pve2`): a live migration to pve2 and back. Before, between and after, `ssh`
//! exactly as the inventory says (the pinned `known_hosts`, `StrictHostKeyChecking=yes`)
//! reaches the same boot of the guest (its `boot_id` does not change: no reboot), a deploy
//! in between changes nothing, and the outputs name the node the VM is on.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::sandbox::Sandbox;

fn outputs(outputs_dir: &Path) -> Value {
    let text =
        std::fs::read_to_string(outputs_dir.join("terraform-outputs.json")).expect("outputs");
    serde_json::from_str(&text).expect("json")
}

/// The guest's boot id and hostname, through `ssh` as the current outputs' inventory says.
fn boot_id(outputs_dir: &Path, ssh: &dyn Fn(&Value, &str) -> Command) -> String {
    let inventory = outputs(outputs_dir)["ansible_inventory"].clone();
    let output = ssh(&inventory, "hostname; cat /proc/sys/kernel/random/boot_id")
        .output()
        .expect("ssh runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ssh with the pinned key failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("jump-man"), "{text}");
    lines.next().expect("boot id").to_owned()
}

/// Live migration to pve2 and back; returns the seconds the two migrations took.
pub fn live_migration_keeps_ssh(
    sandbox: &Sandbox,
    outputs_dir: &Path,
    ssh: &dyn Fn(&Value, &str) -> Command,
) -> f64 {
    let before = boot_id(outputs_dir, ssh);
    let started = std::time::Instant::now();
    for (from, to) in [("lloyd", "pve2"), ("pve2", "lloyd")] {
        let moved = sandbox
            .run(&["migrate", "--env", "development", "--to", to, "--online"])
            .expect_code(0);
        assert!(
            moved
                .stdout
                .contains(&format!("moved from {from} to {to} (live")),
            "{}",
            moved.stdout
        );
        assert_eq!(outputs(outputs_dir)["node"], to);
        assert_eq!(
            boot_id(outputs_dir, ssh),
            before,
            "the guest was not rebooted by the live migration to {to}"
        );
        if to == "pve2" {
            sandbox
                .run(&["deploy", "--env", "development", "--yes"])
                .expect_code(0)
                .stderr_has("action: no changes")
                .stderr_has(" 0 writes")
                .stderr_has("node pve2: VM 151 found there");
        }
    }
    started.elapsed().as_secs_f64()
}
