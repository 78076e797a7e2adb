//! The task endpoints: status, log, index and the node's task list.
//!
//! Why: clients wait on tasks by polling these; their shapes (string `exitstatus`, `total`
//! in the envelope, 400 `no such task`, token users split into `user` and `tokenid`) are
//! what third-party clients parse, so they live apart from the task machinery.

use serde_json::{Value, json};

use super::Shared;
use super::state::State;
use super::tasks::TaskRecord;
use crate::api::{ApiError, ApiReply, ApiRequest, ApiResult, Reply};

fn no_such_task() -> ApiError {
    ApiError::param("upid", "no such task")
}

fn task<'state>(
    state: &'state State,
    request: &ApiRequest,
) -> Result<&'state TaskRecord, ApiError> {
    let upid = request.path("upid");
    state
        .tasks
        .iter()
        .rev()
        .find(|task| task.upid == upid && task.node == request.path("node"))
        .ok_or_else(no_such_task)
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
pub(crate) fn status(shared: &Shared, request: &ApiRequest) -> ApiResult {
    shared.read(|state| Ok(task(state, request)?.status_json()))
}

/// `GET /nodes/{node}/tasks/{upid}`: the index of a task.
pub(crate) fn index(shared: &Shared, request: &ApiRequest) -> ApiResult {
    shared.read(|state| {
        task(state, request)?;
        Ok(json!([{"name": "log"}, {"name": "status"}]))
    })
}

/// `GET /nodes/{node}/tasks/{upid}/log?start&limit`: `[{n, t}]` with `total`.
pub(crate) fn log(shared: &Shared, request: &ApiRequest) -> ApiReply {
    let start = super::param_u64(request, "start").unwrap_or(0);
    let limit = super::param_u64(request, "limit").unwrap_or(50);
    shared.read(|state| {
        let task = task(state, request)?;
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let limit = match usize::try_from(limit) {
            Ok(0) | Err(_) => usize::MAX,
            Ok(limit) => limit,
        };
        let lines: Vec<Value> = task
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(index, line)| json!({"n": index + 1, "t": line}))
            .collect();
        Ok(Reply::with_total(Value::Array(lines), task.log.len()))
    })
}

/// `GET /nodes/{node}/tasks`: newest first, with PVE's filters and `total`.
pub(crate) fn list(shared: &Shared, request: &ApiRequest) -> ApiReply {
    let source = super::param_str(request, "source").unwrap_or("archive");
    let vmid = super::param_u64(request, "vmid").map(|vmid| vmid.to_string());
    let type_filter = super::param_str(request, "typefilter");
    let user_filter = super::param_str(request, "userfilter");
    let status_filter: Option<Vec<String>> = super::param_str(request, "statusfilter")
        .map(|text| text.split([',', ';', ' ']).map(str::to_lowercase).collect());
    let only_errors = super::param_bool(request, "errors").unwrap_or(false);
    let since = super::param_u64(request, "since");
    let until = super::param_u64(request, "until");
    let start = usize::try_from(super::param_u64(request, "start").unwrap_or(0)).unwrap_or(0);
    let limit = usize::try_from(super::param_u64(request, "limit").unwrap_or(50)).unwrap_or(50);
    shared.read(|state| {
        let matching: Vec<Value> = state
            .tasks
            .iter()
            .rev()
            .filter(|task| match source {
                "active" => task.endtime.is_none(),
                "all" => true,
                _ => task.endtime.is_some(),
            })
            .filter(|task| vmid.as_ref().is_none_or(|vmid| &task.id == vmid))
            .filter(|task| type_filter.is_none_or(|kind| task.kind == kind))
            .filter(|task| {
                user_filter
                    .is_none_or(|user| task.user.to_lowercase().contains(&user.to_lowercase()))
            })
            .filter(|task| !only_errors || task.failed())
            .filter(|task| since.is_none_or(|since| task.starttime >= since))
            .filter(|task| until.is_none_or(|until| task.starttime <= until))
            .filter(|task| {
                status_filter.as_ref().is_none_or(|wanted| {
                    let class = match task.exitstatus.as_deref() {
                        None => "running",
                        Some("OK") => "ok",
                        Some(status) if status.starts_with("WARNINGS") => "warning",
                        Some("unexpected status") => "unknown",
                        Some(_) => "error",
                    };
                    wanted.iter().any(|status| status == class)
                })
            })
            .map(TaskRecord::list_json)
            .collect();
        let total = matching.len();
        let page: Vec<Value> = matching.into_iter().skip(start).take(limit).collect();
        Ok(Reply::with_total(Value::Array(page), total))
    })
}
