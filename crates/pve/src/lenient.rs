//! Lenient readers for values PVE encodes inconsistently.
//!
//! Why: the API returns booleans as `0`/`1` (sometimes as strings), integers as numbers or
//! as strings (`nextid`, `memory`), and older or newer releases switch between the two.
//! Reading strictly would turn a harmless release difference into a failed deployment, so
//! every response field goes through these helpers instead of serde's strict defaults.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A JSON value read as a boolean: `true`/`false`, `0`/`1` as number or string, `"yes"`/`"no"`.
pub fn value_as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => number.as_f64().map(|float| float != 0.0),
        Value::String(text) => match text.trim() {
            "1" | "true" | "on" | "yes" => Some(true),
            "0" | "false" | "off" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A JSON value read as an unsigned integer: a number (integral float accepted) or a
/// decimal string.
pub fn value_as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.fract() == 0.0 && *float >= 0.0 && *float < 1.8e19)
                .map(|float| {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "checked above: integral, non-negative and in range"
                    )]
                    let integer = float as u64;
                    integer
                })
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value read as a float: a number or a decimal string.
pub fn value_as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value read as text: strings as they are, numbers and booleans printed.
pub fn value_as_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(if *flag { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

fn mismatch<E: serde::de::Error>(expected: &str, value: &Value) -> E {
    E::custom(format!("expected {expected}, got {value}"))
}

/// `#[serde(deserialize_with)]` for `bool` fields (absent -> use `#[serde(default)]`).
///
/// # Errors
/// When the value is neither a boolean nor `0`/`1`.
pub fn bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(false);
    }
    value_as_bool(&value).ok_or_else(|| mismatch("a boolean or 0/1", &value))
}

/// `#[serde(deserialize_with)]` for `Option<u64>` fields.
///
/// # Errors
/// When the value is neither null, a number nor a decimal string.
pub fn option_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    value_as_u64(&value)
        .map(Some)
        .ok_or_else(|| mismatch("an unsigned integer", &value))
}

/// `#[serde(deserialize_with)]` for `u64` fields.
///
/// # Errors
/// When the value is neither a number nor a decimal string.
pub fn u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    value_as_u64(&value).ok_or_else(|| mismatch("an unsigned integer", &value))
}

/// `#[serde(deserialize_with)]` for `Option<f64>` fields.
///
/// # Errors
/// When the value is neither null, a number nor a decimal string.
pub fn option_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    value_as_f64(&value)
        .map(Some)
        .ok_or_else(|| mismatch("a number", &value))
}

/// `#[serde(deserialize_with)]` for `Option<String>` fields that may arrive as numbers.
///
/// # Errors
/// When the value is an array or an object.
pub fn option_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    value_as_string(&value)
        .map(Some)
        .ok_or_else(|| mismatch("a string", &value))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "super::bool")]
        flag: bool,
        #[serde(default, deserialize_with = "super::option_u64")]
        count: Option<u64>,
        #[serde(default, deserialize_with = "super::option_string")]
        text: Option<String>,
    }

    #[test]
    fn reads_booleans_and_numbers_in_every_encoding() {
        for (flag, expected) in [
            (json!(1), true),
            (json!("1"), true),
            (json!(true), true),
            (json!(0), false),
            (json!("0"), false),
        ] {
            let sample: Sample = serde_json::from_value(json!({ "flag": flag })).unwrap();
            assert_eq!(sample.flag, expected, "{flag}");
        }
        let sample: Sample = serde_json::from_value(json!({ "count": "2048", "text": 7 })).unwrap();
        assert_eq!(sample.count, Some(2048));
        assert_eq!(sample.text.as_deref(), Some("7"));
        let sample: Sample = serde_json::from_value(json!({ "count": 2048.0 })).unwrap();
        assert_eq!(sample.count, Some(2048));
        assert!(!sample.flag);
        assert!(serde_json::from_value::<Sample>(json!({ "count": "many" })).is_err());
        assert!(serde_json::from_value::<Sample>(json!({ "flag": "perhaps" })).is_err());
    }
}
