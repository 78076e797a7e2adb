//! Proxmox property strings: `virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1`.
//!
//! Why: most interesting VM settings (`net0`, `scsi0`, `ipconfig0`, `agent`, `memory`) are
//! comma-separated lists inside one config value, and rewriting them as text loses keys the
//! client does not know about. [`PropertyString`] keeps every entry in order, so typed views
//! can change one key and print the rest back untouched.

use std::fmt;
use std::str::FromStr;

/// One entry: `key=value`, or a bare value for the format's default key (`key` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Option<String>,
    pub value: String,
}

/// An ordered, lossless property string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PropertyString {
    entries: Vec<Entry>,
}

/// Why a text is not a property string, or a typed view could not read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PropertyError {
    #[error("unterminated quote in property string {0:?}")]
    UnterminatedQuote(String),
    #[error("empty key in property string {0:?}")]
    EmptyKey(String),
    #[error("property {key:?} has an invalid value {value:?}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("property string {text:?} lacks {missing}")]
    Missing { text: String, missing: &'static str },
}

impl PropertyString {
    /// An empty property string.
    pub fn new() -> Self {
        Self::default()
    }

    /// All entries in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|entry| entry.key.as_deref() == Some(key))
            .map(|entry| entry.value.as_str())
    }

    /// The bare value (the default key's value), if present.
    pub fn bare(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|entry| entry.key.is_none())
            .map(|entry| entry.value.as_str())
    }

    /// Sets `key` in place (keeping its position) or appends it.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| entry.key.as_deref() == Some(key))
        {
            entry.value = value;
        } else {
            self.entries.push(Entry {
                key: Some(key.to_owned()),
                value,
            });
        }
    }

    /// Appends an entry without looking for an existing one (bare values, ordered output).
    pub fn push(&mut self, key: Option<&str>, value: impl Into<String>) {
        self.entries.push(Entry {
            key: key.map(str::to_owned),
            value: value.into(),
        });
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let position = self
            .entries
            .iter()
            .position(|entry| entry.key.as_deref() == Some(key))?;
        Some(self.entries.remove(position).value)
    }
}

fn needs_quotes(value: &str) -> bool {
    value.contains(',') || value.starts_with('"')
}

fn write_value(formatter: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if needs_quotes(value) {
        formatter.write_str("\"")?;
        for character in value.chars() {
            if matches!(character, '"' | '\\') {
                formatter.write_str("\\")?;
            }
            write!(formatter, "{character}")?;
        }
        formatter.write_str("\"")
    } else {
        formatter.write_str(value)
    }
}

impl fmt::Display for PropertyString {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.entries.iter().enumerate() {
            if index > 0 {
                formatter.write_str(",")?;
            }
            if let Some(key) = &entry.key {
                write!(formatter, "{key}=")?;
            }
            write_value(formatter, &entry.value)?;
        }
        Ok(())
    }
}

/// Reads one value starting at `rest`, honouring `"..."` quoting; returns value and remainder.
fn read_value<'a>(text: &str, rest: &'a str) -> Result<(String, &'a str), PropertyError> {
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut characters = quoted.char_indices();
        while let Some((index, character)) = characters.next() {
            match character {
                '\\' => {
                    let (_, escaped) = characters
                        .next()
                        .ok_or_else(|| PropertyError::UnterminatedQuote(text.to_owned()))?;
                    value.push(escaped);
                }
                '"' => return Ok((value, &quoted[index + 1..])),
                other => value.push(other),
            }
        }
        return Err(PropertyError::UnterminatedQuote(text.to_owned()));
    }
    let end = rest.find(',').unwrap_or(rest.len());
    Ok((rest[..end].to_owned(), &rest[end..]))
}

impl FromStr for PropertyString {
    type Err = PropertyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut entries = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let key_end = rest.find([',', '=']).unwrap_or(rest.len());
            let entry = if rest[key_end..].starts_with('=') {
                let key = &rest[..key_end];
                if key.is_empty() {
                    return Err(PropertyError::EmptyKey(text.to_owned()));
                }
                let (value, remainder) = read_value(text, &rest[key_end + 1..])?;
                rest = remainder;
                Entry {
                    key: Some(key.to_owned()),
                    value,
                }
            } else {
                let (value, remainder) = read_value(text, rest)?;
                rest = remainder;
                Entry { key: None, value }
            };
            if entry.key.is_some() || !entry.value.is_empty() {
                entries.push(entry);
            }
            match rest.strip_prefix(',') {
                Some(after) => rest = after,
                None if rest.is_empty() => {}
                None => return Err(PropertyError::UnterminatedQuote(text.to_owned())),
            }
        }
        Ok(Self { entries })
    }
}

/// `1`/`0` as PVE writes booleans inside property strings and forms.
pub fn bool_text(flag: bool) -> &'static str {
    if flag { "1" } else { "0" }
}

/// Reads a property-string boolean (`1`/`0`, `on`/`off`, `yes`/`no`, `true`/`false`).
///
/// # Errors
/// When the value is none of those.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, PropertyError> {
    crate::lenient::value_as_bool(&serde_json::Value::String(value.to_owned())).ok_or_else(|| {
        PropertyError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "expected 1 or 0".to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::PropertyString;
    use proptest::prelude::*;

    #[test]
    fn keeps_order_bare_values_and_unknown_keys() {
        let text = "local-lvm:vm-150-disk-0,discard=on,size=32G,ssd=1";
        let mut property: PropertyString = text.parse().unwrap();
        assert_eq!(property.bare(), Some("local-lvm:vm-150-disk-0"));
        assert_eq!(property.get("size"), Some("32G"));
        assert_eq!(property.to_string(), text);
        property.set("size", "40G");
        assert_eq!(
            property.to_string(),
            "local-lvm:vm-150-disk-0,discard=on,size=40G,ssd=1"
        );
        assert_eq!(property.remove("ssd").as_deref(), Some("1"));
        assert_eq!(property.get("ssd"), None);
    }

    #[test]
    fn quoted_values_keep_commas() {
        let property: PropertyString = r#"order=scsi0,comment="a, \"b\"",x=1"#.parse().unwrap();
        assert_eq!(property.get("comment"), Some(r#"a, "b""#));
        assert_eq!(property.get("x"), Some("1"));
        let reparsed: PropertyString = property.to_string().parse().unwrap();
        assert_eq!(reparsed, property);
        assert!(r#"a="open"#.parse::<PropertyString>().is_err());
        assert!("=1".parse::<PropertyString>().is_err());
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(
            bare in proptest::option::of("[a-z0-9:/_.-]{1,20}"),
            pairs in proptest::collection::vec(("[a-z][a-z0-9_-]{0,8}", "[ -~]{0,16}"), 0..6),
        ) {
            let mut property = PropertyString::new();
            if let Some(bare) = &bare {
                property.push(None, bare.clone());
            }
            for (key, value) in &pairs {
                property.push(Some(key), value.clone());
            }
            let reparsed: PropertyString = property.to_string().parse().unwrap();
            prop_assert_eq!(reparsed, property);
        }
    }
}
