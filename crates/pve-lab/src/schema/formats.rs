//! PVE's named parameter formats and property strings.
//!
//! Why: the schema names formats (`pve-vmid`, `pve-configid-list`, `pve-qm-ipconfig`, ...)
//! whose rules live in Perl code, and gives property strings (`net[n]`, `scsi[n]`) as
//! inline key maps. This module implements the formats the lab's endpoints use with PVE's
//! own error texts (`value does not look like a valid VM ID\n`), and the property-string
//! parser of `PVE::JSONSchema::parse_property_string` (aliases, key aliases, default keys,
//! booleans as `1|0|yes|no|on|off|true|false`). Formats it does not know are accepted:
//! rejecting valid input would be worse than missing a rare invalid one.
//!
//! The property-string parser lives in `property_string` and is re-exported here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

pub use super::property_string::parse_property_string;

/// Checks `value` against a schema `format` (a name or an inline property-string map).
///
/// # Errors
/// PVE's message for the first violation, ending in a newline like PVE's `die` texts.
pub fn check_format(format: &Value, value: &str, path: &str) -> Result<(), String> {
    match format {
        Value::String(name) => check_named(name, value),
        Value::Object(keys) => parse_property_string(keys, value, path).map(|_| ()),
        _ => Ok(()),
    }
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|_| never_matching()))
}

/// Patterns here are constants covered by tests; this fallback only exists to avoid a panic.
fn never_matching() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!("constant pattern"))
}

macro_rules! pattern {
    ($name:ident, $pattern:expr) => {
        fn $name() -> &'static Regex {
            static CELL: OnceLock<Regex> = OnceLock::new();
            regex(&CELL, $pattern)
        }
    };
}

pattern!(vmid_regex, r"^[1-9][0-9]{2,8}$");
pattern!(node_regex, r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$");
pattern!(storage_regex, r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$");
pattern!(configid_regex, r"(?i)^[a-z][a-z0-9_-]+$");
pattern!(tag_regex, r"(?i)^[a-z0-9_][a-z0-9_\-+.]*$");
pattern!(
    dns_regex,
    r"^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$"
);
pattern!(urlencoded_regex, r"^[-%a-zA-Z0-9_.!~*'()]*$");
pattern!(bridge_regex, r"^[-_.\w\d]+$");
pattern!(mac_regex, r"(?i)^[0-9a-f]{2}(:[0-9a-f]{2}){5}$");
pattern!(volume_regex, r"(?i)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$");
pattern!(disk_size_regex, r"^\d+(\.\d+)?[KMGT]?$");
pattern!(realm_regex, r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$");

const STORAGE_CONTENT: [&str; 7] = [
    "images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import",
];

/// PVE's `split_list`: separators are `,`, `;`, whitespace and NUL.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c == ';' || c == '\0' || c.is_whitespace())
        .filter(|item| !item.is_empty())
}

fn is_cidr(value: &str, want_v4: Option<bool>) -> bool {
    let Some((address, prefix)) = value.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => want_v4 != Some(false) && prefix <= 32,
        Ok(IpAddr::V6(_)) => want_v4 != Some(true) && prefix <= 128,
        Err(_) => false,
    }
}

fn check_named(name: &str, value: &str) -> Result<(), String> {
    let ok = |condition: bool, message: String| if condition { Ok(()) } else { Err(message) };
    match name {
        "pve-vmid" => ok(
            vmid_regex().is_match(value),
            "value does not look like a valid VM ID\n".into(),
        ),
        "pve-node" => ok(
            node_regex().is_match(value),
            "value does not look like a valid node name\n".into(),
        ),
        "pve-storage-id" => ok(
            storage_regex().is_match(value),
            format!("storage ID '{value}' contains illegal characters\n"),
        ),
        "pve-configid" => ok(
            configid_regex().is_match(value),
            format!("invalid configuration ID '{value}'\n"),
        ),
        "pve-tag" => ok(
            tag_regex().is_match(value),
            format!("invalid characters in tag '{value}'\n"),
        ),
        "pve-tag-list" => split_list(value).try_for_each(|tag| check_named("pve-tag", tag)),
        "dns-name" => ok(
            dns_regex().is_match(value),
            format!("value '{value}' does not look like a valid DNS name\n"),
        ),
        "urlencoded" => ok(
            urlencoded_regex().is_match(value),
            format!("invalid urlencoded string: {value}\n"),
        ),
        "pve-bridge-id" => ok(
            bridge_regex().is_match(value),
            format!("invalid bridge ID '{value}'\n"),
        ),
        "mac-addr" => {
            let first = u8::from_str_radix(value.get(..2).unwrap_or(""), 16).unwrap_or(1);
            ok(
                mac_regex().is_match(value) && first & 1 == 0,
                format!("value '{value}' does not look like a valid unicast MAC address\n"),
            )
        }
        "pve-volume-id" => ok(
            volume_regex().is_match(value),
            format!("unable to parse volume ID '{value}'\n"),
        ),
        "pve-volume-id-or-qm-path" => ok(
            volume_regex().is_match(value)
                || value.starts_with('/')
                || value == "none"
                || value == "cdrom",
            format!("unable to parse volume ID '{value}'\n"),
        ),
        "pve-volume-id-or-absolute-path" => ok(
            volume_regex().is_match(value) || value.starts_with('/'),
            format!("unable to parse volume ID '{value}'\n"),
        ),
        "disk-size" => ok(
            disk_size_regex().is_match(value),
            format!("unable to parse size '{value}'\n"),
        ),
        "pve-realm" => ok(
            realm_regex().is_match(value),
            format!("realm '{value}' contains illegal characters\n"),
        ),
        "ipv4" => ok(
            value.parse::<Ipv4Addr>().is_ok(),
            format!("value '{value}' does not look like a valid IPv4 address\n"),
        ),
        "ipv6" => ok(
            value.parse::<Ipv6Addr>().is_ok(),
            format!("value '{value}' does not look like a valid IPv6 address\n"),
        ),
        "ip" => ok(
            value.parse::<IpAddr>().is_ok(),
            format!("value '{value}' does not look like a valid IP address\n"),
        ),
        "CIDR" | "CIDRv4" | "CIDRv6" => {
            let family = match name {
                "CIDRv4" => Some(true),
                "CIDRv6" => Some(false),
                _ => None,
            };
            ok(
                is_cidr(value, family),
                format!("value '{value}' does not look like a valid CIDR network\n"),
            )
        }
        "address-list" => split_list(value).try_for_each(|item| check_named("ip", item)),
        "pve-storage-content" => ok(
            STORAGE_CONTENT.contains(&value),
            format!("invalid content type '{value}'\n"),
        ),
        "pve-qm-ipconfig" => check_ipconfig(value),
        "pve-qm-boot" => check_boot(value),
        other => match other.strip_suffix("-list") {
            Some(base) => split_list(value).try_for_each(|item| check_named(base, item)),
            None => Ok(()),
        },
    }
}

/// `ip=CIDR|dhcp,gw=IPv4,ip6=CIDR|dhcp|auto,gw6=IPv6`, as qemu-server defines it.
fn check_ipconfig(value: &str) -> Result<(), String> {
    let keys = serde_json::json!({
        "ip": {"type": "string", "optional": 1, "format": "pve-ipv4-config"},
        "gw": {"type": "string", "optional": 1, "format": "ipv4"},
        "ip6": {"type": "string", "optional": 1, "format": "pve-ipv6-config"},
        "gw6": {"type": "string", "optional": 1, "format": "ipv6"},
    });
    let Value::Object(keys) = keys else {
        return Ok(());
    };
    let parsed = parse_property_string(&keys, value, "")?;
    if let Some(Value::String(ip)) = parsed.get("ip")
        && ip != "dhcp"
        && !is_cidr(ip, Some(true))
    {
        return Err(
            "format error\nip: invalid format - valid format for IPv4 config is 'dhcp' or 'CIDR'\n"
                .into(),
        );
    }
    if let Some(Value::String(ip6)) = parsed.get("ip6")
        && ip6 != "dhcp"
        && ip6 != "auto"
        && !is_cidr(ip6, Some(false))
    {
        return Err("format error\nip6: invalid format - valid format for IPv6 config is 'auto', 'dhcp' or 'CIDR'\n".into());
    }
    Ok(())
}

/// `order=dev1;dev2` (current) or the legacy `[acdn]{1,4}` form.
fn check_boot(value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().all(|c| "acdn".contains(c)) && value.len() <= 4 {
        return Ok(());
    }
    match value.strip_prefix("order=") {
        Some(order) => order.split(';').try_for_each(|device| {
            if configid_regex().is_match(device) {
                Ok(())
            } else {
                Err(format!(
                    "format error\norder: invalid format - invalid device '{device}'\n"
                ))
            }
        }),
        None => Err(
            "format error\nvalue without key, but schema does not define a default key\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, value: &str) -> Result<(), String> {
        check_format(&Value::String(name.into()), value, "x")
    }

    #[test]
    fn named_formats_accept_and_reject_like_pve() {
        let cases = [
            ("pve-vmid", "150", true),
            ("pve-vmid", "99", false),
            ("pve-vmid", "0150", false),
            ("pve-node", "lloyd", true),
            ("pve-node", "-bad", false),
            ("pve-storage-id", "local-lvm", true),
            ("pve-storage-id", "1local", false),
            ("pve-configid", "net0", true),
            ("pve-configid", "0net", false),
            ("pve-configid-list", "net1,ide2;scsi3", true),
            ("pve-configid-list", "net1,9x", false),
            ("pve-tag-list", "jump;edge,prod", true),
            ("pve-tag-list", "bad tag!", false),
            ("dns-name", "jump.example.com", true),
            ("dns-name", "under_score", false),
            ("ipv4", "192.168.10.1", true),
            ("ipv4", "192.168.10", false),
            ("CIDR", "10.0.0.0/8", true),
            ("CIDRv4", "fe80::/64", false),
            ("urlencoded", "ssh-ed25519%20AAAA", true),
            ("urlencoded", "ssh-ed25519 AAAA", false),
            (
                "pve-qm-ipconfig",
                "ip=192.168.10.5/24,gw=192.168.10.1",
                true,
            ),
            ("pve-qm-ipconfig", "ip=dhcp", true),
            ("pve-qm-ipconfig", "ip=192.168.10.5", false),
            ("pve-qm-ipconfig", "ip=192.168.10.5/24,bogus=1", false),
            ("pve-qm-boot", "order=scsi0;ide2;net0", true),
            ("pve-qm-boot", "cdn", true),
            ("pve-qm-boot", "order=scsi0;!", false),
            ("something-unknown", "anything", true),
        ];
        for (format, value, valid) in cases {
            assert_eq!(named(format, value).is_ok(), valid, "{format} {value}");
        }
        assert_eq!(
            named("pve-vmid", "99").expect_err("an error"),
            "value does not look like a valid VM ID\n"
        );
    }
}
