//! The QEMU guest agent endpoints (`.../agent/...`), one module per backend.
//!
//! Why two: clients use the agent to find a new VM's address and its SSH host key, and
//! the two kinds of lab guests answer differently. [`state_only`] answers for state-only
//! guests from the VM's config (no process behind it); [`qemu`] forwards to the real
//! `qemu-guest-agent` of a QEMU guest and, in qemu mode, answers before the state-only
//! handlers are asked. What both kinds of guests (and cloning, creating and a fresh node)
//! need lives here: the MAC a NIC carries and the SSH host key a new VM gets.

pub(crate) mod qemu;
pub(crate) mod state_only;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::config::parse_properties;
use super::state::SplitMix;

/// NIC models whose key carries the MAC (`virtio=BC:24:11:..`).
pub(crate) const NIC_MODELS: &[&str] = &[
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];

/// The MAC of a `netN` value.
pub(crate) fn net_mac(net: &str) -> Option<String> {
    parse_properties(net, "model")
        .into_iter()
        .find(|(key, value)| {
            (NIC_MODELS.contains(&key.as_str()) && !value.is_empty()) || key == "macaddr"
        })
        .map(|(_, mac)| mac)
}

/// A new ed25519 host key's public line, `ssh-ed25519 AAAA... root@HOST`.
pub(crate) fn generate_host_key(random: &mut SplitMix, hostname: &str) -> String {
    let secret = random.bytes::<32>();
    let key = ed25519_dalek::SigningKey::from_bytes(&secret);
    let public = key.verifying_key().to_bytes();
    let mut blob = Vec::with_capacity(51);
    for part in [b"ssh-ed25519".as_slice(), public.as_slice()] {
        let length = u32::try_from(part.len()).unwrap_or(0);
        blob.extend_from_slice(&length.to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!("ssh-ed25519 {} root@{hostname}", STANDARD.encode(blob))
}
