//! Cloud-init: which settings are pending, and the `NoCloud` files PVE would generate.
//!
//! Why: PVE regenerates the cloud-init drive at every start, so a setting changed after
//! the last start is "pending" until the next one; clients (and operators debugging
//! "cloud-init not applied after a clone") read `GET .../cloudinit` and
//! `.../cloudinit/dump` to see that. The files follow qemu-server's Cloudinit module as
//! summarised in pve-api.md; later real guests boot from exactly these files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

use super::Shared;
use super::config::{self, is_cloudinit_key, parse_properties};
use super::vm::{PASSWORD_MASK, with_vm};
use crate::api::{ApiError, ApiRequest, ApiResult};

/// Whether a key feeds the generated cloud-init data (cloud-init keys, `name`, `netN`).
pub(crate) fn feeds_cloudinit(key: &str) -> bool {
    is_cloudinit_key(key) || key == "name" || config::indexed(key, "net").is_some()
}

/// The values a start would use to generate the cloud-init image.
pub(crate) fn snapshot(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .filter(|(key, _)| feeds_cloudinit(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// `GET /nodes/{node}/qemu/{vmid}/cloudinit`: `[{key, value?, pending?, delete?}]`.
pub(crate) fn pending(shared: &Shared, request: &ApiRequest) -> ApiResult {
    with_vm(shared, request, |_, vm, _| {
        let current = snapshot(&vm.config);
        let mask = |key: &str, value: &String| {
            if key == "cipassword" {
                json!(PASSWORD_MASK)
            } else {
                json!(value)
            }
        };
        let mut items = Vec::new();
        let keys: BTreeSet<&String> = current
            .keys()
            .chain(vm.cloudinit.iter().flat_map(BTreeMap::keys))
            .collect();
        for key in keys {
            let mut item = Map::new();
            item.insert("key".into(), json!(key));
            let now = current.get(key);
            match (&vm.cloudinit, now) {
                (None, Some(value)) => {
                    item.insert("value".into(), mask(key, value));
                }
                (Some(generated), Some(value)) => match generated.get(key) {
                    Some(old) if old == value => {
                        item.insert("value".into(), mask(key, value));
                    }
                    Some(old) => {
                        item.insert("value".into(), mask(key, old));
                        item.insert("pending".into(), mask(key, value));
                    }
                    None => {
                        item.insert("pending".into(), mask(key, value));
                    }
                },
                (_, None) => {
                    item.insert("delete".into(), json!(1));
                }
            }
            items.push(Value::Object(item));
        }
        Ok(Value::Array(items))
    })
}

/// `PUT /nodes/{node}/qemu/{vmid}/cloudinit`: regenerates the drive from the current
/// config (a running guest still sees the old data until it restarts).
pub(crate) fn regenerate(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let vmid = super::params::vmid(request)?;
    let node = request.path("node").to_owned();
    shared.write(|state| {
        let vm = state.vm_mut(&node, vmid).map_err(super::params::internal)?;
        let has_drive = vm.config.iter().any(|(key, value)| {
            config::is_drive_key(key) && config::parse_drive(value).0.contains("cloudinit")
        });
        if has_drive {
            vm.cloudinit = Some(snapshot(&vm.config));
        }
        Ok(Value::Null)
    })
}

/// `GET /nodes/{node}/qemu/{vmid}/cloudinit/dump?type=user|network|meta`.
pub(crate) fn dump(shared: &Shared, request: &ApiRequest) -> ApiResult {
    let kind = super::param_str(request, "type")
        .unwrap_or("user")
        .to_owned();
    with_vm(shared, request, |vmid, vm, _| {
        let files = generate(vmid, &vm.config);
        let text = match kind.as_str() {
            "user" => files.user,
            "network" => files.network,
            "meta" => files.meta,
            other => {
                return Err(ApiError::param(
                    "type",
                    format!(
                        "value '{other}' does not have a value in the enumeration 'user, network, meta'"
                    ),
                ));
            }
        };
        Ok(json!(text))
    })
}

/// The `NoCloud` files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Files {
    pub user: String,
    pub network: String,
    pub meta: String,
}

/// Percent-decodes `sshkeys` as PVE stores it.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = text.get(index + 1..index + 3)
            && let Ok(value) = u8::from_str_radix(hex, 16)
        {
            out.push(value);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Generates user-data, network-config and meta-data for a config (`citype=nocloud`).
pub(crate) fn generate(vmid: u32, config: &BTreeMap<String, String>) -> Files {
    let name = config
        .get("name")
        .cloned()
        .unwrap_or_else(|| format!("VM{vmid}"));
    let hostname = name.split('.').next().unwrap_or(&name).to_owned();
    let fqdn = match config.get("searchdomain") {
        Some(domain) if !name.contains('.') => format!("{name}.{domain}"),
        _ => name.clone(),
    };
    let mut user =
        format!("#cloud-config\nhostname: {hostname}\nmanage_etc_hosts: true\nfqdn: {fqdn}\n");
    let ci_user = config.get("ciuser");
    if let Some(ci_user) = ci_user {
        let _ = writeln!(user, "user: {ci_user}");
        if ci_user == "root" {
            user.push_str("disable_root: False\n");
        }
    }
    if let Some(password) = config.get("cipassword") {
        let _ = writeln!(user, "password: {password}");
    }
    if let Some(keys) = config.get("sshkeys") {
        user.push_str("ssh_authorized_keys:\n");
        for key in percent_decode(keys)
            .lines()
            .filter(|line| !line.trim().is_empty())
        {
            let _ = writeln!(user, "  - {key}");
        }
    }
    user.push_str("chpasswd:\n  expire: False\n");
    if ci_user.is_none_or(|name| name != "root") {
        user.push_str("users:\n  - default\n");
    }
    if config.get("ciupgrade").is_none_or(|value| value != "0") {
        user.push_str("package_upgrade: true\n");
    }
    let network = network_config(config);
    let instance = hex::encode(Sha1::digest(format!("{user}{network}").as_bytes()));
    Files {
        user,
        network,
        meta: format!("instance-id: {instance}\n"),
    }
}

fn network_config(config: &BTreeMap<String, String>) -> String {
    let mut text = "version: 1\nconfig:\n".to_owned();
    for (key, ipconfig) in config
        .iter()
        .filter(|(key, _)| config::indexed(key, "ipconfig").is_some())
    {
        let index = key.trim_start_matches("ipconfig");
        let Some(net) = config.get(&format!("net{index}")) else {
            continue;
        };
        let mac = super::agent::net_mac(net)
            .unwrap_or_default()
            .to_lowercase();
        let _ = writeln!(
            text,
            "    - type: physical\n      name: eth{index}\n      mac_address: '{mac}'\n      subnets:"
        );
        let settings: BTreeMap<String, String> =
            parse_properties(ipconfig, "ip").into_iter().collect();
        match settings.get("ip").map(String::as_str) {
            Some("dhcp") => text.push_str("      - type: dhcp4\n"),
            Some(cidr) => {
                let (address, prefix) = cidr.split_once('/').unwrap_or((cidr, "24"));
                let _ = write!(
                    text,
                    "      - type: static\n        address: '{address}'\n        netmask: '{}'\n",
                    netmask(prefix)
                );
                if let Some(gateway) = settings.get("gw") {
                    let _ = writeln!(text, "        gateway: '{gateway}'");
                }
            }
            None => {}
        }
        match settings.get("ip6").map(String::as_str) {
            Some("dhcp") => text.push_str("      - type: dhcp6\n"),
            Some("auto") => text.push_str("      - type: ipv6_slaac\n"),
            Some(cidr) => {
                let _ = writeln!(text, "      - type: static6\n        address: '{cidr}'");
            }
            None => {}
        }
    }
    text.push_str("    - type: nameserver\n      address:\n");
    let nameservers = config
        .get("nameserver")
        .map_or("192.168.10.1", String::as_str);
    for server in nameservers
        .split([' ', ',', ';'])
        .filter(|part| !part.is_empty())
    {
        let _ = writeln!(text, "      - '{server}'");
    }
    text.push_str("      search:\n");
    let search = config
        .get("searchdomain")
        .map_or("lab.internal", String::as_str);
    for domain in search
        .split([' ', ',', ';'])
        .filter(|part| !part.is_empty())
    {
        let _ = writeln!(text, "      - '{domain}'");
    }
    text
}

fn netmask(prefix: &str) -> String {
    let bits: u32 = prefix.parse().unwrap_or(24).min(32);
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    let [a, b, c, d] = mask.to_be_bytes();
    format!("{a}.{b}.{c}.{d}")
}
