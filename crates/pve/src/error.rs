//! The client's error type, which says whether repeating a request is safe.
//!
//! Why this shape: for an automation tool the most important question about a failed call
//! is "did it happen?". A connection that failed never reached Proxmox (repeat freely); a
//! timeout or reset after sending may have started a clone (repeat only with a check); an
//! answer from the server says exactly what happened (status, reason phrase, per-parameter
//! `errors`, `message`). Helpers classify the well-known answers so callers do not match
//! on text.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::request::Method;
use crate::types::{ExitStatus, TaskLogLine, Upid};

/// Whether a failed request may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetrySafety {
    /// The request never left this host (connect or TLS setup failed): safe to repeat.
    NeverSent,
    /// The request may have reached the server (timeout or reset after sending): repeat
    /// only what is idempotent or verifiable.
    MayHaveReachedServer,
    /// The server answered; whether to repeat depends on the answer.
    ServerAnswered,
    /// Not a transport problem (bad input, decoding, a failed task, a deadline).
    NotApplicable,
}

/// An error answer from PVE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub method: Method,
    pub path: String,
    pub status: u16,
    /// The HTTP reason phrase: PVE puts the first line of the message there.
    pub reason: String,
    /// `message` from the body (PVE >= 8.4), the full text.
    pub message: Option<String>,
    /// `errors` from the body: parameter name -> problem (400 only).
    pub errors: BTreeMap<String, String>,
}

impl ApiError {
    /// All text the server gave, for classification.
    pub fn text(&self) -> String {
        let mut text = self.reason.clone();
        if let Some(message) = &self.message {
            text.push('\n');
            text.push_str(message);
        }
        for (name, problem) in &self.errors {
            text.push('\n');
            text.push_str(name);
            text.push_str(": ");
            text.push_str(problem);
        }
        text
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} {}: {} {}",
            self.method, self.path, self.status, self.reason
        )?;
        for (name, problem) in &self.errors {
            write!(formatter, "; {name}: {problem}")?;
        }
        Ok(())
    }
}

/// A task that ended with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub upid: Upid,
    /// The exit status text, e.g. `clone failed: ... - got timeout`.
    pub message: String,
    pub exit: ExitStatus,
    /// The last lines of the task log (a failing task ends with `TASK ERROR: ...`).
    pub log_tail: Vec<TaskLogLine>,
}

/// Everything that can go wrong talking to PVE.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building the HTTP client or TLS configuration failed.
    #[error("cannot set up the connection to Proxmox: {reason}")]
    Setup {
        reason: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The TLS handshake with the API failed (nothing was sent).
    #[error("TLS handshake with {base} failed: {problem}")]
    Tls {
        base: String,
        problem: crate::tls::TlsProblem,
        #[source]
        source: reqwest::Error,
    },
    /// The request never left this host.
    #[error("{method} {path} was not sent: cannot connect to {base}")]
    NotSent {
        method: Method,
        path: String,
        base: String,
        #[source]
        source: reqwest::Error,
    },
    /// The request went out but no complete answer came back.
    #[error("{method} {path}: no complete answer (the request may have reached the server)")]
    MaybeSent {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The answer was not what the API documents.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Decode {
        method: Method,
        path: String,
        reason: String,
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A task finished unsuccessfully.
    #[error("task {} failed: {}", .0.upid, .0.message)]
    TaskFailed(Box<TaskFailure>),
    /// A wait reached its deadline. The server-side operation keeps running.
    #[error("gave up waiting for {what} after {waited:?}{}", last.as_ref().map(|l| format!(" (last: {l})")).unwrap_or_default())]
    Deadline {
        what: String,
        waited: Duration,
        last: Option<String>,
    },
    /// The caller asked for something PVE would reject or that cannot be done safely.
    #[error("{0}")]
    InvalidInput(String),
    /// A retried create or clone found a VM it could not prove is the one it asked for.
    #[error("VM {vmid} already exists and is not the one this request created: {reason}")]
    Conflict { vmid: u64, reason: String },
}

impl Error {
    /// Whether the attempt ran out of time (connecting, or waiting for the answer).
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::NotSent { source, .. } | Self::MaybeSent { source, .. } => source.is_timeout(),
            _ => false,
        }
    }

    /// Whether repeating the request is safe, as far as the transport knows.
    pub fn retry_safety(&self) -> RetrySafety {
        match self {
            Self::NotSent { .. } => RetrySafety::NeverSent,
            Self::MaybeSent { .. } => RetrySafety::MayHaveReachedServer,
            Self::Api(_) => RetrySafety::ServerAnswered,
            _ => RetrySafety::NotApplicable,
        }
    }

    /// The server's error answer, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error.as_ref()),
            _ => None,
        }
    }

    /// The HTTP status of a server answer.
    pub fn status(&self) -> Option<u16> {
        self.api().map(|error| error.status)
    }

    fn api_text_contains(&self, needles: &[&str]) -> bool {
        self.api().is_some_and(|error| {
            let text = error.text().to_ascii_lowercase();
            needles.iter().any(|needle| text.contains(needle))
        })
    }

    /// Whether the server's answer mentions `needle` (case-insensitive).
    pub fn mentions(&self, needle: &str) -> bool {
        self.api_text_contains(&[&needle.to_ascii_lowercase()])
    }

    /// 404, or PVE's 500 "Configuration file ... does not exist" / "no such ...".
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
            || self.api_text_contains(&["does not exist", "no such vm", "no such task"])
    }

    /// "already exists" (clone/create into a taken VMID, `nextid?vmid=` taken).
    pub fn is_already_exists(&self) -> bool {
        self.api_text_contains(&["already exists"])
    }

    /// A file lock or storage lock timed out (`can't lock file ... - got timeout`).
    pub fn is_lock_timeout(&self) -> bool {
        self.api()
            .is_some_and(|api| is_lock_timeout_text(&api.text()))
            || matches!(self, Self::TaskFailed(failure) if is_lock_timeout_text(&failure.message))
    }

    /// `cluster not ready - no quorum?`: the cluster file system is read-only until a
    /// majority of the nodes is online again; every change is refused.
    pub fn is_no_quorum(&self) -> bool {
        self.api_text_contains(&["no quorum"])
            || matches!(self, Self::TaskFailed(failure) if failure.message.to_ascii_lowercase().contains("no quorum"))
    }

    /// `VM is locked (clone)` and friends.
    pub fn is_locked(&self) -> bool {
        self.api_text_contains(&["is locked"])
    }

    /// `QEMU guest agent is not running`, or a `guest-*` agent command timed out.
    pub fn is_agent_not_running(&self) -> bool {
        // `VM 150 qmp command 'guest-ping' failed - got timeout` is the agent timing out.
        self.api_text_contains(&["guest agent is not running"])
            || (self.api_text_contains(&["qmp command 'guest-"])
                && self.api_text_contains(&["got timeout"]))
    }

    /// 401: no or invalid credentials.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// 403 `Permission check failed (PATH, PRIVILEGE)`: the path and privilege, when named.
    pub fn permission(&self) -> Option<Permission> {
        let error = self.api().filter(|error| error.status == 403)?;
        let text = error.text();
        let inner = text
            .split_once("Permission check failed (")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inner, _)| inner);
        Some(match inner.and_then(|inner| inner.split_once(',')) {
            Some((path, privilege)) => Permission {
                path: Some(path.trim().to_owned()),
                privilege: Some(privilege.trim().to_owned()),
            },
            None => Permission {
                path: None,
                privilege: None,
            },
        })
    }

    /// An answer that is worth repeating a read for: 5xx that is not a definite failure.
    pub fn is_transient_server_error(&self) -> bool {
        let Some(error) = self.api() else {
            return false;
        };
        if error.status < 500 || error.status == 501 {
            return false;
        }
        !is_definite_failure(&error.text())
    }
}

/// A 403's missing permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// e.g. `/vms/150`.
    pub path: Option<String>,
    /// e.g. `VM.Allocate`.
    pub privilege: Option<String>,
}

/// Lock timeouts inside tasks or handlers.
pub fn is_lock_timeout_text(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("can't lock file") || (lower.contains("lock") && lower.contains("got timeout"))
}

/// 500 answers that report a definite outcome; repeating them cannot help.
fn is_definite_failure(text: &str) -> bool {
    const DEFINITE: [&str; 9] = [
        "does not exist",
        "already exists",
        "is running",
        "is not running",
        "guest agent is not running",
        "no qemu guest agent configured",
        "not implemented",
        "shrinking disks is not supported",
        "checksum mismatch",
    ];
    let lower = text.to_ascii_lowercase();
    DEFINITE.iter().any(|needle| lower.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::{ApiError, Error, RetrySafety};
    use crate::request::Method;
    use std::collections::BTreeMap;

    fn api(status: u16, reason: &str) -> Error {
        Error::Api(Box::new(ApiError {
            method: Method::Post,
            path: "/nodes/pve1/qemu/9000/clone".into(),
            status,
            reason: reason.into(),
            message: Some(format!("{reason}\n")),
            errors: BTreeMap::new(),
        }))
    }

    #[test]
    fn classifies_well_known_answers() {
        let exists = api(500, "unable to create VM 150: config file already exists");
        assert!(exists.is_already_exists());
        assert!(!exists.is_transient_server_error());
        assert_eq!(exists.retry_safety(), RetrySafety::ServerAnswered);
        let lock = api(
            500,
            "can't lock file '/var/lock/qemu-server/lock-150.conf' - got timeout",
        );
        assert!(lock.is_lock_timeout());
        assert!(lock.is_transient_server_error());
        let missing = api(
            500,
            "Configuration file 'nodes/pve1/qemu-server/150.conf' does not exist",
        );
        assert!(missing.is_not_found());
        assert!(!missing.is_transient_server_error());
        assert!(api(503, "Service Unavailable").is_transient_server_error());
        assert!(!api(501, "Method 'GET /x' not implemented").is_transient_server_error());
        assert!(api(500, "QEMU guest agent is not running").is_agent_not_running());
        assert!(
            api(500, "VM 150 qmp command 'guest-ping' failed - got timeout").is_agent_not_running()
        );
        assert!(!lock.is_agent_not_running());
        assert!(
            !api(500, "VM 150 qmp command 'guest-ping' failed - got timeout").is_lock_timeout()
        );
        assert!(api(500, "cluster not ready - no quorum?").is_no_quorum());
        assert!(!lock.is_no_quorum());
    }

    #[test]
    fn names_the_missing_privilege() {
        let denied = api(403, "Permission check failed (/vms/150, VM.Allocate)");
        let permission = denied.permission().unwrap();
        assert_eq!(permission.path.as_deref(), Some("/vms/150"));
        assert_eq!(permission.privilege.as_deref(), Some("VM.Allocate"));
        assert!(api(500, "x").permission().is_none());
        let text = denied.to_string();
        assert!(
            text.contains("403") && text.contains("VM.Allocate"),
            "{text}"
        );
    }

    #[test]
    fn parameter_errors_are_shown() {
        let mut errors = BTreeMap::new();
        errors.insert("vmid".to_owned(), "VM 150 already exists".to_owned());
        let error = Error::Api(Box::new(ApiError {
            method: Method::Get,
            path: "/cluster/nextid".into(),
            status: 400,
            reason: "Parameter verification failed.".into(),
            message: None,
            errors,
        }));
        assert!(error.is_already_exists());
        assert!(error.to_string().contains("vmid: VM 150 already exists"));
    }
}
