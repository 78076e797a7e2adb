//! `up --lab --keep` on real QEMU guests (issue 15), at the end of the real-guest journey:
//! the in-process lab opens the journey's lab state (its built template and VM 151,
//! stopped since that lab was killed), and `up` converges it: no build, no clone, the VM
//! started, configured again and verified, all in one recorded run. `--keep` then leaves
//! the lab and the VM running: the printed SSH command logs in, and Ctrl-C ends both.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use sombrero_core::history::{RunStatus, Store};

use crate::sandbox::Sandbox;

/// Runs `up --lab --yes --keep` in `sandbox` (whose `deployments/lab` holds the lab
/// state), logs in with the SSH command it prints, stops it with SIGINT, and checks the
/// run it recorded. Returns the summary it printed.
pub fn up_lab_converges_and_keeps_the_vm_reachable(sandbox: &Sandbox) -> String {
    let mut child = sandbox.spawn(&["up", "--lab", "--env", "development", "--yes", "--keep"]);
    let pid = child.id();
    // Both pipes are read on threads: the stages print far more than a pipe holds.
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr_text = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut summary = Vec::new();
    let ssh = loop {
        let Ok(line) = received.recv_timeout(Duration::from_secs(900)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "up --lab ended or hung before its summary: {summary:?}\n{}",
                stderr_text.join().unwrap_or_default()
            );
        };
        summary.push(line.clone());
        if let Some(command) = line.strip_prefix("SSH:") {
            break command.trim().to_owned();
        }
    };
    let text = summary.join("\n");
    assert!(
        text.contains("- build"),
        "template present, not rebuilt: {text}"
    );
    assert!(text.contains("✓ verify"), "{text}");
    assert!(
        text.contains("VM:       151 on lloyd, address 192.168.10.251"),
        "{text}"
    );

    // The printed command, as an operator would paste it, reaches the kept VM.
    let login = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{ssh} -o BatchMode=yes -o ConnectTimeout=20 hostname"
        ))
        .current_dir(sandbox.path())
        .output()
        .expect("ssh runs");
    assert!(
        login.status.success(),
        "{ssh}: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "jump-man");

    let guests = crate::deploy_real_guest::qemu_children(pid);
    assert_eq!(guests.len(), 1, "the kept VM's QEMU: {guests:?}");
    let interrupted = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let status = child.wait().expect("up ends");
    let stderr = stderr_text.join().unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopping the lab and its VM"), "{stderr}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while guests
        .iter()
        .any(|pid| crate::deploy_real_guest::alive(*pid))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "QEMU {guests:?} outlived up --keep"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // One run: no build, the VM started (not cloned), configured and verified.
    let detail = Store::open_existing(sandbox.path().join("deployments/sombrero.db"))
        .expect("history")
        .run_detail(None)
        .expect("latest run");
    assert_eq!(detail.run.command, "up");
    assert_eq!(
        detail.run.status,
        RunStatus::Success,
        "{:?}",
        detail.run.error
    );
    let names: Vec<&str> = detail.phases.iter().map(|p| p.name.as_str()).collect();
    for stage in ["preflight", "deploy", "start", "configure", "verify"] {
        assert!(names.contains(&stage), "{stage} in {names:?}");
    }
    for absent in ["build", "clone"] {
        assert!(!names.contains(&absent), "{absent} in {names:?}");
    }
    text
}
