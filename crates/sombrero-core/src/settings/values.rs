//! Parsers and checks for single setting values: API URL, booleans, TLS fingerprint, SSH
//! public key, addresses, VM ids and Proxmox names.
//!
//! Why separate from resolution: these are pure `text -> value` functions with a reason
//! string on failure, so they are easy to unit-test exhaustively, and the resolver only
//! adds *where* the bad value came from.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use url::Url;

/// The range Proxmox accepts for VM ids.
pub const VMID_RANGE: std::ops::RangeInclusive<i64> = 100..=999_999_999;

/// Parses the API URL: http(s), a host, no credentials; an empty path or one ending in
/// `/api2/json` is accepted and normalised to end in exactly `/api2/json`.
///
/// # Errors
/// A reason when the text is not such a URL.
pub fn parse_api_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text.trim()).map_err(|error| error.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme must be https or http, not {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(
            "http:// would send the API token in clear; use https:// (plain http is accepted \
             only for a loopback address, such as a lab started with --plain-http)"
                .to_owned(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials do not belong in the URL; use TF_VAR_pve_api_token".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".to_owned());
    }
    let path = url.path().trim_end_matches('/');
    if !(path.is_empty() || path.ends_with("/api2/json")) {
        return Err(format!(
            "the path must be empty or end with /api2/json, not {:?}",
            url.path()
        ));
    }
    let normalised = if path.is_empty() {
        "/api2/json".to_owned()
    } else {
        path.to_owned()
    };
    url.set_path(&normalised);
    Ok(url)
}

/// Whether the URL's host is a loopback address (127.0.0.0/8, `::1`) or `localhost`:
/// the only hosts plain http is accepted for. Names are not resolved (no network while
/// resolving settings), so any other name counts as remote.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// Parses a boolean the way shells and Terraform write them.
///
/// # Errors
/// A reason when the text is not one of true/false/1/0/yes/no/on/off.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean (true or false)")),
    }
}

/// A SHA-256 certificate fingerprint, shown as uppercase colon hex like Proxmox's GUI.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.0.iter().map(|byte| format!("{byte:02X}")).collect();
        f.write_str(&text.join(":"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Parses `AA:BB:...` (32 colon-separated hex bytes, either case).
///
/// # Errors
/// A reason when the text is not a SHA-256 fingerprint in that form.
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint, String> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 32 {
        return Err(format!(
            "a SHA-256 fingerprint is 32 colon-separated hex bytes (AA:BB:...), found {} part(s)",
            parts.len()
        ));
    }
    let mut bytes = [0_u8; 32];
    for (index, (byte, part)) in bytes.iter_mut().zip(&parts).enumerate() {
        let decoded = (part.len() == 2)
            .then(|| hex::decode(part).ok())
            .flatten()
            .and_then(|value| value.first().copied());
        *byte = decoded
            .ok_or_else(|| format!("byte {} ({part:?}) is not two hex digits", index + 1))?;
    }
    Ok(Fingerprint(bytes))
}

/// An OpenSSH public key line, `TYPE BASE64 [COMMENT]`, checked to be well formed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct SshPublicKey(String);

impl SshPublicKey {
    /// The whole key line, as `authorized_keys` and cloud-init want it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key type, e.g. `ssh-ed25519`.
    pub fn algorithm(&self) -> &str {
        self.0.split_whitespace().next().unwrap_or_default()
    }
}

const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Parses one OpenSSH public key line (the first non-comment line of a `.pub` file).
///
/// # Errors
/// A reason when the text is not a public key: unknown type, body not base64, or a body
/// that does not encode the declared type (catches placeholders like `AAAA...-example-key`).
pub fn parse_ssh_public_key(text: &str) -> Result<SshPublicKey, String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .ok_or("the SSH public key is empty")?;
    if line.contains("PRIVATE KEY") {
        return Err("this is a private key; give the public key (.pub)".to_owned());
    }
    let mut fields = line.split_whitespace();
    let algorithm = fields.next().unwrap_or_default();
    if !SSH_KEY_TYPES.contains(&algorithm) {
        return Err(format!(
            "unknown SSH key type {algorithm:?}; expected one of {}",
            SSH_KEY_TYPES.join(", ")
        ));
    }
    let body = fields.next().ok_or("the SSH public key has no key data")?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|error| format!("the key data is not valid base64 ({error})"))?;
    let declared = blob
        .get(..4)
        .and_then(|length| <[u8; 4]>::try_from(length).ok())
        .map(u32::from_be_bytes)
        .and_then(|length| blob.get(4..4 + usize::try_from(length).ok()?));
    if declared != Some(algorithm.as_bytes()) {
        return Err(format!("the key data is not a {algorithm} key"));
    }
    Ok(SshPublicKey(line.to_owned()))
}

/// Parses `ADDRESS/PREFIX` as the VM's address (not the subnet's network or broadcast).
///
/// # Errors
/// A reason when the text is not a usable host address with a prefix length.
pub fn parse_host_cidr(text: &str) -> Result<IpNet, String> {
    if !text.contains('/') {
        return Err("the prefix length is missing (e.g. /24)".to_owned());
    }
    let (address, prefix) = text.trim().split_once('/').unwrap_or((text, ""));
    let address: IpAddr = address
        .parse()
        .map_err(|_| format!("{address:?} is not an IPv4 or IPv6 address"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("the prefix length {prefix:?} is not a number"))?;
    let net = IpNet::new(address, prefix).map_err(|_| {
        let maximum = if address.is_ipv4() { 32 } else { 128 };
        format!("the prefix length /{prefix} is longer than /{maximum}")
    })?;
    if let IpNet::V4(v4) = net
        && v4.prefix_len() < 31
        && (v4.addr() == v4.network() || v4.addr() == v4.broadcast())
    {
        return Err(format!(
            "{} is not a host address in {}",
            v4.addr(),
            v4.trunc()
        ));
    }
    Ok(net)
}

/// Whether `gateway` can be the VM's gateway: inside its subnet and not its own address.
pub fn gateway_in_subnet(address: &IpNet, gateway: IpAddr) -> bool {
    address.trunc().contains(&gateway) && gateway != address.addr()
}

/// Whether `name` is a valid DNS name, which Proxmox requires of VM names.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Whether `tag` is a valid Proxmox VM tag.
pub fn is_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c))
}

/// Whether `slot` names a Proxmox disk slot (`scsi0`..`scsi30`, `virtio0`..`virtio15`,
/// `sata0`..`sata5`, `ide0`..`ide3`).
pub fn is_disk_slot(slot: &str) -> bool {
    let digits_at = slot
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(slot.len());
    let (bus, number) = slot.split_at(digits_at);
    let Ok(number) = number.parse::<u8>() else {
        return false;
    };
    let maximum = match bus {
        "scsi" => 30,
        "virtio" => 15,
        "sata" => 5,
        "ide" => 3,
        _ => return false,
    };
    number <= maximum && !(number > 0 && slot.get(digits_at..).is_some_and(|d| d.starts_with('0')))
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;

/// Where an environment's VM is placed (`node` in `sombrero.toml`, `PKR_VAR_proxmox_node`).
///
/// Why not just a name: a cluster of several nodes lets sombrero choose, as an operator
/// would, the node that can host the clone with the most free memory (`"auto"`, or only
/// among the listed nodes). A VM that exists is always found wherever it is; the choice
/// only matters for a new one (see `deploy::placement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChoice {
    /// This node (the runbook's `proxmox_node`).
    Named(String),
    /// Any online node of the cluster.
    Auto,
    /// One of these nodes (at least two; one is `Named`).
    Among(Vec<String>),
}

impl NodeChoice {
    /// The node a command that cannot ask the cluster uses: the named one, the first of a
    /// list; `None` for `auto`.
    pub fn preferred(&self) -> Option<&str> {
        match self {
            Self::Named(node) => Some(node),
            Self::Among(nodes) => nodes.first().map(String::as_str),
            Self::Auto => None,
        }
    }

    /// Parses the text form: `auto`, a node name, or names separated by commas. Returns the
    /// offending piece when a name is not a valid node name.
    ///
    /// # Errors
    /// The text that is not a node name (quoted in the message).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        Self::from_list(text.split(',').map(str::trim).map(str::to_owned).collect())
    }

    /// A list of names (one name: `Named`), each checked and without repeats.
    ///
    /// # Errors
    /// An empty list, or a piece that is not a node name.
    pub fn from_list(names: Vec<String>) -> Result<Self, String> {
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if name.eq_ignore_ascii_case("auto") {
                return Err("\"auto\" cannot be combined with node names".to_owned());
            }
            if !is_dns_name(&name) {
                return Err(format!("{name:?} is not a Proxmox node name"));
            }
            if !unique.contains(&name) {
                unique.push(name);
            }
        }
        match unique.len() {
            0 => Err("an empty list names no node".to_owned()),
            1 => Ok(Self::Named(unique.remove(0))),
            _ => Ok(Self::Among(unique)),
        }
    }
}

impl serde::Serialize for NodeChoice {
    /// As written in `sombrero.toml`: `"lloyd"`, `"auto"`, `["pve2", "pve3"]`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Named(node) => serializer.serialize_str(node),
            Self::Auto => serializer.serialize_str("auto"),
            Self::Among(nodes) => nodes.serialize(serializer),
        }
    }
}

impl fmt::Display for NodeChoice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(node) => formatter.write_str(node),
            Self::Auto => formatter.write_str("auto"),
            Self::Among(nodes) => write!(formatter, "one of {}", nodes.join(", ")),
        }
    }
}
