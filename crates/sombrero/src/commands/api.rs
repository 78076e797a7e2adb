//! `sombrero api METHOD PATH [key=value ...]`: a raw API call through the typed client,
//! like `pvesh`.
//!
//! Why: when a stage fails, the quickest diagnosis is to ask Proxmox the same question the
//! stage asked, with the same URL, token, TLS trust and retry policy. Going through
//! `pve::Client` (not curl) guarantees exactly that, and prints PVE's errors the way every
//! other command does (status, reason, per-parameter errors; exit 1).

use std::fmt::Write as _;

use pve::{Method, Params, Request, RetryRule};
use serde_json::Value;

use crate::cli::ApiArgs;
use crate::context::Context;
use crate::exit::{BadInput, ExitStatus};

/// Builds the request from the command line, without IO.
///
/// # Errors
/// [`BadInput`] for an unknown method, a path not starting with `/`, or a parameter
/// without `=`.
pub fn build_request(args: &ApiArgs) -> Result<Request, BadInput> {
    let method: Method = args.method.parse().map_err(|error| BadInput {
        message: format!("{error}"),
        hint: Some("use get, post, put or delete (pvesh's create and set work too)".into()),
    })?;
    let raw_path = args.path.trim();
    if !raw_path.starts_with('/') {
        return Err(BadInput {
            message: format!("API path {raw_path:?} must start with '/'"),
            hint: Some("for example: sombrero api get /cluster/resources".into()),
        });
    }
    let relative = raw_path.strip_prefix("/api2/json").unwrap_or(raw_path);
    let segments: Vec<&str> = relative.split('/').filter(|s| !s.is_empty()).collect();
    let path = if segments.is_empty() {
        "/".to_owned()
    } else {
        pve::request::path(segments)
    };
    let mut params = Params::new();
    for pair in &args.params {
        let (name, value) = pair.split_once('=').ok_or_else(|| BadInput {
            message: format!("parameter {pair:?} is not key=value"),
            hint: Some("repeat a key for array parameters: command=ls command=-l".into()),
        })?;
        params.push(name, value);
    }
    // A raw write may start anything: repeat it only when it certainly never left.
    let retry = if method == Method::Get {
        RetryRule::Idempotent
    } else {
        RetryRule::NeverSentOnly
    };
    Ok(Request::new(method, path)
        .with_params(params)
        .with_retry(retry))
}

/// Sends `request` with the context's client and prints the answer's data. With `--lab`,
/// a task the call started is waited for before the command (and so the in-process lab)
/// ends, as it would keep running on a cluster after `api` returns.
///
/// # Errors
/// No API URL or credentials (exit 2); the API call's error (exit 1).
pub async fn call(request: &Request, context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    let client = context.client()?;
    // pve's errors already name the method, path, status and reason.
    let data = client.execute(request).await?;
    if context.lab().is_some()
        && let Some(upid) = data
            .as_str()
            .and_then(|text| text.parse::<pve::Upid>().ok())
    {
        printer.info(&format!(
            "lab: waiting for task {} to end before the in-process lab stops",
            upid.task_type()
        ));
        if let Err(error) = client.wait_task(&upid, LAB_TASK_DEADLINE, &|_| {}).await {
            printer.warn(&format!("lab: the task did not succeed: {error}"));
        }
    }
    if printer.json_mode() {
        printer.json(&data)?;
    } else {
        let text = render_text(&data);
        if !text.is_empty() {
            printer.data(text.trim_end());
        }
    }
    Ok(ExitStatus::Success)
}

/// How long `api --lab` waits for a task it started before the lab stops.
const LAB_TASK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A readable form of `data`: scalars as they are, objects as `key: value` lines, lists of
/// objects as an aligned table with one column per key.
pub fn render_text(data: &Value) -> String {
    let mut out = String::new();
    match data {
        Value::Object(map) => {
            let width = map.keys().map(String::len).max().unwrap_or(0);
            for (key, value) in map {
                let _ = writeln!(out, "{key:width$}  {}", cell(value));
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut columns: Vec<String> = Vec::new();
            for item in items {
                for key in item.as_object().into_iter().flat_map(|map| map.keys()) {
                    if !columns.contains(key) {
                        columns.push(key.clone());
                    }
                }
            }
            columns.sort();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| columns.iter().map(|key| cell(&item[key])).collect())
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(index, name)| {
                    rows.iter()
                        .map(|row| row[index].chars().count())
                        .chain([name.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            for row in std::iter::once(&columns).chain(rows.iter()) {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(text, width)| format!("{text:width$}"))
                    .collect();
                let _ = writeln!(out, "{}", line.join("  ").trim_end());
            }
        }
        Value::Array(items) => {
            for item in items {
                let _ = writeln!(out, "{}", cell(item));
            }
        }
        other => out.push_str(&cell(other)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{build_request, render_text};
    use crate::cli::ApiArgs;
    use pve::{Method, RetryRule};
    use serde_json::json;

    fn args(method: &str, path: &str, params: &[&str]) -> ApiArgs {
        ApiArgs {
            method: method.into(),
            path: path.into(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    #[test]
    fn builds_requests_like_pvesh() {
        let request = build_request(&args("GET", "/api2/json/cluster/resources", &["type=vm"]))
            .expect("valid request");
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/cluster/resources");
        assert_eq!(request.params.encode(), "type=vm");
        assert_eq!(request.retry, RetryRule::Idempotent);
        let exec = build_request(&args(
            "create",
            "/nodes/pve1/qemu/150/agent/exec",
            &["command=ls", "command=-l"],
        ))
        .expect("valid request");
        assert_eq!(exec.method, Method::Post);
        assert_eq!(exec.params.encode(), "command=ls&command=-l");
        assert_eq!(exec.retry, RetryRule::NeverSentOnly);
        assert!(build_request(&args("patch", "/version", &[])).is_err());
        assert!(build_request(&args("get", "version", &[])).is_err());
        assert!(build_request(&args("get", "/version", &["novalue"])).is_err());
    }

    #[test]
    fn renders_tables_objects_and_scalars() {
        let table =
            render_text(&json!([{"vmid": 150, "name": "jump"}, {"vmid": 9000, "template": 1}]));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["name", "template", "vmid"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["jump", "150"]
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            render_text(&json!({"version": "9.1"})).trim(),
            "version  9.1"
        );
        assert_eq!(render_text(&json!("UPID:x")), "UPID:x");
        assert_eq!(render_text(&json!(null)), "");
    }
}
