//! Parameter validation and coercion, the way `PVE::JSONSchema::validate` does it.
//!
//! Why: PVE rejects requests with a 400 `Parameter verification failed.` and one message
//! per parameter, and clients (ours included) must see those exact texts to be tested
//! honestly. The checks run in PVE's order per parameter (missing, type, format, pattern,
//! length, range, enum) and stop at the first failure of each parameter. Indexed schema
//! keys (`net[n]`) match `net0`..`netN`. After validation, values are coerced to the
//! schema's JSON types for the node (integers and numbers as numbers, booleans as bools).
//!
//! The checks themselves live in `checks` (re-exported here); the tests in
//! `validate_tests.rs`.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::checks::{as_f64, scalar_text};
pub use super::checks::{cached_pattern_matches, check_object, check_prop};
use crate::api::ApiError;

/// Per-parameter messages, keyed by parameter path (`vmid`, `net0.model`).
pub type Errors = BTreeMap<String, String>;

/// The highest index + 1 qemu-server accepts for an indexed key (default 32).
fn index_limit(base: &str) -> u32 {
    match base {
        "scsi" => 31,
        "virtio" | "hostpci" => 16,
        "sata" => 6,
        "ide" | "serial" => 4,
        "parallel" => 3,
        "usb" => 14,
        "numa" => 8,
        "virtiofs" => 10,
        "unused" => 256,
        _ => 32,
    }
}

/// Whether `key` is an instance of an indexed schema key like `net[n]`.
fn matches_indexed(schema_key: &str, key: &str) -> bool {
    let Some(base) = schema_key.strip_suffix("[n]") else {
        return false;
    };
    let Some(digits) = key.strip_prefix(base) else {
        return false;
    };
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && digits
            .parse::<u32>()
            .is_ok_and(|index| index < index_limit(base))
}

/// The schema of request key `key`, resolving indexed keys.
pub fn property_schema<'schema>(
    properties: &'schema Map<String, Value>,
    key: &str,
) -> Option<&'schema Value> {
    properties.get(key).or_else(|| {
        properties
            .iter()
            .find(|(schema_key, _)| matches_indexed(schema_key, key))
            .map(|(_, schema)| schema)
    })
}

fn coerce(value: Value, schema: &Value) -> Value {
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let text = || scalar_text(&value).unwrap_or_default();
    match kind {
        "integer" => text()
            .trim_start_matches('+')
            .parse::<i64>()
            .map_or(value.clone(), |n| Value::Number(n.into())),
        "number" => as_f64(&text())
            .and_then(Number::from_f64)
            .map_or(value.clone(), Value::Number),
        "boolean" => Value::Bool(text() == "1"),
        "array" => match value {
            Value::Array(items) => {
                let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
                Value::Array(
                    items
                        .into_iter()
                        .map(|item| coerce(item, &item_schema))
                        .collect(),
                )
            }
            other => other,
        },
        "string" => Value::String(text()),
        _ => value,
    }
}

/// Validates request parameters against an endpoint's `parameters` schema and coerces them.
///
/// # Errors
/// 400 `Parameter verification failed.` with the per-parameter `errors` map.
pub fn validate_parameters(
    parameters: &Value,
    mut params: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let empty = Map::new();
    let properties = parameters
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let additional = parameters
        .get("additionalProperties")
        .and_then(Value::as_i64)
        .is_some_and(|flag| flag != 0);
    // A single value of an array-typed parameter counts as a one-element array (PVE does
    // the same before validating, so `command=ls` works).
    for (key, value) in &mut params {
        let is_array = property_schema(properties, key)
            .and_then(|schema| schema.get("type"))
            .and_then(Value::as_str)
            == Some("array");
        if is_array && !value.is_array() && !value.is_null() {
            *value = Value::Array(vec![value.take()]);
        }
    }
    let mut errors = Errors::new();
    check_object("", properties, &params, additional, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError {
            status: 400,
            message: "Parameter verification failed.".into(),
            errors,
        });
    }
    Ok(params
        .into_iter()
        .map(|(key, value)| {
            let coerced = match property_schema(properties, &key) {
                Some(schema) => coerce(value, schema),
                None => value,
            };
            (key, coerced)
        })
        .collect())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
