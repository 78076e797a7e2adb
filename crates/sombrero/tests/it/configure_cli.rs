//! `sombrero configure`'s errors that need no guest (issue 12, items 5 to 8): no stage 2
//! outputs (exit 2), no private key (exit 2, naming where it looked), `--lab`'s state-only
//! guests (exit 2), an unreachable VM (exit 1 with a failed phase), Ansible nowhere and
//! not installable (exit 1), and the private install from `PyPI` when only Python is there.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sombrero_core::history::{RunStatus, Store};

use crate::sandbox::Sandbox;

/// A fresh key pair in `dir`; returns the private key's path.
pub fn key_pair(dir: &Path) -> PathBuf {
    let key = dir.join("id_test");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    key
}

/// Stage 2 outputs for `development` whose SSH endpoint is a closed loopback port.
pub fn outputs_to_a_closed_port(sandbox: &Sandbox) {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let dir = sandbox.path().join("deployments/outputs/development");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("known_hosts"), "").expect("known_hosts");
    std::fs::write(dir.join("inventory.yml"), "all: {}\n").expect("inventory");
    let outputs = json!({
        "vm_ip": "192.168.10.251", "vm_hostname": "jump-man", "vm_id": "151",
        "ssh_user": "ansible", "ssh_key_path": null, "ansible_inventory": {"all": {}},
        "node": "lloyd", "template_id": "1001", "environment": "development",
        "ssh_host": "127.0.0.1", "ssh_port": port,
        "known_hosts_file": dir.join("known_hosts"), "inventory_file": dir.join("inventory.yml"),
        "deployed_at": "2026-12-04T18:00:00Z"
    });
    std::fs::write(dir.join("terraform-outputs.json"), outputs.to_string()).expect("outputs");
}

/// A directory holding only links to `names` found on this PATH (so `ansible-playbook`
/// can be left out).
fn path_with(dir: &Path, names: &[&str]) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for name in names {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .expect("sh");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        assert!(!path.is_empty(), "{name} is on PATH");
        std::os::unix::fs::symlink(&path, bin.join(name)).expect("link");
    }
    bin
}

#[test]
fn without_stage_two_outputs_configure_says_to_deploy_first() {
    Sandbox::new()
        .run(&["configure", "--env", "staging"])
        .expect_code(2)
        .stderr_has("environment staging has no stage 2 outputs")
        .stderr_has("run `sombrero deploy --env staging` first");
}

#[test]
fn without_a_private_key_configure_names_where_it_looked() {
    let sandbox = Sandbox::new().env("TF_VAR_ci_ssh_key", crate::sandbox::SSH_KEY);
    outputs_to_a_closed_port(&sandbox);
    sandbox
        .run(&["configure", "--env", "development"])
        .expect_code(2)
        .stderr_has("no private key for the VM's public key")
        .stderr_has("/.ssh/*.pub holding the key")
        .stderr_has("SOMBRERO_SSH_PRIVATE_KEY_FILE");
    let missing = sandbox.path().join("nowhere/id");
    sandbox
        .command(&["configure", "--env", "development"])
        .env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &missing)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "the configured private key {} (env SOMBRERO_SSH_PRIVATE_KEY_FILE) does not exist",
            missing.display()
        )));
}

#[test]
fn configure_with_lab_says_it_needs_a_real_guest() {
    Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .run(&["configure", "--lab"])
        .expect_code(2)
        .stderr_has("configure needs a real guest")
        .stderr_has("sombrero lab doctor");
}

#[test]
fn an_unreachable_vm_fails_the_cloud_init_phase() {
    let sandbox = Sandbox::new();
    let key = key_pair(sandbox.path());
    let sandbox = sandbox.env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &key.display().to_string());
    outputs_to_a_closed_port(&sandbox);
    sandbox
        .run(&["configure", "--env", "development"])
        .expect_code(1)
        .stderr_has("ansible@127.0.0.1:")
        .stderr_has("is unreachable")
        .stderr_has("Connection refused");
    let store = Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("db");
    let detail = store.run_detail(None).expect("run");
    assert_eq!(detail.run.command, "configure");
    assert_eq!(detail.run.status, RunStatus::Failed);
    let phases: Vec<(&str, RunStatus)> = detail
        .phases
        .iter()
        .map(|phase| (phase.name.as_str(), phase.status))
        .collect();
    assert_eq!(
        phases,
        [
            ("configure:prepare", RunStatus::Success),
            ("configure:cloud-init", RunStatus::Failed)
        ]
    );
}

#[test]
fn with_neither_ansible_nor_python_configure_says_what_to_install() {
    let sandbox = Sandbox::new();
    let key = key_pair(sandbox.path());
    outputs_to_a_closed_port(&sandbox);
    let bin = path_with(sandbox.path(), &["ssh"]);
    sandbox
        .command(&["configure", "--env", "development"])
        .env("PATH", &bin)
        .env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &key)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "Ansible is not installable here: find python3 failed: no python3 on PATH",
        ))
        .stderr(predicates::str::contains(
            "python3 -m pip install ansible-core",
        ));
    let store = Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("db");
    let detail = store.run_detail(None).expect("run");
    assert_eq!(detail.run.status, RunStatus::Failed);
    assert_eq!(
        (detail.phases[0].name.as_str(), detail.phases[0].status),
        ("configure:prepare", RunStatus::Failed)
    );
}

/// Downloads ansible-core and its dependencies from `PyPI` (about 10 MB).
#[test]
fn without_ansible_on_path_configure_installs_it_privately_once() {
    let sandbox = Sandbox::new().timeout(std::time::Duration::from_secs(600));
    let key = key_pair(sandbox.path());
    outputs_to_a_closed_port(&sandbox);
    // The real interpreter, not a pyenv shim (the shims directory also offers
    // ansible-playbook).
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let python = String::from_utf8_lossy(&python.stdout).trim().to_owned();
    let bin = path_with(sandbox.path(), &["ssh"]);
    std::os::unix::fs::symlink(&python, bin.join("python3")).expect("link");
    let first = sandbox
        .command(&["-v", "configure", "--env", "development"])
        .env("PATH", &bin)
        .env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &key)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("installing ansible-core 2.19.14 from PyPI"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ansible: ansible-core 2.19.14 (sombrero's private install"),
        "{stderr}"
    );
    // It got as far as the (closed) VM.
    assert!(stderr.contains("is unreachable"), "{stderr}");
    let venv = sandbox.path().join(".cache/sombrero/ansible/core-2.19.14");
    assert!(venv.join(".sombrero-complete").is_file());
    let again = sandbox
        .command(&["-v", "configure", "--env", "development"])
        .env("PATH", &bin)
        .env("SOMBRERO_SSH_PRIVATE_KEY_FILE", &key)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains("installing ansible-core"), "{stderr}");
    assert!(stderr.contains("sombrero's private install"), "{stderr}");
    // `config show` names it too.
    let shown = sandbox
        .command(&["config", "show"])
        .env("PATH", &bin)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(
        stdout.contains("tools.ansible")
            && stdout.contains("ansible-core 2.19.14 (sombrero's private install: "),
        "{stdout}"
    );
}

#[test]
fn config_show_names_the_ansible_playbook_found_on_path() {
    let sandbox = crate::configure_real_guest::with_python_tools(Sandbox::new());
    let stdout = sandbox.run(&["config", "show"]).expect_code(0).stdout;
    let line = stdout
        .lines()
        .find(|line| line.starts_with("tools.ansible"))
        .expect("a tools.ansible line");
    if std::env::var_os("PYENV_ROOT").is_some() || which_ansible() {
        assert!(line.contains("(from PATH: "), "{line}");
    } else {
        assert!(
            line.contains("none usable (configure installs ansible-core"),
            "{line}"
        );
    }
}

fn which_ansible() -> bool {
    Command::new("sh")
        .args(["-c", "command -v ansible-playbook"])
        .output()
        .is_ok_and(|output| output.status.success())
}
