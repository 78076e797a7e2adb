//! Transport tests against a scripted HTTP server on 127.0.0.1 (no lab needed): envelope
//! and error decoding, reason phrases, retry rules, headers and bodies on the wire.

use std::sync::atomic::Ordering;

use tokio::net::TcpListener;

use super::{Client, should_retry};
use crate::builder::normalize_base;
use crate::error::{Error, RetrySafety};
use crate::request::{Method, Params, PathScope, Request, RetryRule};
use crate::retry::RetryPolicy;
use crate::test_server::{Reply, http, serve};

fn client(base: &str) -> Client {
    Client::builder(base)
        .token("root@pam!lab=s3cret-value".parse().unwrap())
        .retry(RetryPolicy {
            attempts: 4,
            ..RetryPolicy::none()
        })
        .build()
        .unwrap()
}

#[test]
fn base_urls_are_normalized() {
    assert_eq!(
        normalize_base("https://pve:8006").unwrap(),
        "https://pve:8006/api2/json"
    );
    assert_eq!(
        normalize_base("https://pve:8006/api2/json/").unwrap(),
        "https://pve:8006/api2/json"
    );
    assert!(normalize_base("pve:8006").is_err());
    assert!(normalize_base("ftp://pve").is_err());
}

#[tokio::test]
async fn decodes_data_and_sends_token_and_form_body() {
    let script = serve(vec![http(
        "200 OK",
        r#"{"data":"UPID:pve1:00000001:00000002:00000003:qmstart:150:root@pam!lab:"}"#,
    )])
    .await;
    let mut params = Params::new();
    params.set_bool("skiplock", false).set("timeout", "30");
    let request =
        Request::new(Method::Post, "/nodes/pve1/qemu/150/status/start".into()).with_params(params);
    let data = client(&script.base).execute(&request).await.unwrap();
    assert!(data.as_str().unwrap().starts_with("UPID:pve1:"));
    let sent = script.requests.lock().await[0].clone();
    assert!(
        sent.starts_with("POST /api2/json/nodes/pve1/qemu/150/status/start HTTP/1.1"),
        "{sent}"
    );
    assert!(
        sent.contains("authorization: PVEAPIToken=root@pam!lab=s3cret-value"),
        "{sent}"
    );
    assert!(sent.contains("content-type: application/x-www-form-urlencoded"));
    assert!(sent.ends_with("skiplock=0&timeout=30"), "{sent}");
}

#[tokio::test]
async fn error_answers_carry_reason_message_and_errors() {
    let script = serve(vec![
        http(
            "500 unable to create VM 150: config file already exists",
            r#"{"data":null,"message":"unable to create VM 150: config file already exists\n"}"#,
        ),
        http(
            "400 Parameter verification failed.",
            r#"{"data":null,"errors":{"vmid":"VM 150 already exists\n"}}"#,
        ),
    ])
    .await;
    let client = client(&script.base);
    let clone = Request::new(Method::Post, "/nodes/pve1/qemu/9000/clone".into())
        .with_retry(RetryRule::TaskDispatch);
    let error = client.execute(&clone).await.unwrap_err();
    let api = error.api().unwrap();
    assert_eq!(api.status, 500);
    assert_eq!(
        api.reason,
        "unable to create VM 150: config file already exists"
    );
    assert!(error.is_already_exists());
    assert_eq!(error.retry_safety(), RetrySafety::ServerAnswered);
    let nextid = Request::new(Method::Get, "/cluster/nextid".into());
    let error = client.execute(&nextid).await.unwrap_err();
    assert_eq!(error.api().unwrap().errors["vmid"], "VM 150 already exists");
    // Neither answer is transient: one connection each, no retries.
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
    assert!(!format!("{error:?}").contains("s3cret"));
}

#[tokio::test]
async fn reads_are_retried_after_resets_and_5xx() {
    let script = serve(vec![
        Reply::Hangup,
        http("503 Service Unavailable", r#"{"data":null}"#),
        http(
            "200 OK",
            r#"{"data":{"version":"9.1.1","release":"9.1","repoid":"abc"}}"#,
        ),
    ])
    .await;
    let client = client(&script.base);
    let data = client
        .execute(&Request::new(Method::Get, "/version".into()))
        .await
        .unwrap();
    assert_eq!(data["version"], "9.1.1");
    assert_eq!(script.connections.load(Ordering::SeqCst), 3);
    let metrics = client.metrics();
    assert_eq!((metrics.get, metrics.retries, metrics.failures), (3, 2, 2));
}

#[tokio::test]
async fn a_task_dispatch_is_not_repeated_after_a_lost_answer() {
    let script = serve(vec![Reply::Hangup, http("200 OK", r#"{"data":null}"#)]).await;
    let request = Request::new(Method::Post, "/nodes/pve1/qemu/9000/clone".into())
        .with_retry(RetryRule::TaskDispatch);
    let sent = client(&script.base).send_tracked(&request).await;
    let error = sent.result.unwrap_err();
    assert_eq!(
        error.retry_safety(),
        RetrySafety::MayHaveReachedServer,
        "{error}"
    );
    assert_eq!(script.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_task_dispatch_is_repeated_after_got_timeout() {
    let script = serve(vec![
        http(
            "500 can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout",
            r#"{"data":null}"#,
        ),
        http(
            "200 OK",
            r#"{"data":"UPID:pve1:00000001:00000002:00000003:qmclone:9000:root@pam:"}"#,
        ),
    ])
    .await;
    let request = Request::new(Method::Post, "/nodes/pve1/qemu/9000/clone".into())
        .with_retry(RetryRule::TaskDispatch);
    let sent = client(&script.base).send_tracked(&request).await;
    assert!(sent.result.is_ok());
    assert!(sent.earlier_attempt_may_have_run);
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_is_never_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let request = Request::new(Method::Post, "/nodes/pve1/qemu".into());
    let error = client(&base).execute(&request).await.unwrap_err();
    assert_eq!(error.retry_safety(), RetrySafety::NeverSent, "{error}");
    assert!(matches!(error, Error::NotSent { .. }));
}

#[test]
fn retry_rules_match_the_error_kind() {
    let api = |status: u16, reason: &str| {
        Error::Api(Box::new(crate::error::ApiError {
            method: Method::Post,
            path: "/x".into(),
            status,
            reason: reason.into(),
            message: None,
            errors: std::collections::BTreeMap::new(),
        }))
    };
    assert!(should_retry(
        RetryRule::TaskDispatch,
        &api(500, "got no worker upid - start worker failed")
    ));
    assert!(!should_retry(
        RetryRule::TaskDispatch,
        &api(504, "Gateway Timeout")
    ));
    assert!(should_retry(
        RetryRule::Idempotent,
        &api(504, "Gateway Timeout")
    ));
    assert!(!should_retry(
        RetryRule::NeverSentOnly,
        &api(503, "Service Unavailable")
    ));
    assert!(!should_retry(
        RetryRule::Idempotent,
        &api(500, "VM 150 is not running")
    ));
    assert!(!should_retry(
        RetryRule::Idempotent,
        &api(403, "Permission check failed (/vms/150, VM.Audit)")
    ));
}

#[tokio::test]
async fn the_request_hook_sees_every_attempt_with_its_status() {
    let script = serve(vec![
        http("502 Bad Gateway", r#"{"data":null}"#),
        http("200 OK", r#"{"data":[]}"#),
    ])
    .await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let client = Client::builder(&script.base)
        .retry(RetryPolicy::default().without_delays())
        .on_request(std::sync::Arc::new(
            move |event: &crate::metrics::RequestEvent| {
                sink.lock().unwrap().push((event.attempt, event.status));
            },
        ))
        .build()
        .unwrap();
    client
        .execute(&Request::new(Method::Get, "/nodes".into()))
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![(1, Some(502)), (2, Some(200))]);
}

/// What a proxy in front of PVE, or a broken PVE, may send instead of PVE's JSON.
fn raw(text: &str) -> Reply {
    Reply::Respond(text.to_owned())
}

#[tokio::test]
async fn odd_answers_are_errors_never_panics_and_transient_ones_are_retried() {
    const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body>\r\n</html>\r\n";
    let html = Reply::Respond(format!(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{NGINX_502}",
        NGINX_502.len()
    ));
    let script = serve(vec![
        html,
        raw("HTTP/1.1 596 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        http("200 OK", r#"{"data":{"version":"9.1.1"}}"#),
    ])
    .await;
    let data = client(&script.base)
        .execute(&Request::new(Method::Get, "/version".into()))
        .await
        .unwrap();
    assert_eq!(data["version"], "9.1.1");
    assert_eq!(script.connections.load(Ordering::SeqCst), 3);

    // Each of these is answered once (no retry for a write) and must become an error.
    let cases: [(Reply, &str); 5] = [
        (
            raw("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            "not JSON",
        ),
        (
            http("200 OK", "<html><body>Welcome</body></html>"),
            "not JSON",
        ),
        (
            raw("HTTP/1.1 596 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            "596",
        ),
        (http("500 Internal Server Error", NGINX_502), "500"),
        (
            raw("SSH-2.0-OpenSSH_9.2\r\n"),
            "/nodes/pve1/qemu/150/status/start",
        ),
    ];
    for (reply, expected) in cases {
        let script = serve(vec![reply]).await;
        let request = Request::new(Method::Post, "/nodes/pve1/qemu/150/status/start".into())
            .with_retry(RetryRule::NeverSentOnly);
        let error = client(&script.base).execute(&request).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains(expected), "{expected}: {text}");
        assert!(!text.contains("<html"), "no HTML in the message: {text}");
        assert_eq!(script.connections.load(Ordering::SeqCst), 1, "{text}");
    }
}

#[tokio::test]
async fn a_ticket_older_than_the_renewal_age_is_renewed_before_the_next_request() {
    let login = |ticket: &str| {
        http(
            "200 OK",
            &format!(
                r#"{{"data":{{"ticket":"{ticket}","CSRFPreventionToken":"csrf-{ticket}","username":"root@pam"}}}}"#
            ),
        )
    };
    let version = http("200 OK", r#"{"data":{"version":"9.1.1"}}"#);
    let script = serve(vec![
        login("PVE:first"),
        version.clone(),
        login("PVE:second"),
        version,
    ])
    .await;
    let client = Client::builder(&script.base)
        .password("root@pam", crate::secret::Secret::new("pw"))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let request = Request::new(Method::Get, "/version".into());
    client.execute(&request).await.unwrap();
    {
        let mut slot = client.inner.auth.ticket.lock().await;
        let ticket = slot.as_mut().unwrap();
        // As if TICKET_RENEW_AFTER had passed since the login.
        ticket.renew_at = std::time::Instant::now();
    }
    client.execute(&request).await.unwrap();
    let requests = script.requests.lock().await;
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert!(requests[0].starts_with("POST /api2/json/access/ticket"));
    assert!(requests[1].contains("PVEAuthCookie=PVE:first"));
    assert!(requests[2].starts_with("POST /api2/json/access/ticket"));
    assert!(
        requests[3].contains("PVEAuthCookie=PVE:second"),
        "{}",
        requests[3]
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_announced_or_streamed() {
    let data = format!(r#"{{"data":"{}"}}"#, "x".repeat(100));
    let limited = |base: &str, bytes: usize| {
        Client::builder(base)
            .token("root@pam!lab=s3cret-value".parse().unwrap())
            .retry(RetryPolicy {
                attempts: 4,
                ..RetryPolicy::none()
            })
            .max_response_bytes(bytes)
            .build()
            .unwrap()
    };
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        data.len() / 2,
        &data[..data.len() / 2],
        data.len() - data.len() / 2,
        &data[data.len() / 2..],
    );
    for reply in [http("200 OK", &data), Reply::Respond(chunked)] {
        let script = serve(vec![reply]).await;
        let request = Request::new(Method::Get, "/version".into());
        let error = limited(&script.base, data.len() - 1)
            .execute(&request)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Decode { .. }), "{error:?}");
        assert!(error.to_string().contains("longer than the"), "{error}");
        // A too-long answer is not a transient failure: it is not asked again.
        assert_eq!(script.connections.load(Ordering::SeqCst), 1);
        let fits = limited(&script.base, data.len())
            .execute(&request)
            .await
            .unwrap();
        assert_eq!(fits.as_str().map(str::len), Some(100));
    }
}

#[tokio::test]
async fn a_server_root_request_leaves_the_api_prefix_and_keeps_the_credentials() {
    let login = http(
        "200 OK",
        r#"{"data":{"ticket":"PVE:root@pam:ticket-value","CSRFPreventionToken":"csrf-value","username":"root@pam"}}"#,
    );
    let forward = http("200 OK", r#"{"data":{"host":"127.0.0.1","port":40022}}"#);
    let script = serve(vec![login, forward.clone()]).await;
    let request = Request::server_root(Method::Get, "/lab/vms/150/ssh".into());
    assert_eq!(request.scope, PathScope::ServerRoot);
    let ticketed = Client::builder(&format!("{}/api2/json", script.base))
        .password("root@pam", crate::secret::Secret::new("pw"))
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let data = ticketed.execute(&request).await.unwrap();
    assert_eq!(data["port"], 40022);
    assert_eq!(ticketed.metrics().get, 1, "counted like any request");
    let requests = script.requests.lock().await.clone();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].starts_with("POST /api2/json/access/ticket HTTP/1.1"));
    assert!(
        requests[1].starts_with("GET /lab/vms/150/ssh HTTP/1.1"),
        "{}",
        requests[1]
    );
    assert!(
        requests[1].contains("cookie: PVEAuthCookie=PVE:root@pam:ticket-value"),
        "{}",
        requests[1]
    );

    let script = serve(vec![Reply::Hangup, forward]).await;
    let data = client(&script.base).execute(&request).await.unwrap();
    assert_eq!(data["host"], "127.0.0.1");
    // Retried like any idempotent read, with the token on every attempt.
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
    let sent = script.requests.lock().await[1].clone();
    assert!(sent.starts_with("GET /lab/vms/150/ssh HTTP/1.1"), "{sent}");
    assert!(
        sent.contains("authorization: PVEAPIToken=root@pam!lab=s3cret-value"),
        "{sent}"
    );
}
