//! Stage 2's clear errors against the in-process lab: template missing, address in use,
//! storage or bridge missing, unknown node, a token lacking a privilege, a TLS fingerprint
//! that does not match. (A VM id taken by a foreign VM is in `deploy.rs`; "node offline"
//! is a unit test in the core: the lab's single node is always online.)

use pve_lab::{Lab, LabOptions};
use sombrero_core::deploy::{self, DeployError};

use super::deploy::{client, deploy_env, desired, lab, newest};

#[tokio::test]
async fn a_missing_template_names_the_node() {
    let lab = Lab::start(LabOptions::for_tests()).await.unwrap();
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    let error = deploy::plan(&client, &desired, &newest())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeployError::TemplateMissing { id: Some(1001), node, .. } if node == "lloyd"),
        "{error:?}"
    );
    let explicit = deploy::TemplateRequest::Explicit {
        id: 4242,
        chosen_by: "flag --template".into(),
    };
    let error = deploy::plan(&client, &desired, &explicit)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("4242") && error.to_string().contains("lloyd"),
        "{error}"
    );
    assert_eq!(client.metrics().writes(), 0, "plan never writes");
}

#[tokio::test]
async fn an_address_used_by_another_managed_vm_is_refused() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    deploy_env(&client, &desired("production", dir.path()))
        .await
        .unwrap();
    let mut staging = desired("staging", dir.path());
    staging.ip = "192.168.10.250/24".parse().unwrap();
    let error = deploy::plan(&client, &staging, &newest())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeployError::AddressInUse { vmid: 150, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn missing_storage_bridge_and_node_are_named() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let mut storage = desired("staging", dir.path());
    storage.disk_storage = "ceph-pool".into();
    let error = deploy::plan(&client, &storage, &newest())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeployError::StorageMissing { storage, available, .. } if storage == "ceph-pool" && available.contains(&"local-lvm".to_owned())),
        "{error:?}"
    );
    let mut iso_only = desired("staging", dir.path());
    iso_only.disk_storage = "local".into();
    let error = deploy::plan(&client, &iso_only, &newest())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("cannot hold disk images"),
        "{error}"
    );
    let mut bridge = desired("staging", dir.path());
    bridge.bridge = "vmbr9".into();
    let error = deploy::plan(&client, &bridge, &newest()).await.unwrap_err();
    assert!(
        matches!(&error, DeployError::BridgeMissing { bridge, available, .. } if bridge == "vmbr9" && available == &["vmbr0".to_owned()]),
        "{error:?}"
    );
    let mut node = desired("staging", dir.path());
    node.node = "ghost".into();
    let error = deploy::plan(&client, &node, &newest()).await.unwrap_err();
    assert!(
        matches!(&error, DeployError::NodeUnknown { known, .. } if known == &["lloyd".to_owned()]),
        "{error:?}"
    );
    assert_eq!(client.metrics().writes(), 0);
}

#[tokio::test]
async fn a_read_only_token_plans_but_cannot_deploy_and_the_privilege_is_named() {
    let lab = lab().await;
    let client = client(&lab, &lab.readonly_token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(plan.action, deploy::Action::Create);
    let error = deploy_env(&client, &desired).await.unwrap_err();
    let DeployError::PermissionDenied { privilege, .. } = &error else {
        panic!("expected a permission error, got {error:?}");
    };
    assert!(
        privilege.as_deref().is_some_and(|p| p.starts_with("VM.")),
        "{error}"
    );
    assert!(client.vm_config_opt("lloyd", 152).await.unwrap().is_none());
}

#[tokio::test]
async fn a_wrong_tls_fingerprint_is_a_tls_error() {
    let mut options = LabOptions::for_tests();
    options.tls = true;
    options.node.with_template = true;
    let lab = Lab::start(options).await.unwrap();
    let wrong = pve::Fingerprint::from_bytes([7; 32]);
    let client = pve::Client::builder(lab.url())
        .token(lab.token().parse().unwrap())
        .tls(pve::TlsMode::Fingerprint(wrong))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = deploy::plan(&client, &desired("staging", dir.path()), &newest())
        .await
        .unwrap_err();
    assert!(matches!(error, DeployError::Tls { .. }), "{error:?}");
}

/// A one-endpoint API server: answers every request with `body` (HTTP 200).
async fn scripted_api(body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = vec![0_u8; 4096];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    format!("http://{address}/api2/json")
}

#[tokio::test]
async fn an_offline_node_is_named() {
    // The lab's only node is always online; a cluster whose node is down answers this.
    let url = scripted_api(
        r#"{"data":[{"node":"lloyd","status":"offline"},{"node":"other","status":"online"}]}"#,
    )
    .await;
    let client = pve::Client::builder(&url)
        .token("root@pam!t=secret".parse().unwrap())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let error = deploy::plan(&client, &desired("staging", dir.path()), &newest())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DeployError::NodeOffline { node, status } if node == "lloyd" && status == "offline"),
        "{error:?}"
    );
}
