//! Parameter validation and coercion, the way `PVE::JSONSchema::validate` does it.
//!
//! Why: PVE rejects requests with a 400 `Parameter verification failed.` and one message
//! per parameter, and clients (ours included) must see those exact texts to be tested
//! honestly. The checks run in PVE's order per parameter (missing, type, format, pattern,
//! length, range, enum) and stop at the first failure of each parameter. Indexed schema
//! keys (`net[n]`) match `net0`..`netN`. After validation, values are coerced to the
//! schema's JSON types for the node (integers and numbers as numbers, booleans as bools).

use std::collections::{BTreeMap, HashMap};
use std::sync::{OnceLock, RwLock};

use regex::Regex;
use serde_json::{Map, Number, Value};

use super::formats::check_format;
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

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_number(text: &str) -> bool {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            (!whole.is_empty() || !fraction.is_empty())
                && whole.bytes().all(|b| b.is_ascii_digit())
                && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    mantissa_ok && exponent.is_none_or(is_integer)
}

/// A scalar as Perl would stringify it; `None` for arrays and objects.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(String::from(if *flag { "1" } else { "0" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn cached_regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(RwLock::default);
    if let Some(found) = cache.read().ok().and_then(|map| map.get(pattern).cloned()) {
        return found;
    }
    let compiled = Regex::new(&format!("^(?:{pattern})$")).ok();
    if let Ok(mut map) = cache.write() {
        map.insert(pattern.to_owned(), compiled.clone());
    }
    compiled
}

/// Whether `text` matches a schema pattern (anchored like Perl's `m/^$pattern$/`); patterns
/// the regex engine cannot compile are treated as matching.
pub fn cached_pattern_matches(pattern: &str, text: &str) -> bool {
    cached_regex(pattern).is_none_or(|regex| regex.is_match(text))
}

fn number_text(value: &Value) -> String {
    match value {
        Value::Number(number) => number.to_string(),
        other => other.to_string(),
    }
}

fn as_f64(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// Checks one property; adds at most one error for `path`.
pub fn check_prop(value: Option<&Value>, schema: &Value, path: &str, errors: &mut Errors) {
    let value = value.filter(|value| !value.is_null());
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let Some(value) = value else {
        let optional = schema.get("optional").and_then(Value::as_i64) == Some(1);
        if !optional && schema.get("alias").is_none() && kind != "null" {
            errors.insert(
                path.into(),
                "property is missing and it is not optional".into(),
            );
        }
        return;
    };
    if kind == "array" {
        let Value::Array(items) = value else {
            errors.insert(path.into(), "type check ('array') failed".into());
            return;
        };
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                check_prop(Some(item), item_schema, &format!("{path}[{index}]"), errors);
            }
        }
        return;
    }
    if kind == "object" {
        if !value.is_object() {
            errors.insert(path.into(), "type check ('object') failed".into());
        }
        return;
    }
    let Some(text) = scalar_text(value) else {
        let got = if value.is_array() { "ARRAY" } else { "HASH" };
        errors.insert(
            path.into(),
            format!("type check ('{kind}') failed - got {got}"),
        );
        return;
    };
    let type_ok = match kind {
        "boolean" => text == "1" || text == "0",
        "integer" => is_integer(&text),
        "number" => is_number(&text),
        _ => true,
    };
    if !type_ok {
        errors.insert(
            path.into(),
            format!("type check ('{kind}') failed - got '{text}'"),
        );
        return;
    }
    if let Some(format) = schema.get("format") {
        if let Err(message) = check_format(format, &text, path) {
            errors.insert(path.into(), format!("invalid format - {message}"));
            return;
        }
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if !cached_pattern_matches(pattern, &text) {
            errors.insert(path.into(), "value does not match the regex pattern".into());
            return;
        }
    }
    let length = text.chars().count();
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        if length as u64 > max {
            errors.insert(
                path.into(),
                format!("value may only be {max} characters long"),
            );
            return;
        }
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if (length as u64) < min {
            errors.insert(
                path.into(),
                format!("value must be at least {min} characters long"),
            );
            return;
        }
    }
    if is_number(&text) {
        let number = as_f64(&text).unwrap_or(0.0);
        if let Some(max) = schema.get("maximum") {
            if max.as_f64().is_some_and(|max| number > max) {
                let max = number_text(max);
                errors.insert(
                    path.into(),
                    format!("value must have a maximum value of {max}"),
                );
                return;
            }
        }
        if let Some(min) = schema.get("minimum") {
            if min.as_f64().is_some_and(|min| number < min) {
                let min = number_text(min);
                errors.insert(
                    path.into(),
                    format!("value must have a minimum value of {min}"),
                );
                return;
            }
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        let names: Vec<String> = allowed.iter().filter_map(scalar_text).collect();
        if !names.contains(&text) {
            errors.insert(
                path.into(),
                format!(
                    "value '{text}' does not have a value in the enumeration '{}'",
                    names.join("', '")
                ),
            );
        }
    }
}

/// `check_object` of `PVE::JSONSchema`: every schema key, then every unknown key.
pub fn check_object(
    path: &str,
    properties: &Map<String, Value>,
    value: &Map<String, Value>,
    additional_properties: bool,
    errors: &mut Errors,
) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    for (key, schema) in properties {
        if key.ends_with("[n]") {
            continue;
        }
        check_prop(value.get(key), schema, &join(key), errors);
    }
    for (key, item) in value {
        let Some(schema) = property_schema(properties, key) else {
            if !additional_properties {
                errors.insert(
                    join(key),
                    "property is not defined in schema and the schema does not allow additional properties"
                        .into(),
                );
            }
            continue;
        };
        if !properties.contains_key(key) {
            check_prop(Some(item), schema, &join(key), errors);
        }
        if let Some(requires) = schema.get("requires").and_then(Value::as_str) {
            if value.get(requires).is_none_or(Value::is_null) {
                errors.insert(
                    join(requires),
                    format!("missing property - '{}' requires this property", join(key)),
                );
            }
        }
    }
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
mod tests {
    use super::*;
    use serde_json::json;

    fn run(schema: &Value, params: Value) -> Result<Map<String, Value>, Errors> {
        let Value::Object(params) = params else {
            panic!()
        };
        validate_parameters(schema, params).map_err(|error| error.errors)
    }

    #[test]
    fn pve_messages_for_each_rule() {
        let schema = json!({"additionalProperties": 0, "properties": {
            "vmid": {"type": "integer", "format": "pve-vmid", "minimum": 100, "maximum": 999_999_999},
            "full": {"type": "boolean", "optional": 1},
            "cores": {"type": "integer", "optional": 1, "minimum": 1},
            "name": {"type": "string", "optional": 1, "maxLength": 5},
            "kind": {"type": "string", "optional": 1, "enum": ["vm", "node"]},
            "size": {"type": "string", "optional": 1, "pattern": "\\+?\\d+[KMGT]?"},
            "net[n]": {"type": "string", "optional": 1},
        }});
        let cases = [
            (
                json!({}),
                "vmid",
                "property is missing and it is not optional",
            ),
            (
                json!({"vmid": "abc"}),
                "vmid",
                "type check ('integer') failed - got 'abc'",
            ),
            (
                json!({"vmid": "99"}),
                "vmid",
                "invalid format - value does not look like a valid VM ID\n",
            ),
            (
                json!({"vmid": "150", "cores": "0"}),
                "cores",
                "value must have a minimum value of 1",
            ),
            (
                json!({"vmid": "150", "full": "true"}),
                "full",
                "type check ('boolean') failed - got 'true'",
            ),
            (
                json!({"vmid": "150", "name": "toolong"}),
                "name",
                "value may only be 5 characters long",
            ),
            (
                json!({"vmid": "150", "kind": "x"}),
                "kind",
                "value 'x' does not have a value in the enumeration 'vm', 'node'",
            ),
            (
                json!({"vmid": "150", "size": "-1G"}),
                "size",
                "value does not match the regex pattern",
            ),
            (
                json!({"vmid": "150", "bogus": "1"}),
                "bogus",
                "property is not defined in schema and the schema does not allow additional properties",
            ),
            (
                json!({"vmid": "150", "net32": "x"}),
                "net32",
                "property is not defined in schema and the schema does not allow additional properties",
            ),
            (
                json!({"vmid": ["150", "151"]}),
                "vmid",
                "type check ('integer') failed - got ARRAY",
            ),
        ];
        for (params, key, message) in cases {
            let errors = run(&schema, params.clone()).expect_err("an error");
            assert_eq!(
                errors.get(key).map(String::as_str),
                Some(message),
                "{params}"
            );
        }
    }

    #[test]
    fn coerces_to_schema_types() {
        let schema = json!({"additionalProperties": 0, "properties": {
            "vmid": {"type": "integer"}, "full": {"type": "boolean", "optional": 1},
            "cpu": {"type": "number", "optional": 1}, "net[n]": {"type": "string", "optional": 1},
            "command": {"type": "array", "items": {"type": "string"}, "optional": 1},
        }});
        let out = run(
            &schema,
            json!({"vmid": "150", "full": "1", "cpu": "0.5", "net0": "virtio", "command": "ls"}),
        )
        .expect("a value");
        assert_eq!(out["vmid"], json!(150));
        assert_eq!(out["full"], json!(true));
        assert_eq!(out["cpu"], json!(0.5));
        assert_eq!(out["net0"], json!("virtio"));
        assert_eq!(out["command"], json!(["ls"]));
        let from_json = run(&schema, json!({"vmid": 150, "full": true})).expect("a value");
        assert_eq!(from_json["full"], json!(true));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever a client sends, validation answers (no panic) on every endpoint.
        #[test]
        fn never_panics_on_any_endpoint(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "vmid", "node", "net0", "scsi0", "ipconfig0", "delete", "boot", "tags",
                        "sshkeys", "memory", "agent", "size", "command", "full", "newid",
                        "content", "start", "limit", "bogus", "net99", "cores", "name",
                    ]),
                    "[ -~]{0,40}",
                ),
                0..8,
            ),
            endpoint_index in 0usize..200,
        ) {
            let endpoints: Vec<_> = super::super::Schema::get().endpoints().collect();
            let endpoint = endpoints[endpoint_index % endpoints.len()];
            let params = crate::wire::pairs_to_map(
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            );
            let _ = validate_parameters(&endpoint.parameters, params);
        }
    }
}
