//! What every level of the HTTP layer shares: the lab's state as handlers see it, the
//! "drop this connection" error, and reading a request body within its limit.
//!
//! Place in the direction: the leaf. `server -> connection -> router -> control` each
//! import this module and it imports none of them, so no level of the HTTP layer has to
//! reach back up to the one that calls it (which is what made `server` and `connection`,
//! and `router` and `control`, import each other before).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::api::ApiError;
use crate::auth::Auth;
use crate::faults::Faults;
use crate::node::Node;
use crate::requests::RequestLog;

/// Everything a request handler needs.
#[derive(Debug)]
pub(crate) struct Shared {
    pub node: Node,
    pub auth: Auth,
    pub faults: Arc<Faults>,
    pub requests: Arc<RequestLog>,
    pub auth_failure_delay: Duration,
    pub body_limit: usize,
}

/// The error a handler returns to make hyper drop the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by fault injection")]
pub(crate) struct ResetConnection;

/// Why a request got no normal answer: an API error to send, or a connection to reset.
pub(crate) enum Failure {
    Api(ApiError),
    Reset,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

/// A client has this long to send its whole body; then it gets 408 and the connection
/// closes, so a stalled client cannot hold a connection task forever.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the body within `limit`: 413 when larger, `Reset` when the client broke off.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<bytes::Bytes, Failure> {
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await;
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(Failure::Api(ApiError::new(413, "request entity too large")))
        }
        Ok(Err(_)) => Err(Failure::Reset),
        Err(_) => Err(Failure::Api(ApiError::new(408, "request body timeout"))),
    }
}
