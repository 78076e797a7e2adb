//! Reading validated request parameters and path ids.
//!
//! Why: the HTTP layer already coerced parameters to the schema's JSON types, but handlers
//! still read them defensively (a number may arrive as a string from an in-process caller)
//! so that no input can panic the node.

use serde_json::Value;

use crate::api::{ApiError, ApiRequest};

/// A string parameter.
pub(crate) fn param_str<'request>(
    request: &'request ApiRequest,
    name: &str,
) -> Option<&'request str> {
    request.params.get(name).and_then(Value::as_str)
}

/// An unsigned integer parameter (JSON number or numeric string).
pub(crate) fn param_u64(request: &ApiRequest, name: &str) -> Option<u64> {
    match request.params.get(name)? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        Value::Bool(flag) => Some(u64::from(*flag)),
        _ => None,
    }
}

/// A boolean parameter (JSON bool, 0/1 number or string).
pub(crate) fn param_bool(request: &ApiRequest, name: &str) -> Option<bool> {
    match request.params.get(name)? {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => number.as_u64().map(|value| value != 0),
        Value::String(text) => Some(text == "1"),
        _ => None,
    }
}

/// The `{vmid}` path parameter.
pub(crate) fn vmid(request: &ApiRequest) -> Result<u32, ApiError> {
    request
        .path("vmid")
        .parse()
        .map_err(|_| ApiError::param("vmid", "type check ('integer') failed"))
}

/// A 500 from a handler failure message.
pub(crate) fn internal(message: String) -> ApiError {
    ApiError::internal(message)
}

/// The `skiplock` flag; like PVE, only `root@pam` itself (not even its API tokens) may
/// set it: 400 `Only root may use this option.`.
pub(crate) fn skiplock(request: &ApiRequest) -> Result<bool, ApiError> {
    let skiplock = param_bool(request, "skiplock").unwrap_or(false);
    if skiplock && request.identity.upid_user() != "root@pam" {
        return Err(ApiError::param(
            "skiplock",
            "Only root may use this option.",
        ));
    }
    Ok(skiplock)
}
