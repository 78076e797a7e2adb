//! Authentication and permissions: tokens, tickets, CSRF, 401 delays, 403 for the
//! read-only token.

use std::time::{Duration, Instant};

use pve_lab::api::Method;
use serde_json::json;

use crate::common::{Api, Params, assert_schema, raw_exchange, start, start_with, status_line};

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_with_pve_reasons() {
    let lab = start().await;
    let reply = Api::anonymous(&lab).get("/version").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, json!({"data": null}));
    let raw = raw_exchange(
        lab.address(),
        b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&raw), "HTTP/1.1 401 No ticket");
    for authorization in [
        "PVEAPIToken=root@pam!lab=00000000-0000-4000-8000-000000000000".to_owned(),
        format!("PVEAPIToken={}", lab.token().replace("!lab=", "!readonly=")),
        "PVEAPIToken=root@pam!nobody=00000000-0000-4000-8000-000000000000".to_owned(),
        "PVEAPIToken=garbage".to_owned(),
    ] {
        let request = format!(
            "GET /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
        );
        let raw = raw_exchange(lab.address(), request.as_bytes()).await;
        assert_eq!(
            status_line(&raw),
            "HTTP/1.1 401 Authentication failed!",
            "{authorization}"
        );
    }
    let cookie =
        Api::anonymous(&lab).with_header("Cookie", "PVEAuthCookie=PVE:root@pam:00000000::forged");
    assert_eq!(cookie.get("/version").await.status, 401);
}

#[tokio::test]
async fn failed_authentication_is_delayed() {
    // A long delay so the "not delayed" bound holds on a busy two-core CI machine.
    let delay = Duration::from_secs(2);
    let lab = start_with(|options| options.auth_failure_delay = delay).await;
    let started = Instant::now();
    assert_eq!(Api::anonymous(&lab).get("/version").await.status, 401);
    assert!(started.elapsed() >= delay);
    let started = Instant::now();
    assert_eq!(Api::token(&lab).get("/version").await.status, 200);
    assert!(started.elapsed() < delay);
}

#[tokio::test]
async fn ticket_login_needs_csrf_on_writes() {
    let lab = start().await;
    let anonymous = Api::anonymous(&lab);
    let wrong = anonymous
        .call(
            "POST",
            "/access/ticket",
            &[("username", "root@pam"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let token_as_password = anonymous
        .call(
            "POST",
            "/access/ticket",
            &[("username", "root@pam!lab"), ("password", &lab.token())],
        )
        .await;
    assert_eq!(
        token_as_password.status, 401,
        "tokens are not accepted at /access/ticket"
    );
    let login = anonymous
        .call(
            "POST",
            "/access/ticket",
            &[("username", "root@pam"), ("password", lab.password())],
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_schema(Method::Post, "/access/ticket", &login);
    assert_eq!(login.data()["username"], "root@pam");
    let ticket = login.data()["ticket"].as_str().expect("ticket").to_owned();
    let csrf = login.data()["CSRFPreventionToken"]
        .as_str()
        .expect("csrf")
        .to_owned();
    assert!(ticket.starts_with("PVE:root@pam:"), "{ticket}");
    let cookie = format!("PVEAuthCookie={ticket}");
    let by_ticket = Api::anonymous(&lab).with_header("Cookie", &cookie);
    assert_eq!(by_ticket.get("/version").await.status, 200);
    let request = format!(
        "POST /api2/json/nodes/lloyd/qemu/1001/clone HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnewid=150"
    );
    let raw = raw_exchange(lab.address(), request.as_bytes()).await;
    assert_eq!(
        status_line(&raw),
        "HTTP/1.1 401 Permission denied - invalid csrf token"
    );
    let with_csrf = by_ticket.with_header("CSRFPreventionToken", &csrf);
    let reply = with_csrf
        .call("POST", "/nodes/lloyd/qemu/1001/clone", &[("newid", "abc")])
        .await;
    assert_eq!(
        reply.status, 400,
        "authenticated, then validated: {}",
        reply.body
    );
    let realm = anonymous
        .call(
            "POST",
            "/access/ticket",
            &[
                ("username", "root"),
                ("realm", "pam"),
                ("password", lab.password()),
            ],
        )
        .await;
    assert_eq!(realm.status, 200);
}

#[tokio::test]
async fn readonly_token_reads_but_gets_403_on_changes() {
    let lab = start().await;
    let readonly = Api::readonly(&lab);
    assert!(lab.readonly_token().starts_with("root@pam!readonly="));
    assert_eq!(readonly.get("/version").await.status, 200);
    assert_eq!(readonly.get("/nodes/lloyd/status").await.status, 200);
    let cases: &[(&str, &str, Params, &str)] = &[
        (
            "DELETE",
            "/nodes/lloyd/qemu/150",
            &[],
            "Permission check failed (/vms/150, VM.Allocate)",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[("newid", "150")],
            "Permission check failed (/vms/1001, VM.Clone)",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu",
            &[("vmid", "150")],
            "Permission check failed (/vms/150, VM.Allocate)",
        ),
        (
            "POST",
            "/nodes/lloyd/qemu/150/status/start",
            &[],
            "Permission check failed (/vms/150, VM.PowerMgmt)",
        ),
        (
            "PUT",
            "/nodes/lloyd/qemu/150/resize",
            &[("disk", "scsi0"), ("size", "+1G")],
            "Permission check failed (/vms/150, VM.Config.Disk)",
        ),
        (
            "GET",
            "/nodes/lloyd/qemu/150/agent/exec-status",
            &[("pid", "1")],
            "Permission check failed (/vms/150, VM.GuestAgent.Unrestricted)",
        ),
    ];
    for (method, path, params, message) in cases {
        let reply = readonly.call(method, path, params).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        assert_eq!(reply.message(), format!("{message}\n"));
    }
    let request = format!(
        "DELETE /api2/json/nodes/lloyd/qemu/150 HTTP/1.1\r\nHost: x\r\nAuthorization: PVEAPIToken={}\r\nConnection: close\r\n\r\n",
        lab.readonly_token()
    );
    let raw = raw_exchange(lab.address(), request.as_bytes()).await;
    assert_eq!(
        status_line(&raw),
        "HTTP/1.1 403 Permission check failed (/vms/150, VM.Allocate)"
    );
}
