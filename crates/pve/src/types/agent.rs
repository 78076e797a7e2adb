//! Guest agent answers, and choosing the VM's address from them.
//!
//! Why the address choice lives here: "wait for the VM's IP" is where other clients hang or
//! pick the wrong address (link-local, `docker0`, a bridge). The rule is pure and testable:
//! prefer the interface whose MAC is `net0`'s, never use loopback, link-local or container
//! and bridge interfaces, and prefer IPv4.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::lenient;

/// One address of a guest interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestAddress {
    #[serde(rename = "ip-address")]
    pub address: String,
    /// `ipv4` or `ipv6`.
    #[serde(rename = "ip-address-type", default)]
    pub address_type: String,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub prefix: Option<u64>,
}

/// One entry of `network-get-interfaces`' `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInterface {
    pub name: String,
    #[serde(rename = "hardware-address", default)]
    pub hardware_address: Option<String>,
    #[serde(rename = "ip-addresses", default)]
    pub addresses: Vec<GuestAddress>,
}

/// `GET .../agent/network-get-interfaces` data: `{"result": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInterfaces {
    pub result: Vec<GuestInterface>,
}

/// `POST .../agent/exec` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStarted {
    #[serde(deserialize_with = "lenient::u64")]
    pub pid: u64,
}

/// `GET .../agent/exec-status` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStatus {
    #[serde(default, deserialize_with = "lenient::bool")]
    pub exited: bool,
    #[serde(default, deserialize_with = "lenient::option_u64")]
    pub exitcode: Option<u64>,
    #[serde(rename = "out-data", default)]
    pub out_data: Option<String>,
    #[serde(rename = "err-data", default)]
    pub err_data: Option<String>,
    #[serde(rename = "out-truncated", default, deserialize_with = "lenient::bool")]
    pub out_truncated: bool,
}

/// `GET .../agent/file-read` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRead {
    pub content: String,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub truncated: bool,
    #[serde(
        rename = "bytes-read",
        default,
        deserialize_with = "lenient::option_u64"
    )]
    pub bytes_read: Option<u64>,
}

/// Interface name prefixes that never carry the VM's reachable address.
const SKIPPED_PREFIXES: [&str; 9] = [
    "docker", "br-", "veth", "virbr", "lxcbr", "cni", "flannel", "podman", "cali",
];

/// Whether an interface is loopback or a container/bridge interface.
pub fn is_skipped_interface(name: &str) -> bool {
    name == "lo"
        || SKIPPED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

fn usable(address: &GuestAddress) -> Option<IpAddr> {
    let ip: IpAddr = address.address.parse().ok()?;
    let unusable = match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || v6.is_unicast_link_local(),
    };
    (!unusable).then_some(ip)
}

/// Picks the VM's address: the interface with MAC `mac`; IPv4 before IPv6; `None` while
/// nothing usable is reported. Without `mac`, or when no eligible interface reports a
/// hardware address at all (some guests hide it), every non-skipped interface is
/// considered; when interfaces do report MACs and none is `mac`, nothing is chosen (the
/// address of another NIC is not the one net0 is reached on).
pub fn select_address(interfaces: &[GuestInterface], mac: Option<&str>) -> Option<IpAddr> {
    let eligible: Vec<&GuestInterface> = interfaces
        .iter()
        .filter(|interface| !is_skipped_interface(&interface.name))
        .collect();
    let reports_macs = eligible.iter().any(|interface| {
        interface
            .hardware_address
            .as_deref()
            .is_some_and(|own| !own.is_empty() && own != "00:00:00:00:00:00")
    });
    let candidates: Vec<&GuestInterface> = match mac {
        Some(mac) if reports_macs => eligible
            .into_iter()
            .filter(|interface| {
                interface
                    .hardware_address
                    .as_deref()
                    .is_some_and(|own| own.eq_ignore_ascii_case(mac))
            })
            .collect(),
        _ => eligible,
    };
    let addresses: Vec<IpAddr> = candidates
        .iter()
        .flat_map(|interface| interface.addresses.iter().filter_map(usable))
        .collect();
    addresses
        .iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .or_else(|| addresses.first().copied())
}

#[cfg(test)]
mod tests {
    use super::{GuestInterfaces, select_address};
    use serde_json::json;

    fn interfaces(extra: serde_json::Value) -> GuestInterfaces {
        let mut result = vec![
            json!({"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]}),
            json!({"name": "docker0", "hardware-address": "02:42:ac:11:00:01", "ip-addresses": [
                {"ip-address": "172.17.0.1", "ip-address-type": "ipv4", "prefix": 16}]}),
        ];
        result.push(extra);
        serde_json::from_value(json!({ "result": result })).unwrap()
    }

    #[test]
    fn picks_net0_ipv4_and_ignores_docker_and_link_local() {
        let answer = interfaces(
            json!({"name": "eth0", "hardware-address": "bc:24:11:2a:3b:4c",
            "ip-addresses": [
                {"ip-address": "fe80::1", "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": "192.168.10.20", "ip-address-type": "ipv4", "prefix": 24}]}),
        );
        let chosen = select_address(&answer.result, Some("BC:24:11:2A:3B:4C"));
        assert_eq!(chosen, Some("192.168.10.20".parse().unwrap()));
        assert_eq!(
            select_address(&answer.result, None),
            Some("192.168.10.20".parse().unwrap())
        );
    }

    #[test]
    fn nothing_usable_yet_is_none() {
        let answer = interfaces(
            json!({"name": "eth0", "hardware-address": "bc:24:11:2a:3b:4c",
            "ip-addresses": [
                {"ip-address": "fe80::be24:11ff:fe2a:3b4c", "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": "169.254.3.4", "ip-address-type": "ipv4", "prefix": 16}]}),
        );
        assert_eq!(
            select_address(&answer.result, Some("bc:24:11:2a:3b:4c")),
            None
        );
        // docker0 has a usable-looking address but must never be chosen.
        assert_eq!(select_address(&answer.result, None), None);
        // A MAC that matches no interface selects nothing, not another interface.
        assert_eq!(
            select_address(&answer.result, Some("aa:aa:aa:aa:aa:aa")),
            None
        );
    }

    #[test]
    fn another_nic_is_never_net0_but_hidden_macs_fall_back() {
        let two_nics = interfaces(
            json!({"name": "eth1", "hardware-address": "aa:aa:aa:aa:aa:01",
            "ip-addresses": [{"ip-address": "10.9.8.7", "ip-address-type": "ipv4", "prefix": 24}]}),
        );
        // net0's NIC has no address yet; eth1's address is not how net0 is reached.
        assert_eq!(
            select_address(&two_nics.result, Some("bc:24:11:2a:3b:4c")),
            None
        );
        let hidden = interfaces(json!({"name": "eth0",
            "ip-addresses": [{"ip-address": "192.168.10.20", "ip-address-type": "ipv4", "prefix": 24}]}));
        assert_eq!(
            select_address(&hidden.result, Some("bc:24:11:2a:3b:4c")),
            Some("192.168.10.20".parse().unwrap())
        );
    }
}
