//! The seam between the HTTP layer and the lab's state.
//!
//! Why: the HTTP layer (wire format, schema validation, auth, TLS, HTTP-level faults) and the
//! simulated node (VMs, tasks, storage, guests) change for different reasons. The HTTP layer
//! turns a raw request into an [`ApiRequest`] whose parameters already passed the official
//! schema, and the node answers with a [`Reply`] (the envelope's `data`, and `total` for
//! the pages PVE counts) or an [`ApiError`] that the HTTP layer encodes exactly the way
//! PVE does.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// HTTP methods the PVE API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// Who is calling: a user (ticket login) or an API token of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `user@realm`, e.g. `root@pam`.
    pub user: String,
    /// The token id (`lab` in `root@pam!lab`), when authenticated by API token.
    pub token: Option<String>,
}

impl Identity {
    /// The user field PVE writes into UPIDs: `user@realm` or `user@realm!tokenid`.
    pub fn upid_user(&self) -> String {
        match &self.token {
            Some(token) => format!("{}!{token}", self.user),
            None => self.user.clone(),
        }
    }
}

/// A request that passed authentication, permission and schema validation.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The schema's path template, e.g. `/nodes/{node}/qemu/{vmid}/config`.
    pub template: String,
    /// Values of the template's `{placeholders}`, already validated.
    pub path_params: BTreeMap<String, String>,
    /// Body and query parameters merged (query wins), coerced to the schema's types:
    /// integer -> JSON number, number -> JSON number, boolean -> JSON bool,
    /// string -> JSON string, repeated keys / arrays -> JSON array.
    pub params: Map<String, Value>,
    pub identity: Identity,
}

impl ApiRequest {
    /// A path parameter; the HTTP layer guarantees the template's placeholders are present.
    pub fn path(&self, name: &str) -> &str {
        self.path_params.get(name).map_or("", String::as_str)
    }
}

/// An error answered the PVE way: status, reason phrase (first line of `message`), optional
/// per-parameter `errors` map (400 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub errors: BTreeMap<String, String>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            errors: BTreeMap::new(),
        }
    }

    /// 400 `Parameter verification failed.` with one parameter error.
    pub fn param(name: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = BTreeMap::new();
        errors.insert(name.into(), message.into());
        Self {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors,
        }
    }

    /// 500 with a handler failure message, e.g. `VM 150 is not running`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}

/// A successful answer: what goes into the `{"data": ...}` envelope.
///
/// Most endpoints answer with `data` alone; the task log and the task list also carry
/// `total` (how many items exist, not how many are on this page), which PVE puts next to
/// `data` in the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The envelope's `data`.
    pub data: Value,
    /// The envelope's `total`, when the endpoint has one.
    pub total: Option<u64>,
}

impl Reply {
    /// A reply with `data` only.
    pub fn data(data: Value) -> Self {
        Self { data, total: None }
    }

    /// A page of a longer list: `data` plus the list's full length as `total`.
    pub fn with_total(data: Value, total: usize) -> Self {
        Self {
            data,
            total: Some(u64::try_from(total).unwrap_or(u64::MAX)),
        }
    }
}

impl From<Value> for Reply {
    fn from(data: Value) -> Self {
        Self::data(data)
    }
}

/// What most handlers return: the `data` value of the envelope, or a PVE error.
pub type ApiResult = Result<Value, ApiError>;

/// What the node answers a request with (and the handlers whose envelope has `total`).
pub type ApiReply = Result<Reply, ApiError>;
