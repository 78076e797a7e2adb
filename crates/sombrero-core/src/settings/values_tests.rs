//! Unit tests for the value parsers, plus a property test of the gateway rule.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use proptest::prelude::*;

use super::{
    gateway_in_subnet, is_disk_slot, is_dns_name, is_tag, parse_api_url, parse_bool,
    parse_fingerprint, parse_host_cidr, parse_ssh_public_key,
};

// A real ed25519 public key (generated for these tests, no private half kept).
const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ test@sombrero";

#[test]
fn api_urls_are_normalised_to_api2_json() {
    for text in [
        "https://pve:8006",
        "https://pve:8006/",
        "https://pve:8006/api2/json",
        "https://pve:8006/api2/json/",
    ] {
        assert_eq!(
            parse_api_url(text).expect("must be valid").as_str(),
            "https://pve:8006/api2/json",
            "{text}"
        );
    }
    assert!(
        parse_api_url("ftp://pve")
            .expect_err("must be rejected")
            .contains("scheme")
    );
    assert!(parse_api_url("not a url").is_err());
    // Plain http sends the token in clear: loopback only (a lab's --plain-http).
    for remote in [
        "http://pve:8006",
        "http://192.168.10.5:8006",
        "http://[2001:db8::1]:8006",
    ] {
        assert!(
            parse_api_url(remote)
                .expect_err("plain http to a remote host")
                .contains("in clear"),
            "{remote}"
        );
    }
    for local in [
        "http://127.0.0.1:8006",
        "http://[::1]:8006",
        "http://localhost:8006",
        "http://127.9.9.9:1",
    ] {
        assert!(parse_api_url(local).is_ok(), "{local}");
    }
    assert!(
        parse_api_url("https://pve:8006/other")
            .expect_err("must be rejected")
            .contains("/api2/json")
    );
    assert!(
        parse_api_url("https://root:pw@pve:8006")
            .expect_err("must be rejected")
            .contains("credentials")
    );
}

#[test]
fn booleans_accept_shell_spellings() {
    assert_eq!(parse_bool("true"), Ok(true));
    assert_eq!(parse_bool("TRUE"), Ok(true));
    assert_eq!(parse_bool("0"), Ok(false));
    assert!(parse_bool("maybe").is_err());
}

#[test]
fn fingerprints_need_32_hex_bytes() {
    let text = ["ab"; 32].join(":");
    let fingerprint = parse_fingerprint(&text).expect("must be valid");
    assert_eq!(fingerprint.to_string(), ["AB"; 32].join(":"));
    assert!(
        parse_fingerprint("AB:CD")
            .expect_err("must be rejected")
            .contains("found 2")
    );
    let bad = format!("{}:ZZ", ["ab"; 31].join(":"));
    assert!(
        parse_fingerprint(&bad)
            .expect_err("must be rejected")
            .contains("byte 32")
    );
}

#[test]
fn ssh_keys_must_decode_to_their_type() {
    let key = parse_ssh_public_key(ED25519).expect("must be valid");
    assert_eq!(key.algorithm(), "ssh-ed25519");
    let placeholder = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI-example-key ansible@jump-man";
    assert!(
        parse_ssh_public_key(placeholder)
            .expect_err("must be rejected")
            .contains("base64")
    );
    let wrong_type = ED25519.replacen("ssh-ed25519", "ssh-rsa", 1);
    assert!(
        parse_ssh_public_key(&wrong_type)
            .expect_err("must be rejected")
            .contains("not a ssh-rsa key")
    );
    assert!(parse_ssh_public_key("").is_err());
    assert!(parse_ssh_public_key("-----BEGIN OPENSSH PRIVATE KEY-----").is_err());
}

#[test]
fn host_cidrs_need_a_prefix_and_a_host_address() {
    assert_eq!(
        parse_host_cidr("192.168.10.252/24")
            .expect("must be valid")
            .to_string(),
        "192.168.10.252/24"
    );
    assert!(
        parse_host_cidr("192.168.10.252")
            .expect_err("must be rejected")
            .contains("prefix")
    );
    assert!(
        parse_host_cidr("192.168.10.300/24")
            .expect_err("bad")
            .contains("not an IPv4")
    );
    assert!(
        parse_host_cidr("192.168.10.3/33")
            .expect_err("bad")
            .contains("longer than /32")
    );
    assert!(
        parse_host_cidr("192.168.10.3/x")
            .expect_err("bad")
            .contains("not a number")
    );
    assert!(
        parse_host_cidr("192.168.10.0/24")
            .expect_err("must be rejected")
            .contains("not a host")
    );
    assert!(parse_host_cidr("192.168.10.255/24").is_err());
}

#[test]
fn names_tags_and_slots() {
    assert!(is_dns_name("jump-man"));
    assert!(!is_dns_name("jump_man"));
    assert!(!is_dns_name("-jump"));
    assert!(is_tag("jump-host"));
    assert!(!is_tag("jump host"));
    assert!(is_disk_slot("scsi0"));
    assert!(is_disk_slot("virtio15"));
    assert!(!is_disk_slot("scsi31"));
    assert!(!is_disk_slot("nvme0"));
    assert!(!is_disk_slot("scsi01"));
}

fn masked(address: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        address & (u32::MAX << (32 - prefix))
    }
}

proptest! {
    /// The gateway rule agrees with plain bit masking for any IPv4 address and prefix.
    #[test]
    fn gateway_rule_matches_bit_masking(address: u32, gateway: u32, prefix in 0_u8..=32) {
        let net = IpNet::new(IpAddr::V4(Ipv4Addr::from(address)), prefix).expect("must be valid");
        let expected = masked(address, prefix) == masked(gateway, prefix) && address != gateway;
        prop_assert_eq!(
            gateway_in_subnet(&net, IpAddr::V4(Ipv4Addr::from(gateway))),
            expected
        );
    }

    /// A gateway in the same /24 as the VM is always accepted unless it is the VM itself.
    #[test]
    fn same_slash_24_gateways_are_accepted(host in 1_u8..=254, gateway in 1_u8..=254) {
        let net: IpNet = format!("192.168.10.{host}/24").parse().expect("must be valid");
        let gateway_address = IpAddr::V4(Ipv4Addr::new(192, 168, 10, gateway));
        prop_assert_eq!(gateway_in_subnet(&net, gateway_address), host != gateway);
    }
}
