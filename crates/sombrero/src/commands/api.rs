//! `sombrero api METHOD PATH [key=value ...]`: a raw API call through the typed client,
//! like `pvesh`.
//!
//! Why: when a stage fails, the quickest diagnosis is to ask Proxmox the same question the
//! stage asked, with the same URL, token, TLS trust and retry policy. Going through
//! `pve::Client` (not curl) guarantees exactly that, and prints PVE's errors the way every
//! other command does (status, reason, per-parameter errors; exit 1).

use std::fmt::Write as _;

use anyhow::Context as _;
use pve::{Client, Method, Params, Request, RetryRule, TlsMode};
use serde_json::Value;
use sombrero_core::settings::Settings;

use crate::cli::{ApiArgs, GlobalArgs};
use crate::context::resolve_settings;
use crate::exit::{BadInput, ExitStatus};
use crate::printer::Printer;

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

/// A client from the resolved settings: URL, token (or user and password), TLS trust.
///
/// # Errors
/// [`BadInput`] when the URL or credentials are missing; client setup errors.
pub fn client_from_settings(settings: &Settings, printer: &Printer) -> anyhow::Result<Client> {
    let api = &settings.api;
    let mut builder = Client::builder(settings.require_api_url()?.as_str());
    // A token wins; user and password (ticket login) only when no token is set.
    builder = if let (None, Some(user), Some(password)) = (&api.token, &api.username, &api.password)
    {
        builder.password(&user.value, password.value.clone())
    } else {
        builder.token(settings.require_api_token()?.clone())
    };
    let tls = settings.tls_mode();
    if matches!(tls, TlsMode::Insecure) {
        printer.warn(
            "TLS certificate verification is disabled (insecure); pin the fingerprint instead",
        );
    }
    Ok(builder.tls(tls).build()?)
}

/// Runs `sombrero api`.
///
/// # Errors
/// Bad input (exit 2) or the API call's error (exit 1).
pub fn run(args: &ApiArgs, global: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let request = build_request(args)?;
    let settings = resolve_settings(global, None, printer)?;
    let client = client_from_settings(&settings, printer)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // pve's errors already name the method, path, status and reason.
    let data = runtime.block_on(client.execute(&request))?;
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
