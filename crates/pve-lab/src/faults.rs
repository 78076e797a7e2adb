//! Fault injection: the failures real clusters produce, on demand and reproducibly.
//!
//! Why: clients must survive 5xx answers, reset connections, lock timeouts inside tasks,
//! slow storage and guests whose agent never comes up (pve-api.md, "What users of those
//! clients keep hitting"). A [`FaultSpec`] says how often each happens; [`Faults`] draws
//! the decisions from the seed and a per-stream counter (no shared RNG state), so the same
//! seed and the same sequence of requests or tasks give the same faults on every run.
//!
//! HTTP-level faults are applied by the server in front of the node from [`Faults`]; the
//! task-level fields (`lock_timeout`, `task_fail`, `slow`, `agent_never`) are handed to the
//! node as [`crate::node::TaskFaults`] when the lab starts ([`FaultSpec::task_faults`]).
//! `node-down=NAME` (repeatable) is not drawn at all: it takes a cluster member down, as
//! [`crate::node::Node::set_node_online`] does (decision 113).

use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How often each fault happens. Probabilities are in `0.0..=1.0`; `slow` multiplies task
/// durations (1.0 = unchanged).
///
/// Parsed from `http5xx=0.2,reset=0.05,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=42`
/// (plus `node-down=pve2`, once per node that is down).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FaultSpec {
    /// Probability per API request of a 5xx answer instead of the real one.
    #[serde(rename = "http5xx")]
    pub http_5xx: f64,
    /// Probability per API request of the connection being reset without an answer,
    /// before the request is handled.
    pub reset: f64,
    /// Probability per API request of a lost answer: the request IS handled (a clone
    /// starts, a config changes), then the connection is reset instead of answering. The
    /// case a client must not blindly repeat.
    pub lost: f64,
    /// Probability per task of failing with `can't lock file ... - got timeout`.
    pub lock_timeout: f64,
    /// Probability per task of failing with an injected error.
    pub task_fail: f64,
    /// Multiplier applied to every task duration.
    pub slow: f64,
    /// Probability per VM that its guest agent never comes up.
    pub agent_never: f64,
    /// Seed of every decision.
    pub seed: u64,
    /// Cluster members that are down (not a probability: they are down until the spec
    /// changes or `/lab/nodes/{node}/up`).
    #[serde(default)]
    pub node_down: Vec<String>,
}

impl Default for FaultSpec {
    fn default() -> Self {
        Self {
            http_5xx: 0.0,
            reset: 0.0,
            lost: 0.0,
            lock_timeout: 0.0,
            task_fail: 0.0,
            slow: 1.0,
            agent_never: 0.0,
            seed: 0,
            node_down: Vec::new(),
        }
    }
}

/// Why a fault spec could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultSpecError {
    #[error(
        "unknown fault '{0}' (known: http5xx, reset, lost, lock-timeout, task-fail, slow, agent-never, node-down, seed)"
    )]
    UnknownKey(String),
    #[error("fault 'node-down': {0}")]
    BadNode(#[from] crate::node::NodeNameError),
    #[error("fault '{0}' needs a value, as in '{0}=0.1'")]
    MissingValue(String),
    #[error("fault '{key}': '{value}' is not a probability between 0 and 1")]
    BadProbability { key: String, value: String },
    #[error("fault 'slow': '{0}' is not a positive multiplier such as 2.0")]
    BadMultiplier(String),
    #[error("fault 'seed': '{0}' is not a non-negative integer")]
    BadSeed(String),
}

impl FaultSpec {
    /// The task-level part, as the node takes it.
    pub fn task_faults(&self) -> crate::node::TaskFaults {
        crate::node::TaskFaults {
            lock_timeout: self.lock_timeout,
            task_fail: self.task_fail,
            slow: self.slow,
            agent_never: self.agent_never,
            seed: self.seed,
        }
    }

    /// Whether no fault can ever happen.
    pub fn is_quiet(&self) -> bool {
        self.http_5xx == 0.0
            && self.reset == 0.0
            && self.lost == 0.0
            && self.lock_timeout == 0.0
            && self.task_fail == 0.0
            && (self.slow - 1.0).abs() < f64::EPSILON
            && self.agent_never == 0.0
            && self.node_down.is_empty()
    }
}

fn probability(key: &str, value: &str) -> Result<f64, FaultSpecError> {
    match value.parse::<f64>() {
        Ok(number) if (0.0..=1.0).contains(&number) => Ok(number),
        _ => Err(FaultSpecError::BadProbability {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = Self::default();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let Some((key, value)) = part.split_once('=') else {
                return Err(FaultSpecError::MissingValue(part.to_owned()));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "http5xx" => spec.http_5xx = probability(key, value)?,
                "reset" => spec.reset = probability(key, value)?,
                "lost" => spec.lost = probability(key, value)?,
                "lock-timeout" => spec.lock_timeout = probability(key, value)?,
                "task-fail" => spec.task_fail = probability(key, value)?,
                "agent-never" => spec.agent_never = probability(key, value)?,
                "slow" => {
                    spec.slow = match value.parse::<f64>() {
                        Ok(number) if number.is_finite() && number > 0.0 => number,
                        _ => return Err(FaultSpecError::BadMultiplier(value.to_owned())),
                    }
                }
                "node-down" => {
                    crate::node::validate_node_name(value)?;
                    if !spec.node_down.iter().any(|known| known == value) {
                        spec.node_down.push(value.to_owned());
                    }
                }
                "seed" => {
                    spec.seed = value
                        .parse()
                        .map_err(|_| FaultSpecError::BadSeed(value.to_owned()))?;
                }
                other => return Err(FaultSpecError::UnknownKey(other.to_owned())),
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "http5xx={},reset={},lost={},lock-timeout={},task-fail={},slow={},agent-never={},seed={}",
            self.http_5xx,
            self.reset,
            self.lost,
            self.lock_timeout,
            self.task_fail,
            self.slow,
            self.agent_never,
            self.seed
        )?;
        for node in &self.node_down {
            write!(formatter, ",node-down={node}")?;
        }
        Ok(())
    }
}

/// What the server does instead of answering a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFault {
    /// Answer with this status and message (PVE's own 5xx or a proxy's).
    Error { status: u16, message: String },
    /// Close the connection without an answer (the client sees a reset or EOF).
    Reset,
    /// Handle the request, then close the connection without sending the answer.
    Lost,
}

/// Independent streams of decisions: a request does not shift the task stream.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Request = 1,
}

/// The live fault configuration of a lab, shared by the server and the node.
#[derive(Debug, Default)]
pub struct Faults {
    spec: RwLock<FaultSpec>,
    requests: AtomicU64,
    injected_5xx: AtomicU64,
    injected_resets: AtomicU64,
    injected_lost: AtomicU64,
}

/// How many HTTP-level faults the lab injected since its spec was last set.
///
/// Why: a test that claims a client survives injected faults must be able to show that
/// faults were injected while it ran; otherwise a lucky seed (or a broken injector) makes
/// it pass without exercising a single retry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedCounts {
    /// Requests answered with an injected 5xx.
    #[serde(rename = "http5xx")]
    pub http_5xx: u64,
    /// Connections reset instead of answering.
    pub reset: u64,
    /// Requests handled whose answer was then dropped.
    pub lost: u64,
}

/// splitmix64: a fast, well-distributed mix of (seed, stream, index) into 64 bits.
fn mix(mut state: u64) -> u64 {
    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut value = state;
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// A uniform draw in `[0, 1)` for the `index`-th decision of a stream.
fn draw(seed: u64, stream: Stream, index: u64, salt: u64) -> f64 {
    let bits = mix(mix(mix(seed ^ (stream as u64).rotate_left(56)) ^ index) ^ salt);
    #[expect(
        clippy::cast_precision_loss,
        reason = "53 random bits map exactly onto the f64 mantissa"
    )]
    let unit = (bits >> 11) as f64 / (1_u64 << 53) as f64;
    unit
}

/// 5xx answers a client may see from PVE or a proxy in front of it.
const HTTP_ERRORS: [(u16, &str); 3] = [
    (500, "Internal Server Error (injected by the lab)"),
    (503, "Service Unavailable (injected by the lab)"),
    (596, "Broken pipe (injected by the lab)"),
];

impl Faults {
    /// Faults following `spec`, counters at zero.
    pub fn new(spec: FaultSpec) -> Self {
        Self {
            spec: RwLock::new(spec),
            requests: AtomicU64::new(0),
            injected_5xx: AtomicU64::new(0),
            injected_resets: AtomicU64::new(0),
            injected_lost: AtomicU64::new(0),
        }
    }

    /// The HTTP-level faults injected since the spec was last set.
    pub fn injected(&self) -> InjectedCounts {
        InjectedCounts {
            http_5xx: self.injected_5xx.load(Ordering::SeqCst),
            reset: self.injected_resets.load(Ordering::SeqCst),
            lost: self.injected_lost.load(Ordering::SeqCst),
        }
    }

    /// The current spec.
    pub fn spec(&self) -> FaultSpec {
        self.spec
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the spec and restarts the decision sequences, so a test that sets a spec
    /// sees the same faults as a lab started with it.
    pub fn set(&self, spec: FaultSpec) {
        *self
            .spec
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = spec;
        self.requests.store(0, Ordering::SeqCst);
        self.injected_5xx.store(0, Ordering::SeqCst);
        self.injected_resets.store(0, Ordering::SeqCst);
        self.injected_lost.store(0, Ordering::SeqCst);
    }

    /// The fault for the next API request, if any.
    pub fn next_request(&self) -> Option<HttpFault> {
        let spec = self.spec();
        if spec.http_5xx == 0.0 && spec.reset == 0.0 && spec.lost == 0.0 {
            return None;
        }
        let index = self.requests.fetch_add(1, Ordering::SeqCst);
        let roll = draw(spec.seed, Stream::Request, index, 0);
        if roll < spec.reset {
            self.injected_resets.fetch_add(1, Ordering::SeqCst);
            return Some(HttpFault::Reset);
        }
        if roll < spec.reset + spec.http_5xx {
            self.injected_5xx.fetch_add(1, Ordering::SeqCst);
            let pick = mix(spec.seed ^ index.rotate_left(17)) % HTTP_ERRORS.len() as u64;
            let (status, message) = HTTP_ERRORS[usize::try_from(pick).unwrap_or(0)];
            return Some(HttpFault::Error {
                status,
                message: message.to_owned(),
            });
        }
        if roll < spec.reset + spec.http_5xx + spec.lost {
            self.injected_lost.fetch_add(1, Ordering::SeqCst);
            return Some(HttpFault::Lost);
        }
        None
    }
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
