//! The agent endpoints of QEMU guests: answered by the `qemu-guest-agent` inside the VM
//! (state-only guests are answered by [`super::state_only`]).
//!
//! Why: in qemu mode nothing is faked; `ping`, `network-get-interfaces`, `exec`,
//! `exec-status` and `file-read` become QGA commands (`guest-ping`, `guest-exec`,
//! `guest-file-open/read/close`, ...), and the answers are shaped like PVE's: `exec-status`
//! with decoded `out-data`/`err-data` and 0/1 flags, `file-read` with the decoded content,
//! `bytes-read` and `truncated` (at most 16 MiB, like PVE).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::api::{ApiError, ApiRequest, ApiResult, Method};
use crate::node::Shared;
use crate::node::params::{internal, vmid};
use crate::qemu::{AgentError, QemuGuests};

/// The largest file `agent/file-read` returns (PVE: 16 MiB).
const FILE_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// In qemu mode, answers the agent endpoints from the real guest agent; `None` otherwise
/// (the state-only handlers answer).
pub(crate) async fn intercept(shared: &Shared, request: &ApiRequest) -> Option<ApiResult> {
    let guests = shared.options.guests.qemu()?;
    if request.method == Method::Post && request.template == "/nodes/{node}/qemu/{vmid}/agent" {
        // The generic form: `command=get-host-name` is QGA's `guest-get-host-name`.
        let command = crate::node::param_str(request, "command")
            .unwrap_or_default()
            .to_owned();
        return Some(generic(shared, guests, request, &command).await);
    }
    let command = request
        .template
        .strip_prefix("/nodes/{node}/qemu/{vmid}/agent/")?;
    let known = matches!(
        (request.method, command),
        (Method::Post, "ping" | "exec")
            | (
                Method::Get,
                "network-get-interfaces" | "exec-status" | "file-read"
            )
    );
    if !known {
        return None;
    }
    Some(agent(shared, guests, request, command).await)
}

/// PVE's `assert_agent_available`: configured and running.
fn check_available(
    shared: &Shared,
    guests: &QemuGuests,
    request: &ApiRequest,
) -> Result<u32, ApiError> {
    let vmid = vmid(request)?;
    shared.read(|state| {
        let vm = state.vm(request.path("node"), vmid).map_err(internal)?;
        if !vm.agent_enabled() {
            return Err(ApiError::internal("No QEMU guest agent configured"));
        }
        if vm.run.is_none() || !guests.is_running(vmid) {
            return Err(ApiError::internal(format!("VM {vmid} is not running")));
        }
        Ok(vmid)
    })
}

async fn generic(
    shared: &Shared,
    guests: &QemuGuests,
    request: &ApiRequest,
    command: &str,
) -> ApiResult {
    let vmid = check_available(shared, guests, request)?;
    let name = format!("guest-{command}");
    guests
        .agent(vmid, &name, None)
        .await
        .map(|result| json!({"result": result}))
        .map_err(|error| agent_error(&error))
}

fn agent_error(error: &AgentError) -> ApiError {
    ApiError::internal(error.to_string())
}

async fn agent(
    shared: &Shared,
    guests: &QemuGuests,
    request: &ApiRequest,
    command: &str,
) -> ApiResult {
    let vmid = check_available(shared, guests, request)?;
    let call = |name: &'static str, arguments: Option<Value>| async move {
        guests
            .agent(vmid, name, arguments)
            .await
            .map_err(|error| agent_error(&error))
    };
    match command {
        "ping" => call("guest-ping", None)
            .await
            .map(|_| json!({"result": {}})),
        "network-get-interfaces" => call("guest-network-get-interfaces", None)
            .await
            .map(|result| json!({"result": result})),
        "exec" => {
            let parts: Vec<String> = match request.params.get("command") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect(),
                Some(Value::String(text)) => vec![text.clone()],
                _ => Vec::new(),
            };
            let Some((path, arguments)) = parts.split_first() else {
                return Err(ApiError::param(
                    "command",
                    "property is missing and it is not optional",
                ));
            };
            let mut arguments = json!({"path": path, "arg": arguments, "capture-output": true});
            if let Some(input) = crate::node::param_str(request, "input-data") {
                arguments["input-data"] = json!(STANDARD.encode(input));
            }
            call("guest-exec", Some(arguments))
                .await
                .map(|result| json!({"pid": result.get("pid").cloned().unwrap_or(Value::Null)}))
        }
        "exec-status" => {
            let pid = crate::node::param_u64(request, "pid").unwrap_or(0);
            let mut result = call("guest-exec-status", Some(json!({"pid": pid}))).await?;
            if let Some(object) = result.as_object_mut() {
                let exited = object
                    .get("exited")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                object.insert("exited".into(), json!(u8::from(exited)));
                for key in ["out-data", "err-data"] {
                    if let Some(Value::String(encoded)) = object.get(key) {
                        let decoded = STANDARD.decode(encoded).unwrap_or_default();
                        let text = String::from_utf8_lossy(&decoded).into_owned();
                        object.insert(key.into(), json!(text));
                    }
                }
                for key in ["out-truncated", "err-truncated"] {
                    if let Some(flag) = object.get(key).and_then(Value::as_bool) {
                        object.insert(key.into(), json!(u8::from(flag)));
                    }
                }
            }
            Ok(result)
        }
        _ => file_read(request, call).await,
    }
}

async fn file_read<F, Fut>(request: &ApiRequest, call: F) -> ApiResult
where
    F: Fn(&'static str, Option<Value>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    let file = crate::node::param_str(request, "file")
        .unwrap_or_default()
        .to_owned();
    let offset = crate::node::param_u64(request, "offset").unwrap_or(0);
    let limit = crate::node::param_u64(request, "count")
        .unwrap_or(FILE_READ_LIMIT)
        .min(FILE_READ_LIMIT);
    let handle = call("guest-file-open", Some(json!({"path": file, "mode": "r"}))).await?;
    let mut content = Vec::new();
    let mut truncated = false;
    let outcome: Result<(), ApiError> = async {
        if offset > 0 {
            call(
                "guest-file-seek",
                Some(json!({"handle": handle, "offset": offset, "whence": "set"})),
            )
            .await?;
        }
        loop {
            let remaining = limit.saturating_sub(content.len() as u64);
            let chunk = remaining.clamp(1, 1024 * 1024);
            let read = call(
                "guest-file-read",
                Some(json!({"handle": handle, "count": chunk})),
            )
            .await?;
            let bytes = read
                .get("buf-b64")
                .and_then(Value::as_str)
                .and_then(|encoded| STANDARD.decode(encoded).ok())
                .unwrap_or_default();
            let eof = read.get("eof").and_then(Value::as_bool).unwrap_or(true);
            if remaining == 0 {
                truncated = !bytes.is_empty();
                break;
            }
            content.extend_from_slice(&bytes);
            if eof || bytes.is_empty() {
                break;
            }
        }
        Ok(())
    }
    .await;
    let _ = call("guest-file-close", Some(json!({"handle": handle}))).await;
    outcome?;
    let mut answer = json!({
        "content": String::from_utf8_lossy(&content),
        "bytes-read": content.len(),
    });
    if truncated {
        answer["truncated"] = json!(1);
    }
    Ok(answer)
}
