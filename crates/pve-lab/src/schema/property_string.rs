//! PVE's property strings: `PVE::JSONSchema::parse_property_string`.
//!
//! Why: values like `net0`'s `virtio=BC:24:11:00:00:01,bridge=vmbr0` are comma-separated
//! key maps whose keys the schema gives inline. This parser follows PVE's rules (aliases,
//! key aliases, default keys, booleans as `1|0|yes|no|on|off|true|false`) and PVE's error
//! texts, then checks the keys with [`check_object`]. Why separate: it is a parser of its
//! own, distinct from the named-format rules in `formats` (which re-exports it, so the
//! public path stays `schema::formats::parse_property_string`).

use serde_json::{Map, Value};

use super::validate::{Errors, check_object};

/// PVE's `parse_boolean`: the spellings property strings accept.
fn parse_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

/// Parses and checks a property string like `virtio=BC:24:11:00:00:01,bridge=vmbr0`.
///
/// # Errors
/// PVE's message: a parse error, or `format error` followed by one line per bad key.
pub fn parse_property_string(
    keys: &Map<String, Value>,
    text: &str,
    path: &str,
) -> Result<Map<String, Value>, String> {
    let mut result = Map::new();
    let mut default_key_used: Option<String> = None;
    for part in text.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        if let Some((key, value)) = part
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        {
            if result.contains_key(key) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {key}\n"
                ));
            }
            let mut key = key.to_owned();
            let mut schema = keys.get(&key);
            if let Some(alias) = schema.and_then(|s| s.get("alias")).and_then(Value::as_str) {
                if let Some(key_alias) = schema
                    .and_then(|s| s.get("keyAlias"))
                    .and_then(Value::as_str)
                {
                    if result.contains_key(key_alias) {
                        return Err(format!("key alias '{key_alias}' is already defined\n"));
                    }
                    result.insert(key_alias.to_owned(), Value::String(key.clone()));
                }
                alias.clone_into(&mut key);
                schema = keys.get(&key);
            }
            let Some(schema) = schema else {
                return Err(format!(
                    "invalid key in comma-separated list property: {key}\n"
                ));
            };
            let is_boolean = schema.get("type").and_then(Value::as_str) == Some("boolean");
            let value = match parse_boolean(value).filter(|_| is_boolean) {
                Some(flag) => String::from(if flag { "1" } else { "0" }),
                None => value.to_owned(),
            };
            result.insert(key, Value::String(value));
        } else if !part.contains('=') {
            if let Some(key) = default_key_used {
                return Err(format!(
                    "duplicate key in comma-separated list property: {key}\n"
                ));
            }
            let Some((key, _)) = keys
                .iter()
                .find(|(_, schema)| schema.get("default_key").and_then(Value::as_i64) == Some(1))
            else {
                return Err("value without key, but schema does not define a default key\n".into());
            };
            if result.contains_key(key) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {key}\n"
                ));
            }
            result.insert(key.clone(), Value::String(part.to_owned()));
            default_key_used = Some(key.clone());
        } else {
            return Err("missing key in comma-separated list property\n".into());
        }
    }
    let mut errors = Errors::new();
    check_object(path, keys, &result, false, &mut errors);
    if errors.is_empty() {
        Ok(result)
    } else {
        let mut message = String::from("format error\n");
        for (key, text) in &errors {
            message.push_str(key);
            message.push_str(": ");
            message.push_str(text.trim_end_matches('\n'));
            message.push('\n');
        }
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_strings_follow_aliases_default_keys_and_booleans() {
        let net = serde_json::json!({
            "model": {"type": "string", "default_key": 1, "enum": ["virtio", "e1000"]},
            "macaddr": {"type": "string", "optional": 1, "format": "mac-addr"},
            "virtio": {"alias": "macaddr", "keyAlias": "model"},
            "bridge": {"type": "string", "optional": 1, "format": "pve-bridge-id"},
            "firewall": {"type": "boolean", "optional": 1},
        });
        let keys = net.as_object().expect("a value");
        let parsed = parse_property_string(
            keys,
            "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=yes",
            "net0",
        )
        .expect("a value");
        assert_eq!(parsed["model"], "virtio");
        assert_eq!(parsed["macaddr"], "BC:24:11:AA:BB:CC");
        assert_eq!(parsed["firewall"], "1");
        assert!(parse_property_string(keys, "virtio,bridge=vmbr0", "net0").is_ok());
        let missing = parse_property_string(keys, "bridge=vmbr0", "net0").expect_err("an error");
        assert!(
            missing.contains("net0.model: property is missing and it is not optional"),
            "{missing}"
        );
        let unknown =
            parse_property_string(keys, "virtio,colour=red", "net0").expect_err("an error");
        assert_eq!(
            unknown,
            "invalid key in comma-separated list property: colour\n"
        );
        let multicast =
            parse_property_string(keys, "virtio=01:00:00:00:00:00", "net0").expect_err("an error");
        assert!(multicast.contains("unicast MAC"), "{multicast}");
    }
}
