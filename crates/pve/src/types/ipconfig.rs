//! Cloud-init `ipconfigN` values: `ip=192.168.10.20/24,gw=192.168.10.1`, `ip=dhcp`, IPv6.
//!
//! Why fully typed: a wrong address or a gateway outside the subnet is one of the mistakes
//! that only shows up minutes later as an unreachable VM. Parsing into real address types
//! rejects it at the call site and prints the exact text PVE expects.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{Ipv4Net, Ipv6Net};

use super::devices::{invalid, parse_field};
use super::property::{PropertyError, PropertyString};

/// The IPv4 part of an `ipconfigN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Setting {
    Dhcp,
    /// Address with prefix, e.g. `192.168.10.20/24`.
    Static(Ipv4Net),
}

/// The IPv6 part of an `ipconfigN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Setting {
    Dhcp,
    /// Stateless autoconfiguration.
    Auto,
    Static(Ipv6Net),
}

/// A cloud-init `ipconfigN` value, e.g. `ip=192.168.10.20/24,gw=192.168.10.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IpConfig {
    pub ip: Option<Ipv4Setting>,
    pub gw: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Setting>,
    pub gw6: Option<Ipv6Addr>,
}

impl IpConfig {
    /// A static IPv4 address with an optional gateway.
    pub fn static_v4(address: Ipv4Net, gateway: Option<Ipv4Addr>) -> Self {
        Self {
            ip: Some(Ipv4Setting::Static(address)),
            gw: gateway,
            ..Self::default()
        }
    }

    /// DHCP on IPv4.
    pub fn dhcp() -> Self {
        Self {
            ip: Some(Ipv4Setting::Dhcp),
            ..Self::default()
        }
    }
}

impl FromStr for IpConfig {
    type Err = PropertyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let property: PropertyString = text.parse()?;
        let mut config = Self::default();
        for entry in property.entries() {
            let value = entry.value.as_str();
            match entry.key.as_deref() {
                Some("ip") => {
                    config.ip = Some(if value == "dhcp" {
                        Ipv4Setting::Dhcp
                    } else {
                        Ipv4Setting::Static(parse_field("ip", value)?)
                    });
                }
                Some("gw") => config.gw = Some(parse_field("gw", value)?),
                Some("ip6") => {
                    config.ip6 = Some(match value {
                        "dhcp" => Ipv6Setting::Dhcp,
                        "auto" => Ipv6Setting::Auto,
                        _ => Ipv6Setting::Static(parse_field("ip6", value)?),
                    });
                }
                Some("gw6") => config.gw6 = Some(parse_field("gw6", value)?),
                other => {
                    return Err(invalid(
                        other.unwrap_or("(bare value)"),
                        value,
                        "ipconfig accepts ip, gw, ip6 and gw6",
                    ));
                }
            }
        }
        Ok(config)
    }
}

impl fmt::Display for IpConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match self.ip {
            Some(Ipv4Setting::Dhcp) => parts.push("ip=dhcp".to_owned()),
            Some(Ipv4Setting::Static(net)) => parts.push(format!("ip={net}")),
            None => {}
        }
        if let Some(gateway) = self.gw {
            parts.push(format!("gw={gateway}"));
        }
        match self.ip6 {
            Some(Ipv6Setting::Dhcp) => parts.push("ip6=dhcp".to_owned()),
            Some(Ipv6Setting::Auto) => parts.push("ip6=auto".to_owned()),
            Some(Ipv6Setting::Static(net)) => parts.push(format!("ip6={net}")),
            None => {}
        }
        if let Some(gateway) = self.gw6 {
            parts.push(format!("gw6={gateway}"));
        }
        formatter.write_str(&parts.join(","))
    }
}
