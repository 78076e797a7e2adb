//! Starting and stopping: loopback only, port 0, clean shutdown.

use std::net::SocketAddr;

use pve_lab::{Lab, LabError, LabOptions};

use crate::common::{Api, start};

#[tokio::test]
async fn refuses_non_loopback_addresses() {
    for address in ["0.0.0.0:0", "192.168.10.1:8006", "[::]:0"] {
        let mut options = LabOptions::for_tests();
        options.listen = address.parse::<SocketAddr>().expect("an address");
        let error = Lab::start(options).await.expect_err("refused");
        assert!(matches!(error, LabError::NotLoopback(_)), "{error}");
        assert!(
            error.to_string().contains("only listens on loopback"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn port_zero_and_clean_shutdown() {
    let lab = start().await;
    assert_ne!(lab.address().port(), 0);
    assert!(lab.address().ip().is_loopback());
    assert_eq!(Api::token(&lab).get("/version").await.status, 200);
    let address = lab.address();
    lab.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn secrets_differ_per_lab_and_debug_redacts_them() {
    let first = start().await;
    let second = start().await;
    assert_ne!(first.token(), second.token());
    assert_ne!(first.password(), second.password());
    assert!(first.token().starts_with("root@pam!lab="));
    let debug = format!("{first:?}");
    assert!(!debug.contains(first.password()), "{debug}");
    assert!(
        !debug.contains(first.token().split('=').nth(1).expect("secret")),
        "{debug}"
    );
}
