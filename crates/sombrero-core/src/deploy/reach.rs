//! Reaching the VM over SSH: which address to connect to, and waiting until SSH answers.
//!
//! Why this is careful: the VM's address (192.168.10.x in the runbook) is only meaningful
//! inside its own network. Against a lab, SSH is forwarded to a port on 127.0.0.1 and the
//! lab says which (`GET /lab/vms/{vmid}/ssh`, asked through the same `pve::Client` as
//! every API call, decision 081); sombrero must use that and never the VM's private
//! address. The safety rule is enforced here, in one function with a test: when
//! the API itself is on this host (a loopback or unspecified address, or a name resolving
//! to one), sombrero connects to loopback addresses only,
//! and without a forward it skips the SSH step and says why. Only against a real cluster
//! (a non-loopback API) does it connect to `vm_ip:22`.
//!
//! "SSH answers" means a TCP connection that sends an `SSH-2.0-` banner; real logins come
//! with stage 3.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;
use url::Url;

use super::error::{DeployError, DeployResult};

/// Where SSH for the VM is reached, or why it is not tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SshRoute {
    /// A lab forward on a loopback address.
    Forward { host: IpAddr, port: u16 },
    /// The VM's own address (real clusters only).
    Direct { host: IpAddr, port: u16 },
    /// No SSH check, and why.
    Skipped { reason: String },
}

impl SshRoute {
    /// The address to connect to, if any.
    pub fn target(&self) -> Option<SocketAddr> {
        match self {
            Self::Forward { host, port } | Self::Direct { host, port } => {
                Some(SocketAddr::new(*host, *port))
            }
            Self::Skipped { .. } => None,
        }
    }
}

/// What the lab's SSH endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabAnswer {
    /// `{"data":{"host","port"}}`.
    Forward { host: IpAddr, port: u16 },
    /// `{"data":null}`: a lab guest without SSH (state-only).
    NoSsh,
    /// Anything else: not a lab.
    NotALab,
}

/// Whether `address` is this host: loopback, unspecified (`0.0.0.0` and `::` reach the
/// local host), or the IPv4-mapped IPv6 form of those (`::ffff:127.0.0.1`).
fn is_this_host(address: IpAddr) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    };
    address.is_loopback() || address.is_unspecified()
}

/// Whether the API URL's host is this host (127.0.0.0/8, `::1`, `0.0.0.0`, their
/// IPv4-mapped forms, `localhost`, or a name that resolves to any of those).
///
/// A name is resolved the way the client connecting to the API resolves it (the system
/// resolver, `/etc/hosts` first); a name that does not resolve counts as this host, so
/// the rule fails safe.
pub fn api_is_loopback(api: &Url) -> bool {
    api_is_loopback_with(api, |name, port| {
        (name, port)
            .to_socket_addrs()
            .ok()
            .map(|addresses| addresses.map(|address| address.ip()).collect())
    })
}

/// [`api_is_loopback`] with the name resolution given (tests never touch DNS).
pub(crate) fn api_is_loopback_with(
    api: &Url,
    resolve: impl Fn(&str, u16) -> Option<Vec<IpAddr>>,
) -> bool {
    match api.host() {
        Some(url::Host::Ipv4(address)) => is_this_host(address.into()),
        Some(url::Host::Ipv6(address)) => is_this_host(address.into()),
        Some(url::Host::Domain(name)) => {
            let name = name.to_ascii_lowercase();
            let name = name.trim_end_matches('.');
            if name == "localhost" || name.ends_with(".localhost") {
                return true;
            }
            let port = api.port_or_known_default().unwrap_or(443);
            match resolve(name, port) {
                Some(addresses) if !addresses.is_empty() => addresses.into_iter().any(is_this_host),
                _ => true,
            }
        }
        None => true,
    }
}

/// The safety rule: may sombrero connect to `target` when the API is at `api`?
pub fn may_connect(api: &Url, target: IpAddr) -> bool {
    !api_is_loopback(api) || target.is_loopback()
}

/// Picks the route from the lab's answer, the API URL and the VM's address.
pub fn choose_route(api: &Url, answer: &LabAnswer, vm_ip: IpAddr) -> SshRoute {
    match answer {
        LabAnswer::Forward { host, port } if may_connect(api, *host) && host.is_loopback() => {
            SshRoute::Forward {
                host: *host,
                port: *port,
            }
        }
        LabAnswer::Forward { host, port } => SshRoute::Skipped {
            reason: format!(
                "the lab offered an SSH forward to {host}:{port}, which is not a loopback address; refused"
            ),
        },
        LabAnswer::NoSsh => SshRoute::Skipped {
            reason: "the lab's guests are state-only (no SSH server); the SSH check is skipped"
                .to_owned(),
        },
        LabAnswer::NotALab if may_connect(api, vm_ip) => SshRoute::Direct {
            host: vm_ip,
            port: 22,
        },
        LabAnswer::NotALab => SshRoute::Skipped {
            reason: format!(
                "the API is on a loopback address but offers no SSH forward; sombrero never \
                 connects to the VM's address {vm_ip} from here"
            ),
        },
    }
}

/// The API URL the safety rule judges: the client's own (`https://HOST:PORT/api2/json`).
///
/// # Errors
/// [`DeployError::Api`] if the client's URL does not parse (it was parsed when the
/// client was built, so this does not happen in practice).
pub fn api_url(client: &pve::Client) -> DeployResult<Url> {
    Url::parse(client.base_url()).map_err(|error| {
        DeployError::api(
            "reading the API URL",
            pve::Error::Setup {
                reason: format!("invalid API URL {:?}", client.base_url()),
                source: Some(Box::new(error)),
            },
        )
    })
}

/// Asks the API's server for a lab SSH forward of `vmid` (`GET /lab/vms/{vmid}/ssh` on
/// the server root) through `client`, so the credentials (token or ticket), TLS trust and
/// counters are the API's. Any failure means "not a lab"; it is retried only when it
/// certainly never reached the server, so a real PVE answering 404 or 501 for the
/// unknown path costs one request.
pub async fn ask_lab(client: &pve::Client, vmid: u32) -> LabAnswer {
    let request = pve::Request::server_root(pve::Method::Get, format!("/lab/vms/{vmid}/ssh"))
        .with_retry(pve::RetryRule::NeverSentOnly);
    match client.execute(&request).await {
        Ok(data) => parse_lab_answer(&data),
        Err(_) => LabAnswer::NotALab,
    }
}

/// Reads the `data` of the lab's answer (the client has taken it out of the envelope; a
/// missing `data` reads as `null`, which only a lab answers with success here: PVE
/// answers an error status for a path outside its API).
pub fn parse_lab_answer(data: &serde_json::Value) -> LabAnswer {
    match data {
        serde_json::Value::Null => LabAnswer::NoSsh,
        data => {
            let host = data
                .get("host")
                .and_then(|h| h.as_str()?.parse::<IpAddr>().ok());
            let port = data
                .get("port")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u16::try_from(p).ok());
            match (host, port) {
                (Some(host), Some(port)) => LabAnswer::Forward { host, port },
                _ => LabAnswer::NotALab,
            }
        }
    }
}

/// One attempt: connect and read the banner's first line.
async fn banner(target: SocketAddr) -> Result<String, String> {
    let connect = tokio::net::TcpStream::connect(target);
    let mut stream = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|error| error.to_string())?;
    let mut buffer = Vec::with_capacity(256);
    let read = async {
        let mut chunk = [0_u8; 256];
        while !buffer.contains(&b'\n') && buffer.len() < 1024 {
            let count = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if count == 0 {
                return Err("connection closed before a banner".to_owned());
            }
            buffer.extend_from_slice(&chunk[..count]);
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| "no banner within 5 s".to_owned())??;
    let line = String::from_utf8_lossy(&buffer);
    let line = line.lines().next().unwrap_or_default().trim().to_owned();
    if line.starts_with("SSH-2.0-") || line.starts_with("SSH-1.99-") {
        Ok(line)
    } else {
        Err(format!("not an SSH banner: {line:?}"))
    }
}

/// Waits until `target` sends an SSH banner; polls at 50 ms growing to 1 s.
///
/// # Errors
/// [`DeployError::UnsafeTarget`] if the safety rule forbids `target`;
/// [`DeployError::SshTimeout`] after `timeout`.
pub async fn wait_for_ssh(
    api: &Url,
    target: SocketAddr,
    timeout: Duration,
) -> DeployResult<String> {
    if !may_connect(api, target.ip()) {
        return Err(DeployError::UnsafeTarget {
            target: target.to_string(),
        });
    }
    let started = Instant::now();
    let mut interval = Duration::from_millis(50);
    loop {
        let last = match banner(target).await {
            Ok(line) => return Ok(line),
            Err(reason) => reason,
        };
        if started.elapsed() >= timeout {
            return Err(DeployError::SshTimeout {
                address: target.to_string(),
                waited: started.elapsed(),
                last: Some(last),
            });
        }
        tokio::time::sleep(interval.min(timeout.saturating_sub(started.elapsed()))).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
#[path = "reach_tests.rs"]
mod tests;
