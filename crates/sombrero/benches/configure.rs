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

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

const ROUNDS: usize = 3;
const BINARY: &str = env!("CARGO_BIN_EXE_sombrero");

fn which(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `sombrero ARGS` in `dir` with `env`, timed; panics on failure.
fn sombrero(dir: &Path, env: &[(String, String)], args: &[&str]) -> f64 {
    let started = Instant::now();
    let output = Command::new(BINARY)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "sombrero {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    seconds
}

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
    let missing: Vec<&str> = ["qemu-system-x86_64", "ansible-playbook", "ssh-keygen"]
        .into_iter()
        .filter(|tool| !which(tool))
        .collect();
    if !missing.is_empty()
        || pve_lab::guest::ImageStore::default_location()
            .find()
            .is_none()
    {
        println!("configure benchmark skipped: missing {missing:?} or the lab image");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(
        dir.join("sombrero.toml"),
        include_str!("../../../sombrero.toml"),
    )
    .unwrap();
    let key = dir.join("jump-key");
    assert!(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let serve = Command::new(BINARY)
        .args(["lab", "serve", "--json", "--listen", "127.0.0.1:0"])
        .args(["--guests", "qemu", "--with-template", "--state"])
        .arg(dir.join("lab-state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed (with its QEMU) however the benchmark ends.
    let mut serve = KillOnDrop(serve);
    let mut line = String::new();
    BufReader::new(serve.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap();
    let tree: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible");
    let env: Vec<(String, String)> = [
        ("TF_VAR_pve_api_url", ready["url"].as_str().unwrap()),
        ("TF_VAR_pve_api_token", ready["token"].as_str().unwrap()),
        (
            "SOMBRERO_PVE_FINGERPRINT",
            ready["fingerprint"].as_str().unwrap(),
        ),
        (
            "SOMBRERO_SSH_PUBLIC_KEY_FILE",
            &key.with_extension("pub").display().to_string(),
        ),
        ("SOMBRERO_ANSIBLE_DIR", &tree.display().to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();

    sombrero(dir, &env, &["deploy", "--env", "development", "--yes"]);
    let first = sombrero(dir, &env, &["configure", "--env", "development"]);
    let first_ansible = results(dir)["ansible_seconds"].as_f64().unwrap();
    println!(
        "first configure (fresh guest): sombrero {first:.1} s, Ansible's own span {first_ansible:.1} s, ratio {:.3}",
        first / first_ansible
    );
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let baseline = plain_ansible(dir, &tree, &key);
        let wall = sombrero(dir, &env, &["configure", "--env", "development"]);
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

/// A child process killed when dropped (also when the benchmark panics).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
