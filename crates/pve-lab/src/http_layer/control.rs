//! The lab's extension endpoints, outside `/api2`: `GET`/`PUT /lab/faults`,
//! `GET /lab/vms/{vmid}/ssh`, `GET /lab/guests`, and the cluster's power switches
//! `GET /lab/nodes` and `POST /lab/nodes/{node}/down` / `.../up`, and the request
//! counts `GET`/`DELETE /lab/requests` ([`crate::requests`]).
//!
//! `GET /lab/nodes` answers `[{"node","online"}]` in cluster order; `POST
//! /lab/nodes/{node}/down` takes a member down (it loses power: its VMs stop, real QEMU
//! guests are killed) and `.../up` brings it back, both answering `{"node","online"}`
//! (`online` as 0/1, like every boolean the lab answers)
//! (404 `no such cluster node 'X'` for a stranger). They need the full-privilege token,
//! like `PUT /lab/faults`, whose `node-down=NAME` keys set the same state: a `PUT` sets
//! exactly the listed nodes down and every other member up.
//!
//! `GET /lab/guests` says what the lab's VMs are (`{"guests":"qemu"|"state",
//! "accelerator","base_image"}`), so a command that needs a real guest (`build`) can say
//! so before it creates anything, and knows which import volume stands for a cloud image.
//!
//! `GET /lab/vms/{vmid}/ssh` tells a client which 127.0.0.1 port forwards to a real
//! guest's SSH port (`{"data":{"host":"127.0.0.1","port":N}}`); `{"data":null}` for a
//! state-only guest or a stopped VM (there is no SSH to reach). Any valid credential may
//! read it, like the VM's status.
//!
//! Why: fault drills change faults while a client runs (start clean, then make 30% of
//! requests fail, then heal), without restarting the lab and losing its state. The
//! endpoint lives outside `/api2` so no PVE client can reach it by accident, is never
//! subject to injected faults itself, and requires the full-privilege token.
//!
//! `PUT` takes the spec as the raw body (`http5xx=0.3,task-fail=0.5,seed=7`) and replaces
//! every fault, HTTP-level and task-level alike (an absent key means no such fault;
//! `slow` defaults to 1); the seed is kept unless given, and both decision sequences
//! restart from it. Tasks already running keep the fault they drew when they started.
//!
//! Both answers carry `injected`: `{"http5xx": N, "reset": N, "lost": N}`, the HTTP-level faults
//! injected since the spec was last set, so a fault drill can prove faults happened.
//!
//! Place in the direction: a handler, at the bottom of the HTTP layer. The router calls
//! it; it imports only the leaf [`super::shared`] (state, body reading), never the router.

use http::Request;
use hyper::body::Incoming;
use serde_json::json;

use super::shared::{Failure, ResetConnection, Shared, read_body};
use crate::api::ApiError;
use crate::faults::FaultSpec;
use crate::wire::{self, LabResponse};

fn spec_json(spec: &FaultSpec, injected: crate::faults::InjectedCounts) -> serde_json::Value {
    json!({
        "injected": injected,
        "spec": spec.to_string(),
        "http5xx": spec.http_5xx,
        "reset": spec.reset,
        "lost": spec.lost,
        "lock-timeout": spec.lock_timeout,
        "task-fail": spec.task_fail,
        "slow": spec.slow,
        "agent-never": spec.agent_never,
        "node-down": spec.node_down,
        "seed": spec.seed,
    })
}

/// Answers a `/lab/...` request.
///
/// # Errors
/// [`ResetConnection`] only if the client broke off while sending the body.
pub(crate) async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<LabResponse, ResetConnection> {
    let result = answer(shared, request).await;
    match result {
        Ok(response) => Ok(response),
        Err(Some(error)) => {
            if error.status == 401 {
                tokio::time::sleep(shared.auth_failure_delay).await;
            }
            Ok(wire::error(&error))
        }
        Err(None) => Err(ResetConnection),
    }
}

async fn answer(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<LabResponse, Option<ApiError>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if let Some(vmid) = ssh_path(&path) {
        return ssh_forward(shared, &request, vmid);
    }
    if path == "/lab/guests" && method == http::Method::GET {
        shared
            .auth
            .authenticate(request.headers(), true)
            .map_err(Some)?;
        return Ok(wire::success(shared.node.guests_summary()));
    }
    if path == "/lab/nodes" || path.starts_with("/lab/nodes/") {
        return nodes(shared, &request, &path);
    }
    if path == "/lab/requests" {
        return requests(shared, &request);
    }
    if path != "/lab/faults" {
        return Err(Some(ApiError::new(
            501,
            format!("Method '{method} {path}' not implemented"),
        )));
    }
    let authenticated = shared
        .auth
        .authenticate(request.headers(), method == http::Method::GET)
        .map_err(Some)?;
    require_root(&authenticated.identity)?;
    match method {
        http::Method::GET => Ok(wire::success(spec_json(
            &shared.faults.spec(),
            shared.faults.injected(),
        ))),
        http::Method::PUT => {
            let body =
                read_body(request.into_body(), 4096)
                    .await
                    .map_err(|failure| match failure {
                        Failure::Api(error) => Some(error),
                        Failure::Reset => None,
                    })?;
            let text = String::from_utf8_lossy(&body);
            let spec: FaultSpec =
                text.trim()
                    .parse()
                    .map_err(|error: crate::faults::FaultSpecError| {
                        Some(ApiError::param("spec", error.to_string()))
                    })?;
            let seed_given = text
                .split(',')
                .filter_map(|part| part.split_once('='))
                .any(|(key, _)| key.trim() == "seed");
            let spec = FaultSpec {
                seed: if seed_given {
                    spec.seed
                } else {
                    shared.faults.spec().seed
                },
                ..spec
            };
            shared
                .node
                .set_nodes_down(&spec.node_down)
                .map_err(|error| Some(ApiError::param("spec", error.to_string())))?;
            shared.node.set_task_faults(spec.task_faults());
            shared.faults.set(spec.clone());
            Ok(wire::success(spec_json(&spec, shared.faults.injected())))
        }
        other => Err(Some(ApiError::new(
            501,
            format!("Method '{other} {path}' not implemented"),
        ))),
    }
}

/// `GET /lab/requests`: the API requests answered so far, `{"GET /cluster/resources":
/// N, ...}`; `DELETE` forgets them. Any valid credential may read; clearing needs root.
fn requests(shared: &Shared, request: &Request<Incoming>) -> Result<LabResponse, Option<ApiError>> {
    let reading = request.method() == http::Method::GET;
    let authenticated = shared
        .auth
        .authenticate(request.headers(), reading)
        .map_err(Some)?;
    match *request.method() {
        http::Method::GET => Ok(wire::success(json!(shared.requests.snapshot()))),
        http::Method::DELETE => {
            require_root(&authenticated.identity)?;
            shared.requests.clear();
            Ok(wire::success(serde_json::Value::Null))
        }
        ref other => Err(Some(ApiError::new(
            501,
            format!("Method '{other} /lab/requests' not implemented"),
        ))),
    }
}

fn require_root(identity: &crate::api::Identity) -> Result<(), Option<ApiError>> {
    if identity.user != crate::auth::ROOT_USER
        || identity.token.as_deref() == Some(crate::auth::READONLY_TOKEN_ID)
    {
        return Err(Some(ApiError::new(
            403,
            "Permission check failed (/lab, Sys.Modify)",
        )));
    }
    Ok(())
}

fn node_json(shared: &Shared, name: &str) -> serde_json::Value {
    json!({"node": name, "online": shared.node.node_online(name).unwrap_or(false)})
}

/// `GET /lab/nodes`, `POST /lab/nodes/{node}/down` and `POST /lab/nodes/{node}/up`.
fn nodes(
    shared: &Shared,
    request: &Request<Incoming>,
    path: &str,
) -> Result<LabResponse, Option<ApiError>> {
    let method = request.method().clone();
    let not_implemented = || {
        Some(ApiError::new(
            501,
            format!("Method '{method} {path}' not implemented"),
        ))
    };
    let reading = method == http::Method::GET;
    let authenticated = shared
        .auth
        .authenticate(request.headers(), reading)
        .map_err(Some)?;
    require_root(&authenticated.identity)?;
    if path == "/lab/nodes" {
        if !reading {
            return Err(not_implemented());
        }
        let items: Vec<serde_json::Value> = shared
            .node
            .cluster_nodes()
            .iter()
            .map(|name| node_json(shared, name))
            .collect();
        return Ok(wire::success(serde_json::Value::Array(items)));
    }
    let rest = path.trim_start_matches("/lab/nodes/");
    let (name, online) = match rest.rsplit_once('/') {
        Some((name, "down")) => (name, false),
        Some((name, "up")) => (name, true),
        _ => return Err(not_implemented()),
    };
    if method != http::Method::POST {
        return Err(not_implemented());
    }
    shared
        .node
        .set_node_online(name, online)
        .map_err(|error| Some(ApiError::new(404, error.to_string())))?;
    Ok(wire::success(node_json(shared, name)))
}

/// The vmid of `/lab/vms/{vmid}/ssh`.
fn ssh_path(path: &str) -> Option<&str> {
    path.strip_prefix("/lab/vms/")?.strip_suffix("/ssh")
}

fn ssh_forward(
    shared: &Shared,
    request: &Request<Incoming>,
    vmid: &str,
) -> Result<LabResponse, Option<ApiError>> {
    if request.method() != http::Method::GET {
        return Err(Some(ApiError::new(
            501,
            format!(
                "Method '{} {}' not implemented",
                request.method(),
                request.uri().path()
            ),
        )));
    }
    shared
        .auth
        .authenticate(request.headers(), true)
        .map_err(Some)?;
    let vmid: u32 = vmid
        .parse()
        .ok()
        .filter(|vmid| (100..=999_999_999).contains(vmid))
        .ok_or_else(|| {
            Some(ApiError::param(
                "vmid",
                "invalid format - value does not look like a valid VM ID",
            ))
        })?;
    match shared.node.ssh_forward(vmid) {
        Ok(Some(address)) => Ok(wire::success(json!({
            "host": address.ip().to_string(),
            "port": address.port(),
        }))),
        Ok(None) => Ok(wire::success(serde_json::Value::Null)),
        Err(message) => Err(Some(ApiError::new(404, message))),
    }
}
