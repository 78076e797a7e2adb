//! The simulated Proxmox VE node: VMs, storages, tasks and guests behind the API.
//!
//! Not built yet: every request is answered `501 Method '...' not implemented` until the
//! state model lands (issue "The lab").

use crate::api::{ApiError, ApiRequest, ApiResult, Method};

/// The node's state and the handlers for every implemented endpoint.
#[derive(Debug, Default)]
pub struct Node {}

impl Node {
    /// Answers one validated request.
    pub async fn handle(&self, request: ApiRequest) -> ApiResult {
        let method = match request.method {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        };
        Err(ApiError::new(
            501,
            format!("Method '{method} {}' not implemented", request.template),
        ))
    }
}
