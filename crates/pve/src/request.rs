//! Requests as plain values, built without IO.
//!
//! Why (the kube-core pattern): every endpoint is a pure function from arguments to a
//! [`Request`] (method, encoded path, parameters, retry rule). The transport only sends
//! them, tests can check every request against the official schema without a server, and
//! the retry rule is decided where the endpoint's semantics are known.

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::secret::Secret;

/// HTTP methods the PVE API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }

    /// Whether parameters go into the query string (GET, DELETE) rather than a form body.
    pub fn uses_query(self) -> bool {
        matches!(self, Self::Get | Self::Delete)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a text is not an HTTP method PVE uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of GET, POST, PUT, DELETE")]
pub struct MethodParseError(String);

impl FromStr for Method {
    type Err = MethodParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_uppercase().as_str() {
            "GET" => Ok(Self::Get),
            "POST" | "CREATE" => Ok(Self::Post),
            "PUT" | "SET" => Ok(Self::Put),
            "DELETE" => Ok(Self::Delete),
            _ => Err(MethodParseError(text.to_owned())),
        }
    }
}

/// A parameter value; secrets stay redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum ParamValue {
    Text(String),
    Secret(Secret),
}

impl ParamValue {
    /// The value for the wire (exposes secrets).
    fn wire(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Secret(secret) => secret.expose(),
        }
    }
}

impl fmt::Debug for ParamValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => fmt::Debug::fmt(text, formatter),
            Self::Secret(secret) => fmt::Debug::fmt(secret, formatter),
        }
    }
}

/// Ordered form/query parameters; repeated names encode arrays (`command=a&command=b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, ParamValue)>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name`, replacing earlier values.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.pairs.retain(|(existing, _)| existing != name);
        self.pairs
            .push((name.to_owned(), ParamValue::Text(value.into())));
        self
    }

    /// Sets a boolean as PVE requires it: exactly `1` or `0`.
    pub fn set_bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.set(name, if value { "1" } else { "0" })
    }

    /// Sets a secret value (redacted in `Debug`).
    pub fn set_secret(&mut self, name: &str, value: Secret) -> &mut Self {
        self.pairs.retain(|(existing, _)| existing != name);
        self.pairs
            .push((name.to_owned(), ParamValue::Secret(value)));
        self
    }

    /// Appends one more value for `name` (array parameters).
    pub fn push(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.pairs
            .push((name.to_owned(), ParamValue::Text(value.into())));
        self
    }

    /// Parameter names in order (repeated names repeat).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(name, _)| name.as_str())
    }

    /// The first non-secret value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find_map(|(existing, value)| match value {
            ParamValue::Text(text) if existing == name => Some(text.as_str()),
            _ => None,
        })
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `application/x-www-form-urlencoded` text of all parameters. Contains secrets: only
    /// for the wire.
    pub fn encode(&self) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.pairs {
            serializer.append_pair(name, value.wire());
        }
        serializer.finish()
    }

    /// Appends every pair of `other`.
    pub fn extend(&mut self, other: Self) {
        self.pairs.extend(other.pairs);
    }
}

/// When the transport may send a request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryRule {
    /// Reads and idempotent writes: repeat on connection failures, lost answers and
    /// transient 5xx.
    Idempotent,
    /// A POST that starts a task: repeat when it was never sent or the server answered a
    /// transient 5xx (the task did not start); never after a lost answer.
    TaskDispatch,
    /// Repeat only when the request certainly never left this host.
    NeverSentOnly,
}

/// Where a request's path starts.
///
/// Why a scope and not a second client: an extension endpoint served next to the API on
/// the same server (the lab's `GET /lab/vms/{vmid}/ssh`) needs the same credentials, TLS
/// trust, retries and counters as every API call; only the URL prefix differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathScope {
    /// Below `/api2/json`: every Proxmox VE endpoint.
    #[default]
    Api,
    /// Below the server's root (`scheme://host:port`), outside the API.
    ServerRoot,
}

/// One API call as a value: `METHOD /api2/json{path}` (or `METHOD {path}` on the server
/// root, see [`PathScope`]) with parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The path below `/api2/json` (or below the server root), segments percent-encoded,
    /// e.g. `/nodes/pve1/qemu`.
    pub path: String,
    pub params: Params,
    pub retry: RetryRule,
    /// What `path` is relative to.
    pub scope: PathScope,
}

impl Request {
    /// A request with no parameters; GETs are idempotent, other methods retry only when
    /// never sent.
    pub fn new(method: Method, path: String) -> Self {
        let retry = if method == Method::Get {
            RetryRule::Idempotent
        } else {
            RetryRule::NeverSentOnly
        };
        Self {
            method,
            path,
            params: Params::new(),
            retry,
            scope: PathScope::Api,
        }
    }

    /// A request for `path` on the server root instead of below `/api2/json` (an extension
    /// endpoint next to the API, e.g. `/lab/vms/150/ssh`); retry rule as for [`Request::new`].
    /// It is sent with the same credentials, TLS trust, retries and counters as any request.
    pub fn server_root(method: Method, path: String) -> Self {
        Self {
            scope: PathScope::ServerRoot,
            ..Self::new(method, path)
        }
    }

    /// Replaces the parameters.
    #[must_use]
    pub fn with_params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// Replaces the retry rule.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryRule) -> Self {
        self.retry = retry;
        self
    }
}

/// Characters left alone in a path segment: RFC 3986 unreserved plus `:` `@` `!` (UPIDs
/// and token ids read better unencoded and PVE accepts both).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@')
    .remove(b'!');

/// Joins segments into `/a/b/c`, percent-encoding each one (a `/` inside a segment is
/// encoded, never a separator).
pub fn path<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut text = String::new();
    for segment in segments {
        text.push('/');
        text.extend(utf8_percent_encode(segment.as_ref(), SEGMENT));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{Method, Params, path};
    use crate::secret::Secret;

    #[test]
    fn path_segments_are_encoded_one_by_one() {
        assert_eq!(path(["nodes", "pve1", "qemu"]), "/nodes/pve1/qemu");
        assert_eq!(
            path([
                "nodes",
                "pve1",
                "tasks",
                "UPID:pve1:1:2:3:qmstart:100:a@pam!t:"
            ]),
            "/nodes/pve1/tasks/UPID:pve1:1:2:3:qmstart:100:a@pam!t:"
        );
        assert_eq!(path(["storage", "a/b c?"]), "/storage/a%2Fb%20c%3F");
    }

    #[test]
    fn params_encode_booleans_arrays_and_hide_secrets() {
        let mut params = Params::new();
        params
            .set_bool("full", true)
            .push("command", "cat")
            .push("command", "/etc/os release")
            .set_secret("password", Secret::new("s3cr;et"));
        assert_eq!(
            params.encode(),
            "full=1&command=cat&command=%2Fetc%2Fos+release&password=s3cr%3Bet"
        );
        assert!(!format!("{params:?}").contains("s3cr"));
        assert_eq!(params.get("password"), None);
        params.set_bool("full", false);
        assert_eq!(params.get("full"), Some("0"));
        assert_eq!(params.names().filter(|name| *name == "full").count(), 1);
    }

    #[test]
    fn methods_parse_like_pvesh() {
        assert_eq!("get".parse::<Method>().unwrap(), Method::Get);
        assert_eq!("create".parse::<Method>().unwrap(), Method::Post);
        assert_eq!("set".parse::<Method>().unwrap(), Method::Put);
        assert!("patch".parse::<Method>().is_err());
    }
}
