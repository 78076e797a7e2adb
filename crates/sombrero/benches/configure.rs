//! Benchmark: what `sombrero configure` adds around Ansible itself (issue 12, goal: at
//! most 10%). Reproduce with `cargo bench -p sombrero --bench configure` (needs QEMU, the
//! lab image and ansible-playbook; about 15 minutes under TCG).
//!
//! Why this baseline: the same playbook, inventory and variables run by a plain
//! `ansible-playbook`, in the same session against the same guest, alternating with
//! `sombrero configure` (A B A B), so a drifting machine moves both. The guest is a real
//! lab QEMU guest deployed by the binary; the first configure (fresh guest, Docker
//! installed) is timed once, then the no-change runs are compared pair by pair. Also
//! printed: Ansible's own span (first event to recap, from its events) inside each
//! sombrero run.
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{missing, project_and_lab, sombrero};
use serde_json::Value;

const ROUNDS: usize = 3;

fn results(dir: &Path) -> Value {
    let text =
        std::fs::read_to_string(dir.join("deployments/outputs/development/ansible-results.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The same playbook run by hand: what an operator without sombrero runs.
fn plain_ansible(dir: &Path, tree: &Path, key: &Path) -> f64 {
    let vars = serde_json::json!({
        "sombrero_version": env!("CARGO_PKG_VERSION"),
        "jump_man_user": "ansible",
        "ssh_allow_users": ["ansible"],
        "extra_authorized_keys": [],
        "ansible_ssh_private_key_file": key,
    });
    let vars_file = dir.join("bench-vars.json");
    std::fs::write(&vars_file, vars.to_string()).unwrap();
    let started = Instant::now();
    let output = Command::new("ansible-playbook")
        .arg("-i")
        .arg(dir.join("deployments/outputs/development/inventory.yml"))
        .arg(tree.join("playbooks/post-deploy.yml"))
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .current_dir(tree)
        .env("ANSIBLE_CONFIG", tree.join("ansible.cfg"))
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("changed=0"), "a no-change run: {text}");
    seconds
}

fn main() {
    let missing = missing(&["qemu-system-x86_64", "ansible-playbook", "ssh-keygen"]);
    if !missing.is_empty() {
        println!("configure benchmark skipped: missing {missing:?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let key = dir.join("jump-key");
    let (serve, mut env) = project_and_lab(dir);
    let tree: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible");
    env.push((
        "SOMBRERO_ANSIBLE_DIR".to_owned(),
        tree.display().to_string(),
    ));

    sombrero(dir, &env, &["deploy", "--env", "development", "--yes"]);
    let (first, _) = sombrero(dir, &env, &["configure", "--env", "development"]);
    let first_ansible = results(dir)["ansible_seconds"].as_f64().unwrap();
    println!(
        "first configure (fresh guest): sombrero {first:.1} s, Ansible's own span {first_ansible:.1} s, ratio {:.3}",
        first / first_ansible
    );
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let baseline = plain_ansible(dir, &tree, &key);
        let (wall, _) = sombrero(dir, &env, &["configure", "--env", "development"]);
        let span = results(dir)["ansible_seconds"].as_f64().unwrap();
        let ratio = wall / baseline;
        ratios.push(ratio);
        println!(
            "round {round}: plain ansible-playbook {baseline:.1} s, sombrero configure {wall:.1} s \
             (Ansible's own span {span:.1} s): sombrero / plain = {ratio:.3}, sombrero / span = {:.3}",
            wall / span
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median sombrero / plain ansible-playbook over {ROUNDS} rounds: {:.3}",
        ratios[ratios.len() / 2]
    );
    drop(serve);
}
