//! Checks a response's `data` against the endpoint's `returns` schema.
//!
//! Why: the lab must answer in the shapes real PVE answers in, because third-party clients
//! decode them. Tests run every lab response through [`check_returns`] (or
//! [`check_response`] by method and path), so a handler that drops a required key, returns
//! a string where PVE returns a number, or invents an enum value fails a test.
//!
//! Perl scalars are loosely typed, so a few PVE habits are accepted on purpose: integers
//! given as decimal strings (`/cluster/nextid` returns `"100"`), booleans as `0`/`1`.

use serde_json::Value;

use super::Schema;
use super::validate::cached_pattern_matches;
use crate::api::Method;

/// Checks `data` against a `returns` schema; returns one message per violation, each
/// naming the JSON path (`data[0].status`).
///
/// # Errors
/// The list of violations, when there is at least one.
pub fn check_returns(schema: &Value, data: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    check(schema, data, "data", &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks `data` against the `returns` schema of `method` `path` (a concrete API path
/// below `/api2/json`, e.g. `/nodes/lloyd/qemu/150/config`).
///
/// # Errors
/// The violations, or one message if the lab does not serve that path.
pub fn check_response(method: Method, path: &str, data: &Value) -> Result<(), Vec<String>> {
    let resolved = Schema::get()
        .resolve(method, path)
        .map_err(|_| vec![format!("{path}: not in the lab's schema")])?;
    check_returns(&resolved.endpoint.returns, data)
}

fn is_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn check(schema: &Value, data: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(kind) = schema.get("type").and_then(Value::as_str) else {
        return;
    };
    let type_ok = match kind {
        "null" => data.is_null(),
        "object" => data.is_object(),
        "array" => data.is_array(),
        "string" => data.is_string(),
        "integer" => data.is_i64() || data.is_u64() || data.as_str().is_some_and(is_integer_text),
        "number" => data.is_number() || data.as_str().is_some_and(|t| t.parse::<f64>().is_ok()),
        "boolean" => {
            data.is_boolean()
                || data.as_u64().is_some_and(|n| n <= 1)
                || matches!(data.as_str(), Some("0" | "1"))
        }
        _ => true,
    };
    if !type_ok {
        problems.push(format!("{path}: expected {kind}, got {data}"));
        return;
    }
    match data {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (key, sub) in properties {
                    let optional = sub.get("optional").and_then(Value::as_i64) == Some(1);
                    match map.get(key) {
                        Some(value) => check(sub, value, &format!("{path}.{key}"), problems),
                        None if !optional => {
                            problems.push(format!("{path}.{key}: required but missing"));
                        }
                        None => {}
                    }
                }
                let closed = schema.get("additionalProperties").and_then(Value::as_i64) == Some(0);
                if closed {
                    for key in map.keys().filter(|key| !properties.contains_key(*key)) {
                        problems.push(format!("{path}.{key}: not in the schema"));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{index}]"), problems);
                }
            }
        }
        Value::String(text) => {
            if let Some(Value::Array(allowed)) = schema.get("enum")
                && !allowed.iter().any(|value| value.as_str() == Some(text))
            {
                problems.push(format!(
                    "{path}: '{text}' is not one of {}",
                    Value::Array(allowed.clone())
                ));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !cached_pattern_matches(pattern, text)
            {
                problems.push(format!("{path}: '{text}' does not match /{pattern}/"));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_missing_keys_wrong_types_and_enum_values() {
        let schema = json!({"type": "array", "items": {"type": "object", "properties": {
            "vmid": {"type": "integer"},
            "status": {"type": "string", "enum": ["running", "stopped"]},
            "name": {"type": "string", "optional": 1},
        }}});
        assert!(check_returns(&schema, &json!([{"vmid": 150, "status": "running"}])).is_ok());
        assert!(check_returns(&schema, &json!([{"vmid": "150", "status": "stopped"}])).is_ok());
        let problems = check_returns(
            &schema,
            &json!([{"status": "paused", "name": 5}, {"vmid": 1.5, "status": "running"}]),
        )
        .expect_err("an error");
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("data[0].vmid: required"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("data[0].status: 'paused'"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("data[0].name: expected string"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("data[1].vmid: expected integer"))
        );
    }

    #[test]
    fn checks_by_method_and_path() {
        let version = json!({"version": "9.1.1", "release": "9.1", "repoid": "0123abcd"});
        assert!(check_response(Method::Get, "/version", &version).is_ok());
        assert!(check_response(Method::Get, "/version", &json!({"release": "9.1"})).is_err());
        assert!(check_response(Method::Get, "/nope", &json!(null)).is_err());
        assert!(check_response(Method::Get, "/cluster/nextid", &json!("100")).is_ok());
    }
}
