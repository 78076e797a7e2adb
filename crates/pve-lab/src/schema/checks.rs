//! The per-value checks of `PVE::JSONSchema`: `check_prop` and `check_object`.
//!
//! Why separate: these are the rule engine (type, format, pattern, length, range, enum,
//! unknown and `requires` keys) with their scalar helpers (Perl-style stringification,
//! integer and number syntax, the cached pattern regexes). `validate` is the entry point
//! that resolves keys, runs these checks over a request and coerces the result; keeping the
//! rules here keeps each file small enough to read. `formats` calls back into
//! [`check_object`] for property strings, and `returns` uses [`cached_pattern_matches`].
//! The public paths stay `schema::validate::*` through re-exports there.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use regex::Regex;
use serde_json::{Map, Value};

use super::formats::check_format;
use super::validate::{Errors, property_schema};

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
pub(super) fn scalar_text(value: &Value) -> Option<String> {
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

pub(super) fn as_f64(text: &str) -> Option<f64> {
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
    if let Some(format) = schema.get("format")
        && let Err(message) = check_format(format, &text, path)
    {
        errors.insert(path.into(), format!("invalid format - {message}"));
        return;
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && !cached_pattern_matches(pattern, &text)
    {
        errors.insert(path.into(), "value does not match the regex pattern".into());
        return;
    }
    let length = text.chars().count();
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length as u64 > max
    {
        errors.insert(
            path.into(),
            format!("value may only be {max} characters long"),
        );
        return;
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (length as u64) < min
    {
        errors.insert(
            path.into(),
            format!("value must be at least {min} characters long"),
        );
        return;
    }
    if is_number(&text) {
        let number = as_f64(&text).unwrap_or(0.0);
        if let Some(max) = schema.get("maximum")
            && max.as_f64().is_some_and(|max| number > max)
        {
            let max = number_text(max);
            errors.insert(
                path.into(),
                format!("value must have a maximum value of {max}"),
            );
            return;
        }
        if let Some(min) = schema.get("minimum")
            && min.as_f64().is_some_and(|min| number < min)
        {
            let min = number_text(min);
            errors.insert(
                path.into(),
                format!("value must have a minimum value of {min}"),
            );
            return;
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
        if let Some(requires) = schema.get("requires").and_then(Value::as_str)
            && value.get(requires).is_none_or(Value::is_null)
        {
            errors.insert(
                join(requires),
                format!("missing property - '{}' requires this property", join(key)),
            );
        }
    }
}
