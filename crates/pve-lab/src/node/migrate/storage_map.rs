//! `targetstorage` of a migration: PVE's `storage-pair-list`, parsed and applied.
//!
//! Why apart: the syntax (`1`, `TARGET`, `SOURCE:TARGET,...`) and its refusals are a small
//! language of their own, tested on their own; the migration only asks "where does this
//! storage's volume go".

use std::collections::BTreeMap;

/// `targetstorage`: PVE's `storage-pair-list` (`1`, `TARGET`, `SOURCE:TARGET,...`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct StorageMap {
    pub(super) entries: BTreeMap<String, String>,
    pub(super) default: Option<String>,
}

impl StorageMap {
    /// Where volumes of `source` go (PVE's `map_id`; `1` maps each storage to itself).
    pub(super) fn target<'map>(&'map self, source: &'map str) -> &'map str {
        self.entries
            .get(source)
            .or(self.default.as_ref())
            .map_or(source, String::as_str)
    }
}

fn is_storage_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes
            .last()
            .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(byte))
}

pub(super) fn parse_storage_map(text: &str) -> Result<StorageMap, String> {
    let mut map = StorageMap::default();
    for item in text.split([',', ';', ' ']).filter(|item| !item.is_empty()) {
        if item == "1" {
            continue;
        }
        match item.split_once(':') {
            Some((source, target)) => {
                for id in [source, target] {
                    if !is_storage_id(id) {
                        return Err(format!(
                            "invalid format - storage ID '{id}' contains illegal characters"
                        ));
                    }
                }
                map.entries.insert(source.to_owned(), target.to_owned());
            }
            None if map.default.is_some() => {
                return Err("default target ID can only be provided once".to_owned());
            }
            None if is_storage_id(item) => map.default = Some(item.to_owned()),
            None => {
                return Err(format!(
                    "invalid format - storage ID '{item}' contains illegal characters"
                ));
            }
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_maps_follow_pve_rules() {
        let map = parse_storage_map("local-lvm:shared,fast").unwrap();
        assert_eq!(map.target("local-lvm"), "shared");
        assert_eq!(map.target("local"), "fast");
        let identity = parse_storage_map("1").unwrap();
        assert_eq!(identity.target("local-lvm"), "local-lvm");
        assert!(
            parse_storage_map("a,b")
                .unwrap_err()
                .contains("only be provided once")
        );
        assert!(
            parse_storage_map("Bad!")
                .unwrap_err()
                .contains("illegal characters")
        );
    }
}
