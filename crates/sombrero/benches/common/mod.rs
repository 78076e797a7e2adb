//! What the real-guest benchmarks share: tools present, timed runs of the binary, a lab
//! serving QEMU guests (killed with its guests however the benchmark ends).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_sombrero");

/// The tools of `tools` that are missing, plus the lab image when it is.
pub fn missing(tools: &[&'static str]) -> Vec<&'static str> {
    let mut missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
        .collect();
    if pve_lab::guest::ImageStore::default_location()
        .find()
        .is_none()
    {
        missing.push("the lab image (sombrero lab image build)");
    }
    missing
}

/// `sombrero ARGS` in `dir` with `env`, timed; panics on failure. Returns its stdout too.
pub fn sombrero(dir: &Path, env: &[(String, String)], args: &[&str]) -> (f64, String) {
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
    (
        seconds,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A child process killed when dropped (also when the benchmark panics).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A project in `dir` (the shipped `sombrero.toml`, a fresh key pair) and a lab serving
/// QEMU guests with the seeded template; returns the lab and the variables pointing at it.
pub fn project_and_lab(dir: &Path) -> (KillOnDrop, Vec<(String, String)>) {
    std::fs::write(
        dir.join("sombrero.toml"),
        include_str!("../../../../sombrero.toml"),
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
    let mut serve = KillOnDrop(serve);
    let mut line = String::new();
    BufReader::new(serve.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap();
    let env = [
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
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    (serve, env)
}
