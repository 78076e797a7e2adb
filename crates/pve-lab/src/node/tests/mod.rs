//! Fast table-driven tests of the node, calling [`Node::handle`] directly.
//!
//! Why: the HTTP layer has its own tests; these pin the node's PVE behaviours (task
//! failures inside tasks, locks, digests, agent timing) with a 100x time scale so the
//! whole module runs in a few seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Node, NodeOptions};
use crate::api::{ApiError, ApiRequest, Identity, Method};

/// A fast node: durations scaled 100x down, agent up 200 ms after start.
pub(super) fn fast_options() -> NodeOptions {
    NodeOptions {
        time_scale: 0.01,
        agent_boot_delay: Duration::from_secs(20),
        with_template: true,
        ..NodeOptions::default()
    }
}

/// Like [`fast_options`], but clones and creates take 500 ms, so that tests can observe
/// them while they run even on a loaded machine.
pub(super) fn slow_clone_options() -> NodeOptions {
    let mut options = fast_options();
    options.durations.clone_linked = Duration::from_secs(50);
    options.durations.clone_full = Duration::from_secs(50);
    options.durations.create = Duration::from_secs(50);
    options
}

pub(super) fn request(method: Method, template: &str, params: &Value) -> ApiRequest {
    let mut path_params = BTreeMap::new();
    path_params.insert("node".to_owned(), "lloyd".to_owned());
    let mut body = Map::new();
    for (key, value) in params.as_object().cloned().unwrap_or_default() {
        if template.contains(&format!("{{{key}}}")) {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            path_params.insert(key, text);
        } else {
            body.insert(key, value);
        }
    }
    ApiRequest {
        method,
        template: template.to_owned(),
        path_params,
        params: body,
        identity: Identity {
            user: "root@pam".into(),
            token: Some("lab".into()),
        },
    }
}

pub(super) async fn call(
    node: &Node,
    method: Method,
    template: &str,
    params: Value,
) -> Result<Value, ApiError> {
    node.handle(request(method, template, &params))
        .await
        .map(|reply| reply.data)
}

pub(super) async fn ok(node: &Node, method: Method, template: &str, params: Value) -> Value {
    match call(node, method, template, params).await {
        Ok(value) => value,
        Err(error) => panic!("{template} failed: {error:?}"),
    }
}

/// Polls a task until it stops; returns its status object.
pub(super) async fn wait(node: &Node, upid: &Value) -> Value {
    for _ in 0..500 {
        let status = ok(
            node,
            Method::Get,
            "/nodes/{node}/tasks/{upid}/status",
            json!({"upid": upid}),
        )
        .await;
        if status["status"] == "stopped" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {upid} did not finish");
}

pub(super) async fn clone_template(node: &Node, newid: u32) -> Value {
    let upid = ok(
        node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/clone",
        json!({"vmid": 1001, "newid": newid, "name": "jump"}),
    )
    .await;
    let status = wait(node, &upid).await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
    upid
}

mod clone_config;
mod cluster;
mod guests;
mod persistence;
mod power_agent;
mod scenarios;

pub(super) const CLONE: &str = "/nodes/{node}/qemu/{vmid}/clone";
pub(super) const CONFIG: &str = "/nodes/{node}/qemu/{vmid}/config";
pub(super) const STATUS: &str = "/nodes/{node}/qemu/{vmid}/status/current";
pub(super) const TASK_LOG: &str = "/nodes/{node}/tasks/{upid}/log";

pub(super) async fn task_log(node: &Node, upid: &Value) -> Vec<String> {
    let lines = ok(
        node,
        Method::Get,
        TASK_LOG,
        json!({"upid": upid, "limit": 0}),
    )
    .await;
    lines
        .as_array()
        .into_iter()
        .flatten()
        .map(|line| line["t"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Dispatches a task (HTTP 200 with a UPID) and waits for it.
pub(super) async fn run_task(
    node: &Node,
    method: Method,
    template: &str,
    params: Value,
) -> (Value, Value) {
    let upid = ok(node, method, template, params).await;
    assert!(
        upid.as_str()
            .is_some_and(|upid| upid.starts_with("UPID:lloyd:")),
        "{upid}"
    );
    let status = wait(node, &upid).await;
    (upid, status)
}

pub(super) async fn start(node: &Node, vmid: u32) {
    let (_, status) = run_task(
        node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/start",
        json!({"vmid": vmid}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
}
