//! One request, front to back: faults, route, authentication, parameters, permissions,
//! then the node.
//!
//! Why: the order matters and mirrors pve-http-server: an unknown path is 501 before
//! anyone is asked for credentials; a bad credential is 401 (delayed) before parameters
//! are looked at; parameters are verified (400) before permissions (403), because
//! permission paths like `/vms/{vmid}` are filled from verified parameters. Only
//! `/access/ticket` is answered here (it is authentication, not node state); everything
//! else goes to [`crate::node::Node::handle`] as an [`ApiRequest`].
//!
//! Place in the direction: under `connection`, above the handlers. `/lab/...` requests go
//! down to [`super::control`]; what both share (state, body reading, [`Failure`]) is in
//! the leaf [`super::shared`], so `control` never imports the router.

use http::Request;
use hyper::body::Incoming;
use serde_json::{Map, Value};

use super::control;
use super::shared::{Failure, ResetConnection, Shared, read_body};
use crate::api::{ApiError, ApiRequest, Method};
use crate::faults::HttpFault;
use crate::schema::validate::validate_parameters;
use crate::schema::{Schema, method_name};
use crate::wire::{self, LabResponse};

/// The prefix of every API path.
pub const API_PREFIX: &str = "/api2/json";

fn api_method(method: &http::Method) -> Option<Method> {
    match *method {
        http::Method::GET => Some(Method::Get),
        http::Method::POST => Some(Method::Post),
        http::Method::PUT => Some(Method::Put),
        http::Method::DELETE => Some(Method::Delete),
        _ => None,
    }
}

fn not_implemented(method: &http::Method, path: &str) -> ApiError {
    ApiError::new(501, format!("Method '{method} {path}' not implemented"))
}

/// Answers one HTTP request; `Err` drops the connection (the `reset` fault).
///
/// # Errors
/// [`ResetConnection`] when a fault resets the connection or the client's body broke off.
pub(crate) async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<LabResponse, ResetConnection> {
    let path = request.uri().path().to_owned();
    if path.starts_with("/lab/") {
        return control::handle(shared, request).await;
    }
    shared.requests.record(request.method(), &path);
    let mut lose_answer = false;
    match shared.faults.next_request() {
        Some(HttpFault::Reset) => return Err(ResetConnection),
        Some(HttpFault::Error { status, message }) => {
            return Ok(wire::error(&ApiError::new(status, message)));
        }
        Some(HttpFault::Lost) => lose_answer = true,
        None => {}
    }
    let started = std::time::Instant::now();
    let response = match answer(shared, request, &path).await {
        Ok(response) => response,
        Err(Failure::Api(error)) => {
            if error.status == 401 {
                tokio::time::sleep(shared.auth_failure_delay).await;
            }
            wire::error(&error)
        }
        Err(Failure::Reset) => return Err(ResetConnection),
    };
    tracing::debug!(
        path = %path,
        status = response.status().as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "api request"
    );
    if lose_answer {
        // Handled (a task may be running now), but the client never hears of it.
        return Err(ResetConnection);
    }
    Ok(response)
}

async fn answer(
    shared: &Shared,
    request: Request<Incoming>,
    path: &str,
) -> Result<LabResponse, Failure> {
    let http_method = request.method().clone();
    let relative = path
        .strip_prefix(API_PREFIX)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    let Some(relative) = relative else {
        return Err(not_implemented(&http_method, path).into());
    };
    let Some(method) = api_method(&http_method) else {
        return Err(not_implemented(&http_method, relative).into());
    };
    let resolved = Schema::get()
        .resolve(method, relative)
        .map_err(|_| not_implemented(&http_method, relative))?;
    let endpoint = resolved.endpoint;
    let is_world = endpoint.permissions.get("user").and_then(Value::as_str) == Some("world");
    let authenticated = if is_world {
        None
    } else {
        let authenticated = shared
            .auth
            .authenticate(request.headers(), method == Method::Get)?;
        if authenticated.identity.token.is_some() && !endpoint.allow_token {
            return Err(ApiError::new(401, "Authentication failed!").into());
        }
        Some(authenticated)
    };
    let (parts, body) = request.into_parts();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let body = read_body(body, shared.body_limit).await?;
    let body_params = wire::parse_body(content_type, &body).map_err(ApiError::from)?;
    let query = wire::pairs_to_map(wire::parse_form(parts.uri.query().unwrap_or("")));
    let mut params = wire::merge(body_params, query);
    for (name, value) in &resolved.path_params {
        params.insert(name.clone(), Value::String(value.clone()));
    }
    let mut params = validate_parameters(&endpoint.parameters, params)?;
    let Some(authenticated) = authenticated else {
        return world_endpoint(shared, method, &endpoint.template, &params);
    };
    let name = method_name(method);
    crate::permissions::check(
        name,
        &endpoint.template,
        &endpoint.permissions,
        &authenticated.identity,
        &params,
    )?;
    for name in resolved.path_params.keys() {
        params.remove(name);
    }
    let api_request = ApiRequest {
        method,
        template: endpoint.template.clone(),
        path_params: resolved.path_params,
        params,
        identity: authenticated.identity,
    };
    Ok(match shared.node.handle(api_request).await {
        Ok(reply) => wire::success(reply),
        Err(error) => return Err(error.into()),
    })
}

/// Endpoints without authentication: only `/access/ticket` in the lab's subset.
fn world_endpoint(
    shared: &Shared,
    method: Method,
    template: &str,
    params: &Map<String, Value>,
) -> Result<LabResponse, Failure> {
    let text = |name: &str| params.get(name).and_then(Value::as_str);
    match (method, template) {
        (Method::Post, "/access/ticket") => {
            let data = shared.auth.login(
                text("username").unwrap_or(""),
                text("password").unwrap_or(""),
                text("realm"),
            )?;
            Ok(wire::success(data))
        }
        (Method::Get, "/access/ticket") => Ok(wire::success(Value::Null)),
        _ => Err(ApiError::new(
            501,
            format!(
                "Method '{} {template}' not implemented",
                method_name(method)
            ),
        )
        .into()),
    }
}
