//! A deploy whose lab forwards SSH: the host key is pinned as `[127.0.0.1]:PORT`, SSH is
//! checked on that port (a banner), and the outputs and inventory name 127.0.0.1 and the
//! port, never the VM's private address.
//!
//! The lab's state-only guests have no SSH, so a small front puts a forward in: it passes
//! every connection through to the lab, except one asking `GET /lab/vms/152/ssh`, which it
//! answers with the port of a local listener that sends an SSH banner. It forwards one
//! request per connection, so every request passes its checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::deploy::{desired, lab, newest};
use pve_lab::LabHandle;
use sombrero_core::deploy::{self, DeployEvent, DeployReport, SshRoute, Timeouts};

/// A local "sshd": sends a banner to every connection, and notes that one came.
async fn banner_listener(answered: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            answered.store(true, Ordering::SeqCst);
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.6 lab-forward\r\n")
                .await;
        }
    });
    port
}

/// A host key the guest had before boot and loses before sshd starts (a template that kept
/// its keys): the front answers agent file-reads with it until SSH has answered once.
struct StaleKey {
    line: String,
    ssh_answered: Arc<AtomicBool>,
}

/// The front: answers the SSH question itself (and, with `stale`, early host-key reads),
/// pipes everything else to `upstream`.
async fn front(
    upstream: std::net::SocketAddr,
    ssh_port: u16,
    stale: Option<StaleKey>,
) -> std::net::SocketAddr {
    let stale = Arc::new(stale);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let stale = stale.clone();
            tokio::spawn(async move {
                let mut first = vec![0_u8; 8192];
                let count = client.read(&mut first).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&first[..count]).into_owned();
                if head.starts_with("GET /lab/vms/152/ssh ") {
                    let body = format!(r#"{{"data":{{"host":"127.0.0.1","port":{ssh_port}}}}}"#);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(response.as_bytes()).await;
                    return;
                }
                if let Some(stale) = stale.as_ref()
                    && head.contains("/agent/file-read?")
                    && !stale.ssh_answered.load(Ordering::SeqCst)
                {
                    let body = serde_json::json!({"data": {"content": stale.line}}).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(response.as_bytes()).await;
                    return;
                }
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                // One request per connection (the server closes after answering), so the
                // client's next request comes through this front's checks again.
                let request = head.find("\r\n").map_or_else(Vec::new, |end| {
                    let mut bytes = first[..end].to_vec();
                    bytes.extend_from_slice(b"\r\nConnection: close");
                    bytes.extend_from_slice(&first[end..count]);
                    bytes
                });
                if server.write_all(&request).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    address
}

/// Plans and deploys the staging environment with every API request going through `front`.
async fn deploy_staging_through(
    lab: &LabHandle,
    front: std::net::SocketAddr,
    dir: &std::path::Path,
) -> DeployReport {
    let url = format!("http://{front}/api2/json");
    let client = pve::Client::builder(&url)
        .token(lab.token().parse().unwrap())
        .build()
        .unwrap();
    let desired = desired("staging", dir);
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    let events = |_: &DeployEvent| {};
    deploy::apply(&client, &desired, plan, Timeouts::default(), &events)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_forwarded_vm_is_reached_and_pinned_on_the_loopback_port() {
    let lab = lab().await;
    let ssh_port = banner_listener(Arc::new(AtomicBool::new(false))).await;
    let front = front(lab.address(), ssh_port, None).await;
    let direct = super::deploy::client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let report = deploy_staging_through(&lab, front, dir.path()).await;
    assert_eq!(
        report.ssh,
        SshRoute::Forward {
            host: "127.0.0.1".parse().unwrap(),
            port: ssh_port
        }
    );
    assert!(
        report
            .ssh_banner
            .as_deref()
            .is_some_and(|banner| banner.contains("lab-forward"))
    );
    assert_eq!(report.outputs.vm_ip, "192.168.10.252");
    assert_eq!(
        (report.outputs.ssh_host.as_str(), report.outputs.ssh_port),
        ("127.0.0.1", ssh_port)
    );
    let known = std::fs::read_to_string(&report.outputs.known_hosts_file).unwrap();
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{ssh_port} ssh-ed25519 ")),
        "{known}"
    );
    assert!(!known.contains("192.168.10.252"), "{known}");
    let host: &Value = &report.outputs.ansible_inventory["all"]["hosts"]["jump-man"];
    assert_eq!(host["ansible_host"], "127.0.0.1");
    assert_eq!(host["ansible_port"], ssh_port);
    let yaml = std::fs::read_to_string(&report.outputs.inventory_file).unwrap();
    assert!(
        yaml.contains(&format!("\"ansible_port\": {ssh_port}")),
        "{yaml}"
    );
    // The VM is the lab's; the direct client sees the same one.
    assert!(direct.vm_config_opt("lloyd", 152).await.unwrap().is_some());
}

#[tokio::test]
async fn a_host_key_replaced_before_sshd_answers_is_not_pinned() {
    let lab = lab().await;
    let ssh_answered = Arc::new(AtomicBool::new(false));
    let ssh_port = banner_listener(ssh_answered.clone()).await;
    let stale = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVBfCdaUPOLQvYvxFEQ0eXf6WZv8xhMTzzEHQGE7xG2 root@template\n";
    let front = front(
        lab.address(),
        ssh_port,
        Some(StaleKey {
            line: stale.to_owned(),
            ssh_answered,
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let report = deploy_staging_through(&lab, front, dir.path()).await;
    // The key the VM has now (read past the front), not the one it had before sshd ran.
    let direct = super::deploy::client(&lab, &lab.token());
    let current = direct
        .agent_file_read("lloyd", 152, "/etc/ssh/ssh_host_ed25519_key.pub")
        .await
        .unwrap()
        .content;
    let current: Vec<&str> = current.split_whitespace().take(2).collect();
    let known = std::fs::read_to_string(&report.outputs.known_hosts_file).unwrap();
    assert_eq!(
        known.trim_end(),
        format!("[127.0.0.1]:{ssh_port} {} {}", current[0], current[1])
    );
    assert!(
        !known.contains("AAAAC3NzaC1lZDI1NTE5AAAAIHVBfCdaUPOLQvYvxFEQ"),
        "{known}"
    );
}
