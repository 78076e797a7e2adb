//! Options of a simulated node: name, task durations, time scale, faults, state dir.
//!
//! Why: the same node serves demos (realistic durations, so progress output looks like a
//! real cluster), tests (durations scaled down 10-100x) and fault drills; all of that is
//! configuration, not code paths.

use std::path::PathBuf;
use std::time::Duration;

/// How a node is built.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node name (`lloyd`).
    pub name: String,
    /// Unscaled durations of each task type.
    pub durations: TaskDurations,
    /// Multiplies every duration (tasks, agent boot delay): `0.01` makes tests 100x faster.
    pub time_scale: f64,
    /// How long after a start the guest agent answers (unscaled).
    pub agent_boot_delay: Duration,
    /// Task-level faults (the HTTP layer applies the request-level ones).
    pub faults: TaskFaults,
    /// Where the state is saved; `None` keeps it in memory.
    pub state_dir: Option<PathBuf>,
    /// Start with template 1001, ready to clone.
    pub with_template: bool,
    /// Random seed of generated MACs, UUIDs and host keys.
    pub seed: u64,
    /// The TLS certificate fingerprint `/nodes` reports (`AA:BB:...`), when serving TLS.
    pub ssl_fingerprint: Option<String>,
    /// State-only guests, or real QEMU machines (see [`crate::qemu`]).
    pub guests: crate::qemu::Guests,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            name: "lloyd".to_owned(),
            durations: TaskDurations::default(),
            time_scale: 1.0,
            agent_boot_delay: Duration::from_secs(8),
            faults: TaskFaults::default(),
            state_dir: None,
            with_template: false,
            seed: 1,
            ssl_fingerprint: None,
            guests: crate::qemu::Guests::State,
        }
    }
}

/// Unscaled duration of each PVE task type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskDurations {
    pub clone_full: Duration,
    pub clone_linked: Duration,
    pub create: Duration,
    pub start: Duration,
    pub shutdown: Duration,
    pub stop: Duration,
    pub reboot: Duration,
    pub resize: Duration,
    pub config: Duration,
    pub destroy: Duration,
    pub template: Duration,
    /// `download-url` (the lab fetches nothing; this is only how long it appears to take).
    pub download: Duration,
    /// How long a lock waits before `got timeout` (PVE: 10 s).
    pub lock_timeout: Duration,
}

impl Default for TaskDurations {
    fn default() -> Self {
        Self {
            clone_full: Duration::from_secs(3),
            clone_linked: Duration::from_secs(1),
            create: Duration::from_secs(1),
            start: Duration::from_secs(1),
            shutdown: Duration::from_secs(2),
            stop: Duration::from_millis(300),
            reboot: Duration::from_secs(2),
            resize: Duration::from_millis(300),
            config: Duration::from_millis(200),
            destroy: Duration::from_millis(500),
            template: Duration::from_millis(500),
            download: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// Task-level faults, drawn deterministically from `seed` (probabilities per task).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskFaults {
    /// Probability that a task fails with `can't lock file ... - got timeout`.
    pub lock_timeout: f64,
    /// Probability that a task fails with an error.
    pub task_fail: f64,
    /// Multiplies task durations (`2.0`: twice as slow).
    pub slow: f64,
    /// Probability that a started guest's agent never comes up.
    pub agent_never: f64,
    /// Seed of the fault draws.
    pub seed: u64,
}

impl Default for TaskFaults {
    fn default() -> Self {
        Self {
            lock_timeout: 0.0,
            task_fail: 0.0,
            slow: 1.0,
            agent_never: 0.0,
            seed: 0,
        }
    }
}
