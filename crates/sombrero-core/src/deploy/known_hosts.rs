//! The `known_hosts` file sombrero manages: the VM's host key, read through the guest agent,
//! pinned under the exact address sombrero (and Ansible) connect to.
//!
//! Why: the original disabled host key checking everywhere. Reading the key through the
//! agent (an authenticated channel via Proxmox) before the first SSH connection means
//! `StrictHostKeyChecking=yes` works from the start, with no trust-on-first-use. The
//! pattern must be what the client connects to: `[127.0.0.1]:PORT` for a lab forward,
//! the bare address for port 22.

use std::net::IpAddr;
use std::path::Path;

use base64::Engine;

use super::error::DeployResult;
use super::outputs::write_atomically;

/// Where the VM's ed25519 host key lives (cloud-init generates it on first boot).
pub const HOST_KEY_FILE: &str = "/etc/ssh/ssh_host_ed25519_key.pub";

/// The `known_hosts` host pattern for `host:port`.
pub fn host_pattern(host: IpAddr, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `type base64` from a `.pub` line (the comment dropped), after checking it.
///
/// # Errors
/// A description of what is wrong with the line.
pub fn parse_host_key(text: &str) -> Result<String, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .ok_or("the file is empty")?;
    let mut fields = line.split_whitespace();
    let kind = fields.next().ok_or("no key type")?;
    let blob = fields.next().ok_or("no key data")?;
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-")) {
        return Err(format!("{kind:?} is not an SSH key type"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|error| format!("key data is not base64: {error}"))?;
    // The blob starts with the length-prefixed key type itself.
    let declared = bytes
        .get(4..)
        .and_then(|rest| rest.get(..kind.len()))
        .is_some_and(|name| name == kind.as_bytes());
    if !declared {
        return Err(format!("key data does not hold a {kind} key"));
    }
    Ok(format!("{kind} {blob}"))
}

/// Whether a `known_hosts` line is for `pattern` (its first field lists hosts, comma-separated).
fn is_for(line: &str, pattern: &str) -> bool {
    line.split_whitespace()
        .next()
        .is_some_and(|hosts| hosts.split(',').any(|host| host == pattern))
}

/// The lines of `text` that are not for `pattern`, each ending in a newline.
fn kept_lines(text: &str, pattern: &str) -> String {
    let mut kept = String::new();
    for line in text.lines().filter(|line| !is_for(line, pattern)) {
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// Pins `key` (`type base64`) for `pattern` in `path`, replacing older keys for the same
/// pattern and keeping everything else. Returns whether the file changed.
///
/// # Errors
/// [`super::error::DeployError::Write`].
pub fn pin(path: &Path, pattern: &str, key: &str) -> DeployResult<bool> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let wanted = format!("{pattern} {key}");
    if existing
        .lines()
        .filter(|line| is_for(line, pattern))
        .eq([wanted.as_str()])
    {
        return Ok(false);
    }
    let mut text = kept_lines(&existing, pattern);
    text.push_str(&wanted);
    text.push('\n');
    write_atomically(path, &text)?;
    Ok(true)
}

/// Removes every key for `pattern` from `path` (a missing file is fine).
///
/// # Errors
/// [`super::error::DeployError::Write`].
pub fn forget(path: &Path, pattern: &str) -> DeployResult<()> {
    let Ok(existing) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let text = kept_lines(&existing, pattern);
    write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::{forget, host_pattern, parse_host_key, pin};

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ root@jump-man\n";

    #[test]
    fn patterns_name_the_port_only_when_it_is_not_22() {
        assert_eq!(
            host_pattern("192.168.10.252".parse().unwrap(), 22),
            "192.168.10.252"
        );
        assert_eq!(
            host_pattern("127.0.0.1".parse().unwrap(), 40022),
            "[127.0.0.1]:40022"
        );
    }

    #[test]
    fn host_keys_are_checked() {
        let key = parse_host_key(KEY).unwrap();
        assert!(key.starts_with("ssh-ed25519 AAAA") && !key.contains("root@"));
        assert!(parse_host_key("").is_err());
        assert!(
            parse_host_key(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+"
            )
            .is_err()
        );
        assert!(parse_host_key("hello world").is_err());
    }

    #[test]
    fn pinning_replaces_only_the_same_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let key = parse_host_key(KEY).unwrap();
        std::fs::write(
            &path,
            "other.example ssh-ed25519 AAAA\n[127.0.0.1]:1 ssh-ed25519 OLD\n",
        )
        .unwrap();
        assert!(pin(&path, "[127.0.0.1]:1", &key).unwrap());
        assert!(
            !pin(&path, "[127.0.0.1]:1", &key).unwrap(),
            "pinning twice changes nothing"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("other.example") && !text.contains("OLD"),
            "{text}"
        );
        forget(&path, "[127.0.0.1]:1").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "other.example ssh-ed25519 AAAA\n");
    }
}
