//! Turning what came back into values or typed errors: the body read under a size cap,
//! transport failures sorted by whether the request may have reached the server, and PVE's
//! error envelope (`message`, per-parameter `errors`) decoded.
//!
//! Why apart from the sending loop in `client.rs`: retries decide on these classifications,
//! so they are kept in one small place that the transport tests exercise directly.

use serde_json::Value;

use crate::client::Client;
use crate::error::{ApiError, Error};
use crate::request::Request;

impl Client {
    /// Reads the body chunk by chunk, refusing one longer than the configured limit
    /// before it is buffered (an announced `Content-Length` is checked first).
    pub(crate) async fn read_body(
        &self,
        request: &Request,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, Error> {
        let limit = self.inner.max_response_bytes;
        let too_long = || Error::Decode {
            method: request.method,
            path: request.path.clone(),
            reason: format!("the response body is longer than the {limit}-byte limit"),
            source: None,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_long());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| Error::MaybeSent {
            method: request.method,
            path: request.path.clone(),
            source: error,
        })? {
            if body.len() + chunk.len() > limit {
                return Err(too_long());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    pub(crate) fn transport_error(&self, request: &Request, error: reqwest::Error) -> Error {
        if error.is_connect()
            && let Some(problem) = rustls_error(&error).map(crate::tls::problem_of)
        {
            Error::Tls {
                base: self.inner.base.clone(),
                problem,
                source: error,
            }
        } else if error.is_connect() {
            Error::NotSent {
                method: request.method,
                path: request.path.clone(),
                base: self.inner.base.clone(),
                source: error,
            }
        } else {
            Error::MaybeSent {
                method: request.method,
                path: request.path.clone(),
                source: error,
            }
        }
    }
}

/// The rustls error inside a transport error, if the TLS layer failed.
fn rustls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // `io::Error::source` skips the wrapped error itself; look inside explicitly.
        source = match current.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => current.source(),
            },
            None => current.source(),
        };
    }
    None
}

pub(crate) fn api_error(
    request: &Request,
    status: u16,
    reason: String,
    body: Option<Value>,
) -> ApiError {
    let body = body.unwrap_or(Value::Null);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|text| text.trim_end().to_owned())
        .filter(|text| !text.is_empty());
    let errors = body
        .get("errors")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, problem)| {
                    let text = problem
                        .as_str()
                        .map_or_else(|| problem.to_string(), str::to_owned);
                    (name.clone(), text.trim_end().to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    ApiError {
        method: request.method,
        path: request.path.clone(),
        status,
        reason,
        message,
        errors,
    }
}
