use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use url::Url;

use super::{LabAnswer, SshRoute, choose_route, may_connect, parse_lab_answer, wait_for_ssh};

fn url(text: &str) -> Url {
    text.parse().unwrap()
}

const VM: &str = "192.168.10.252";

#[test]
fn a_loopback_api_never_leads_to_a_private_address() {
    let vm: IpAddr = VM.parse().unwrap();
    for api in [
        "https://127.0.0.1:8006/api2/json",
        "http://127.5.6.7:1/api2/json",
        "https://[::1]:8006/api2/json",
        "https://localhost:8006/api2/json",
    ] {
        let api = url(api);
        assert!(!may_connect(&api, vm), "{api}");
        let route = choose_route(&api, &LabAnswer::NotALab, vm);
        assert!(
            matches!(&route, SshRoute::Skipped { reason } if reason.contains(VM)),
            "{route:?}"
        );
        // A "forward" to a non-loopback address is refused too.
        let bogus = LabAnswer::Forward { host: vm, port: 22 };
        assert!(matches!(
            choose_route(&api, &bogus, vm),
            SshRoute::Skipped { .. }
        ));
        let forward = LabAnswer::Forward {
            host: "127.0.0.1".parse().unwrap(),
            port: 2222,
        };
        assert_eq!(
            choose_route(&api, &forward, vm).target(),
            Some("127.0.0.1:2222".parse().unwrap())
        );
        assert!(matches!(
            choose_route(&api, &LabAnswer::NoSsh, vm),
            SshRoute::Skipped { .. }
        ));
    }
    // A cluster by address (no name: tests never resolve names through DNS).
    let cluster = url("https://10.20.30.40:8006/api2/json");
    assert_eq!(
        choose_route(&cluster, &LabAnswer::NotALab, vm).target(),
        Some(SocketAddr::new(vm, 22))
    );
}

#[test]
fn every_spelling_of_this_host_counts_as_a_loopback_api() {
    use super::api_is_loopback_with;
    let vm: IpAddr = VM.parse().unwrap();
    let no_dns = |name: &str, _: u16| -> Option<Vec<IpAddr>> { panic!("resolved {name}") };
    for api in [
        "http://0.0.0.0:8006/api2/json",
        "https://[::]:8006/api2/json",
        "https://[::ffff:127.0.0.1]:8006/api2/json",
        "https://[::ffff:0.0.0.0]:8006/api2/json",
        "https://LOCALHOST.:8006/api2/json",
        "https://lab.localhost:8006/api2/json",
    ] {
        let api = url(api);
        assert!(api_is_loopback_with(&api, no_dns), "{api}");
        assert!(!may_connect(&api, vm), "{api}");
        assert!(
            matches!(
                choose_route(&api, &LabAnswer::NotALab, vm),
                SshRoute::Skipped { .. }
            ),
            "{api}"
        );
    }
    // Names: what they resolve to decides; a name that does not resolve fails safe.
    let named = url("https://pve.lab.example:8006/api2/json");
    let to = |addresses: &'static [&'static str]| {
        move |name: &str, port: u16| {
            assert_eq!((name, port), ("pve.lab.example", 8006));
            Some(addresses.iter().map(|a| a.parse().unwrap()).collect())
        }
    };
    assert!(api_is_loopback_with(&named, to(&["127.0.1.1"])));
    assert!(api_is_loopback_with(&named, to(&["10.0.0.5", "::1"])));
    assert!(api_is_loopback_with(&named, |_, _| None));
    assert!(api_is_loopback_with(&named, to(&[])));
    assert!(!api_is_loopback_with(&named, to(&["10.0.0.5"])));
    assert!(!api_is_loopback_with(
        &url("https://10.0.0.5:8006/api2/json"),
        no_dns
    ));
}

#[test]
fn reads_the_labs_answers() {
    assert_eq!(parse_lab_answer(&json!(null)), LabAnswer::NoSsh);
    assert_eq!(
        parse_lab_answer(&json!({"host": "127.0.0.1", "port": 40022})),
        LabAnswer::Forward {
            host: "127.0.0.1".parse().unwrap(),
            port: 40022
        }
    );
    assert_eq!(parse_lab_answer(&json!({"errors": {}})), LabAnswer::NotALab);
    assert_eq!(parse_lab_answer(&json!({"port": 1})), LabAnswer::NotALab);
}

#[tokio::test]
async fn waits_for_a_banner_and_refuses_unsafe_targets() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
    });
    let api = url("http://127.0.0.1:8006/api2/json");
    let line = wait_for_ssh(&api, target, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(line, "SSH-2.0-OpenSSH_9.6");
    let private: SocketAddr = format!("{VM}:22").parse().unwrap();
    let refused = wait_for_ssh(&api, private, Duration::from_secs(5)).await;
    assert!(matches!(
        refused,
        Err(super::DeployError::UnsafeTarget { .. })
    ));
}

#[tokio::test]
async fn asks_the_lab_for_a_forward_with_the_same_authorization() {
    use tokio::io::AsyncReadExt;
    // The "guest": an SSH banner on a loopback port.
    let guest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let guest_port = guest.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = guest.accept().await {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        }
    });
    // The "lab": answers GET /lab/vms/152/ssh with that port, when authorized.
    let lab = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = url(&format!("http://{}/api2/json", lab.local_addr().unwrap()));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = lab.accept().await {
            let mut buffer = vec![0_u8; 4096];
            let count = stream.read(&mut buffer).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..count]).to_lowercase();
            let authorized = request.contains("authorization: pveapitoken=root@pam!lab=s3cret");
            let body = if request.starts_with("get /lab/vms/152/ssh ") && authorized {
                format!(r#"{{"data":{{"host":"127.0.0.1","port":{guest_port}}}}}"#)
            } else {
                r#"{"data":null,"errors":{"x":"no"}}"#.to_owned()
            };
            let status = if authorized {
                "200 OK"
            } else {
                "401 No ticket"
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    let client =
        |builder: pve::ClientBuilder| builder.retry(pve::RetryPolicy::none()).build().unwrap();
    let tokened =
        client(pve::Client::builder(api.as_str()).token("root@pam!lab=s3cret".parse().unwrap()));
    let answer = super::ask_lab(&tokened, 152).await;
    let vm: IpAddr = VM.parse().unwrap();
    let route = choose_route(&api, &answer, vm);
    let target = route.target().expect("a forward");
    assert_eq!(target, SocketAddr::from(([127, 0, 0, 1], guest_port)));
    let banner = wait_for_ssh(&api, target, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(banner.starts_with("SSH-2.0-"));
    // Without the token it is not a lab, and a loopback API then skips SSH.
    let anonymous = super::ask_lab(&client(pve::Client::builder(api.as_str())), 152).await;
    assert_eq!(anonymous, LabAnswer::NotALab);
    assert!(matches!(
        choose_route(&api, &anonymous, vm),
        SshRoute::Skipped { .. }
    ));
}
