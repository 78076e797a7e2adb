//! VM config files: text form, digest, typed JSON, property strings and sizes.
//!
//! Why: PVE stores a VM as a `key: value` text file and derives everything clients see from
//! it: the `digest` is the SHA-1 of that text, the JSON types come from the schema, and
//! drives and NICs are property strings (`local-lvm:vm-150-disk-0,size=32G`). Doing the
//! same here makes digests change exactly when the file would.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use super::state::Vm;

/// Config keys whose GET type is `integer` (from the schema's config GET returns).
const INTEGER_KEYS: &[&str] = &[
    "balloon",
    "cores",
    "cpuunits",
    "migrate_speed",
    "shares",
    "smp",
    "snaptime",
    "sockets",
    "vcpus",
];

/// Config keys whose GET type is `number`.
const NUMBER_KEYS: &[&str] = &["cpulimit", "migrate_downtime"];

/// Config keys whose GET type is `boolean` (encoded 0/1 like PVE).
const BOOLEAN_KEYS: &[&str] = &[
    "acpi",
    "allow-ksm",
    "autostart",
    "ciupgrade",
    "freeze",
    "keephugepages",
    "kvm",
    "localtime",
    "numa",
    "onboot",
    "protection",
    "reboot",
    "tablet",
    "tdf",
    "template",
];

/// Cloud-init keys (`ipconfigN` is matched by prefix).
const CLOUDINIT_KEYS: &[&str] = &[
    "cicustom",
    "cipassword",
    "citype",
    "ciupgrade",
    "ciuser",
    "nameserver",
    "searchdomain",
    "sshkeys",
];

/// Whether a key is a cloud-init setting.
pub(crate) fn is_cloudinit_key(key: &str) -> bool {
    CLOUDINIT_KEYS.contains(&key) || indexed(key, "ipconfig").is_some()
}

/// `Some(n)` when `key` is `prefix` followed by digits only.
pub(crate) fn indexed(key: &str, prefix: &str) -> Option<u32> {
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty() || !rest.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Whether a key names a drive (`ide0`, `scsi3`, `virtio1`, `sata0`, `efidisk0`, `tpmstate0`).
pub(crate) fn is_drive_key(key: &str) -> bool {
    ["ide", "scsi", "virtio", "sata", "efidisk", "tpmstate"]
        .iter()
        .any(|prefix| indexed(key, prefix).is_some())
}

/// The text of the config file, as PVE writes it: description as `#` comments, keys sorted,
/// then the `[PENDING]` and `[special:cloudinit]` sections.
pub(crate) fn config_text(vm: &Vm) -> String {
    let mut text = String::new();
    write_section(&mut text, &vm.config);
    if !vm.pending.is_empty() || !vm.pending_delete.is_empty() {
        text.push_str("\n[PENDING]\n");
        write_section(&mut text, &vm.pending);
        if !vm.pending_delete.is_empty() {
            let keys: Vec<&str> = vm.pending_delete.iter().map(String::as_str).collect();
            let _ = writeln!(text, "delete: {}", keys.join(","));
        }
    }
    if let Some(cloudinit) = &vm.cloudinit {
        text.push_str("\n[special:cloudinit]\n");
        write_section(&mut text, cloudinit);
    }
    text
}

fn write_section(text: &mut String, section: &BTreeMap<String, String>) {
    if let Some(description) = section.get("description") {
        for line in description.lines() {
            text.push('#');
            text.push_str(line);
            text.push('\n');
        }
    }
    for (key, value) in section {
        if key != "description" {
            let _ = writeln!(text, "{key}: {value}");
        }
    }
}

/// The SHA-1 hex digest of the config file, as `GET .../config` reports it.
pub(crate) fn digest(vm: &Vm) -> String {
    hex::encode(Sha1::digest(config_text(vm).as_bytes()))
}

/// A config value as the API returns it: typed per the schema.
pub(crate) fn typed_value(key: &str, value: &str) -> Value {
    if INTEGER_KEYS.contains(&key) || BOOLEAN_KEYS.contains(&key) {
        if let Ok(number) = value.parse::<i64>() {
            return Value::from(number);
        }
    } else if NUMBER_KEYS.contains(&key)
        && let Ok(number) = value.parse::<f64>()
    {
        return Value::from(number);
    }
    Value::String(value.to_owned())
}

/// A whole section as a typed JSON object.
pub(crate) fn typed_map(section: &BTreeMap<String, String>) -> Map<String, Value> {
    section
        .iter()
        .map(|(key, value)| (key.clone(), typed_value(key, value)))
        .collect()
}

/// A request parameter value as it is written into the config file.
pub(crate) fn config_string(value: &Value) -> String {
    match value {
        Value::Bool(flag) => if *flag { "1" } else { "0" }.to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(config_string)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Splits a property string into `(key, value)` pairs; a part without `=` gets `default_key`.
pub(crate) fn parse_properties(text: &str, default_key: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (default_key.to_owned(), part.to_owned()),
        })
        .collect()
}

/// Joins pairs back into a property string; the default key is written bare.
pub(crate) fn print_properties(pairs: &[(String, String)], default_key: &str) -> String {
    pairs
        .iter()
        .map(|(key, value)| {
            if key == default_key {
                value.clone()
            } else {
                format!("{key}={value}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One property of a property string whose first bare part is `enabled` (e.g. `agent`).
pub(crate) fn property_value(text: &str, key: &str) -> Option<String> {
    parse_properties(text, "enabled")
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

/// A drive string's volume (`local-lvm:vm-150-disk-0`) and its options.
pub(crate) fn parse_drive(text: &str) -> (String, Vec<(String, String)>) {
    let mut pairs = parse_properties(text, "file");
    let file = pairs
        .iter()
        .position(|(key, _)| key == "file")
        .map(|index| pairs.remove(index).1)
        .unwrap_or_default();
    (file, pairs)
}

/// Joins a drive back: volume first, then options.
pub(crate) fn print_drive(file: &str, options: &[(String, String)]) -> String {
    let mut text = file.to_owned();
    for (key, value) in options {
        let _ = write!(text, ",{key}={value}");
    }
    text
}

/// Whether a drive is a CD-ROM or a cloud-init drive (not a disk).
pub(crate) fn drive_is_cdrom(options: &[(String, String)]) -> bool {
    options
        .iter()
        .any(|(key, value)| key == "media" && value == "cdrom")
}

/// Sets (or adds) one option of a pair list.
pub(crate) fn set_option(options: &mut Vec<(String, String)>, key: &str, value: String) {
    match options.iter_mut().find(|(name, _)| name == key) {
        Some(pair) => pair.1 = value,
        None => options.push((key.to_owned(), value)),
    }
}

const KIB: u64 = 1024;

/// Parses `32G`, `+8G`, `512M`, `1.5T`, `1048576` (bytes): `(is_relative, bytes)`.
pub(crate) fn parse_size(text: &str) -> Option<(bool, u64)> {
    let (relative, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (number, unit) = match rest.char_indices().last() {
        Some((index, unit @ ('K' | 'M' | 'G' | 'T'))) => (&rest[..index], Some(unit)),
        _ => (rest, None),
    };
    let multiplier = match unit {
        Some('K') => KIB,
        Some('M') => KIB.pow(2),
        Some('G') => KIB.pow(3),
        Some('T') => KIB.pow(4),
        _ => 1,
    };
    let bytes = match number.split_once('.') {
        None => number.parse::<u64>().ok()?.checked_mul(multiplier)?,
        Some((whole, fraction)) => {
            let whole: u64 = whole.parse().ok()?;
            let digits = u32::try_from(fraction.len()).ok()?;
            let scale = 10_u64.checked_pow(digits)?;
            let fraction: u64 = fraction.parse().ok()?;
            whole.checked_mul(multiplier)? + fraction.checked_mul(multiplier)? / scale
        }
    };
    Some((relative, bytes))
}

/// Formats a size like PVE writes `size=`: the largest unit that divides it evenly.
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, factor) in [
        ('T', KIB.pow(4)),
        ('G', KIB.pow(3)),
        ('M', KIB.pow(2)),
        ('K', KIB),
    ] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

/// Human-readable size for task logs (`8.0 GiB`).
pub(crate) fn human_size(bytes: u64) -> String {
    let mut value = bytes;
    let mut fraction = 0;
    let mut unit = "B";
    for next in ["KiB", "MiB", "GiB", "TiB"] {
        if value < 1024 {
            break;
        }
        fraction = (value % 1024) * 10 / 1024;
        value /= 1024;
        unit = next;
    }
    format!("{value}.{fraction} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format_like_pve() {
        assert_eq!(parse_size("32G"), Some((false, 32 * KIB.pow(3))));
        assert_eq!(parse_size("+8G"), Some((true, 8 * KIB.pow(3))));
        assert_eq!(parse_size("1.5T"), Some((false, 1536 * KIB.pow(3))));
        assert_eq!(parse_size("4096"), Some((false, 4096)));
        assert_eq!(parse_size("G"), None);
        assert_eq!(format_size(3584 * KIB.pow(2)), "3584M");
        assert_eq!(format_size(32 * KIB.pow(3)), "32G");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(human_size(8 * KIB.pow(3)), "8.0 GiB");
    }

    #[test]
    fn drives_round_trip() {
        let (file, options) = parse_drive("local-lvm:vm-150-disk-0,iothread=1,size=32G");
        assert_eq!(file, "local-lvm:vm-150-disk-0");
        assert_eq!(
            print_drive(&file, &options),
            "local-lvm:vm-150-disk-0,iothread=1,size=32G"
        );
        assert_eq!(
            property_value("1,fstrim_cloned_disks=1", "enabled"),
            Some("1".into())
        );
    }

    #[test]
    fn values_are_typed_per_schema() {
        assert_eq!(typed_value("cores", "2"), Value::from(2));
        assert_eq!(typed_value("template", "1"), Value::from(1));
        assert_eq!(typed_value("memory", "2048"), Value::from("2048"));
        assert_eq!(typed_value("cpulimit", "1.5"), Value::from(1.5));
    }

    #[test]
    fn digest_changes_with_the_file() {
        let mut vm = Vm::default();
        vm.config.insert("name".into(), "a".into());
        let before = digest(&vm);
        assert_eq!(before.len(), 40);
        vm.pending.insert("cores".into(), "4".into());
        assert_ne!(digest(&vm), before);
        assert!(config_text(&vm).contains("[PENDING]\ncores: 4\n"));
    }
}
