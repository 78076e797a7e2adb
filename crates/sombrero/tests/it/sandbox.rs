//! A hermetic place to run the real `sombrero` binary: a temporary working directory with
//! the shipped `sombrero.toml`, an environment that starts empty, and helpers to read the
//! outcome.
//!
//! Why `env_clear`: a developer's real `TF_VAR_pve_api_token` or `ENV` must never change a
//! test's result (or leak into its output); every variable a test depends on is set here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

/// The repository's own configuration file.
pub const SHIPPED_CONFIG: &str = include_str!("../../../../sombrero.toml");

/// A real ed25519 public key (its private half was discarded).
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ test@sombrero";

/// A temporary project directory plus the environment the binary will see.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    timeout: Duration,
}

/// Exit code and output of one run.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr contains `text`.
    pub fn stderr_has(self, text: &str) -> Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }
}

impl Sandbox {
    /// A project directory holding the shipped `sombrero.toml`.
    pub fn new() -> Self {
        Self::with_config(SHIPPED_CONFIG)
    }

    /// A project directory holding `config` as `sombrero.toml`.
    pub fn with_config(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("sombrero.toml"), config).expect("write config");
        Self {
            dir,
            env: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }

    /// The shipped file with the first `from` replaced by `to`.
    pub fn replacing(from: &str, to: &str) -> Self {
        assert!(
            SHIPPED_CONFIG.contains(from),
            "shipped config lacks {from:?}"
        );
        Self::with_config(&SHIPPED_CONFIG.replacen(from, to, 1))
    }

    /// The project directory (the binary's working directory and `HOME`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file into the project directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Sets a variable for the binary.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Kills runs that take longer than `timeout` (their output so far is kept).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The binary with a cleared environment (only `PATH`, `HOME` and what was set) and an
    /// empty stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin!("sombrero"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .timeout(self.timeout)
            // An empty, closed stdin: a command that reads it sees end of input at once
            // instead of waiting for the timeout.
            .write_stdin(Vec::new());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Starts the binary in the background with the same environment as [`Self::command`]
    /// (stdin empty, output collected); the caller waits for or kills it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin!("sombrero"));
        command
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().expect("sombrero starts")
    }

    /// Runs the binary and collects its outcome.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_for(args, self.timeout)
    }

    /// Runs the binary, killing it after `timeout` (keeping its output so far).
    pub fn run_for(&self, args: &[&str], timeout: Duration) -> Outcome {
        let output = self
            .command(args)
            .timeout(timeout)
            .output()
            .expect("run sombrero");
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The 1-based line of the first line of `sombrero.toml` containing `text`.
    pub fn line_of(config: &str, text: &str) -> usize {
        config
            .lines()
            .position(|line| line.contains(text))
            .expect("text in config")
            + 1
    }
}

/// A plain-HTTP lab in this test process with template 1001, its tasks at `time_scale`
/// of their realistic durations (0.2 to 0.5: a deploy takes seconds, long enough to
/// interrupt or contend with).
pub async fn lab_at(time_scale: f64) -> pve_lab::LabHandle {
    let mut options = pve_lab::LabOptions::for_tests();
    options.node.with_template = true;
    options.node.time_scale = time_scale;
    pve_lab::Lab::start(options).await.expect("lab starts")
}

/// A project directory pointed at `lab` by the runbook's variables, with an SSH key and
/// no retry delays.
pub fn pointed_at_lab(lab: &pve_lab::LabHandle) -> Sandbox {
    Sandbox::new()
        .env("TF_VAR_pve_api_url", lab.url())
        .env("TF_VAR_pve_api_token", &lab.token())
        .env("TF_VAR_ci_ssh_key", SSH_KEY)
        .env("SOMBRERO_RETRY_DELAY_MS", "0")
        .timeout(Duration::from_secs(120))
}
