//! Wire format: envelopes, reason phrases, separators, JSON bodies, 501, bad requests.

use pve_lab::api::Method;
use serde_json::json;

use crate::common::{
    Api, assert_schema, raw_exchange, raw_exchange_then_close, start, start_with, status_line,
};

#[tokio::test]
async fn version_answers_in_the_data_envelope() {
    let lab = start().await;
    assert!(lab.url().starts_with("http://127.0.0.1:"));
    assert!(lab.url().ends_with("/api2/json"));
    let reply = Api::token(&lab).get("/version").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.data()["version"].is_string(), "{}", reply.body);
    assert_schema(Method::Get, "/version", &reply);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_501_with_the_reason_phrase() {
    let lab = start().await;
    let api = Api::token(&lab);
    let cases = [
        (
            "GET",
            "/nodes/lloyd/bogus",
            "Method 'GET /nodes/lloyd/bogus' not implemented",
        ),
        (
            "DELETE",
            "/version",
            "Method 'DELETE /version' not implemented",
        ),
        (
            "PATCH",
            "/version",
            "Method 'PATCH /version' not implemented",
        ),
    ];
    for (method, path, message) in cases {
        let reply = api.raw_call(method, path, "", None).await;
        assert_eq!(reply.status, 501, "{method} {path}");
        assert_eq!(
            reply.body,
            json!({"data": null, "message": format!("{message}\n")})
        );
    }
    let raw = raw_exchange(
        lab.address(),
        b"GET /api2/json/nodes/lloyd/bogus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        status_line(&raw),
        "HTTP/1.1 501 Method 'GET /nodes/lloyd/bogus' not implemented"
    );
    let outside = raw_exchange(
        lab.address(),
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        status_line(&outside).starts_with("HTTP/1.1 501 "),
        "{outside}"
    );
}

#[tokio::test]
async fn errors_carry_message_and_reason_phrase_with_headers_like_pve() {
    let lab = start().await;
    let request = format!(
        "GET /api2/json/cluster/nextid?vmid=abc HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        lab.authorization()
    );
    let raw = raw_exchange(lab.address(), request.as_bytes()).await;
    assert_eq!(
        status_line(&raw),
        "HTTP/1.1 400 Parameter verification failed."
    );
    assert!(
        raw.contains("content-type: application/json;charset=UTF-8"),
        "{raw}"
    );
    let body = raw.split("\r\n\r\n").nth(1).expect("a body");
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(
        body,
        json!({"data": null, "message": "Parameter verification failed.\n",
               "errors": {"vmid": "type check ('integer') failed - got 'abc'"}})
    );
}

#[tokio::test]
async fn form_pairs_split_on_semicolons_and_query_overrides_body() {
    let lab = start().await;
    let api = Api::token(&lab);
    // `;` separates pairs: `full=true` is seen, and rejected as PVE does.
    let form = (
        "application/x-www-form-urlencoded",
        b"newid=150;full=true".to_vec(),
    );
    let reply = api
        .raw_call("POST", "/nodes/lloyd/qemu/1001/clone", "", Some(form))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.error("full"),
        Some("type check ('boolean') failed - got 'true'")
    );
    assert_eq!(reply.error("newid"), None);
    // The query's valid value replaces the body's invalid one.
    let form = ("application/x-www-form-urlencoded", b"newid=abc".to_vec());
    let reply = api
        .raw_call(
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            "newid=150&full=1",
            Some(form),
        )
        .await;
    assert_ne!(reply.status, 400, "{}", reply.body);
}

#[tokio::test]
async fn repeated_keys_become_arrays() {
    let lab = start().await;
    let api = Api::token(&lab);
    let reply = api
        .raw_call("GET", "/cluster/nextid", "vmid=150&vmid=151", None)
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.error("vmid"),
        Some("type check ('integer') failed - got ARRAY")
    );
    // An array parameter takes repeated keys (validation passes; the node answers).
    let form = (
        "application/x-www-form-urlencoded",
        b"command=ls&command=-l".to_vec(),
    );
    let reply = api
        .raw_call("POST", "/nodes/lloyd/qemu/150/agent/exec", "", Some(form))
        .await;
    assert_ne!(reply.status, 400, "{}", reply.body);
}

#[tokio::test]
async fn json_bodies_are_accepted_and_malformed_ones_rejected() {
    let lab = start().await;
    let api = Api::token(&lab);
    let good = (
        "application/json",
        br#"{"newid": 150, "full": true}"#.to_vec(),
    );
    let reply = api
        .raw_call("POST", "/nodes/lloyd/qemu/1001/clone", "", Some(good))
        .await;
    assert_ne!(reply.status, 400, "{}", reply.body);
    let typed = ("application/json", br#"{"newid": "abc"}"#.to_vec());
    let reply = api
        .raw_call("POST", "/nodes/lloyd/qemu/1001/clone", "", Some(typed))
        .await;
    assert_eq!(
        reply.error("newid"),
        Some("type check ('integer') failed - got 'abc'")
    );
    for bad in [&b"{"[..], b"[1,2]", b"\xff\xfe"] {
        let body = ("application/json", bad.to_vec());
        let reply = api
            .raw_call("POST", "/nodes/lloyd/qemu/1001/clone", "", Some(body))
            .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            reply.message().starts_with("malformed JSON body"),
            "{}",
            reply.body
        );
    }
}

#[tokio::test]
async fn bad_requests_get_answers_and_never_kill_the_server() {
    let lab = start_with(|options| options.body_limit = 1024).await;
    let api = Api::token(&lab);
    let huge = ("application/x-www-form-urlencoded", vec![b'a'; 4096]);
    let reply = api
        .raw_call("POST", "/nodes/lloyd/qemu/1001/clone", "", Some(huge))
        .await;
    assert_eq!(reply.status, 413);
    let reply = api
        .raw_call("GET", "/cluster/nextid", "vmid=%zz%&x%=%%", None)
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply
            .error("vmid")
            .is_some_and(|e| e.contains("type check")),
        "{}",
        reply.body
    );
    let reply = api
        .raw_call("GET", "/nodes/lloyd/qemu/%ZZ/config", "", None)
        .await;
    assert_eq!(reply.status, 501);
    for garbage in [
        &b"\x00\x01\x02 nonsense\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /api2/json/version HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let answer = raw_exchange(lab.address(), garbage).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{answer:?}"
        );
    }
    assert_eq!(
        api.get("/version").await.status,
        200,
        "the lab still answers"
    );
}

#[tokio::test]
async fn random_garbage_never_kills_the_server() {
    let lab = start().await;
    // A tiny deterministic generator: no dependency, same bytes on every run.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let prefixes: [&[u8]; 4] = [
        b"GET /api2/json/",
        b"POST /api2/json/nodes/lloyd/qemu HTTP/1.1\r\nContent-Length: 4\r\n\r\n",
        b"PUT /lab/faults HTTP/1.1\r\n",
        b"",
    ];
    for round in 0..40_u64 {
        let length = usize::try_from(next() % 200).expect("small");
        let mut request = prefixes[usize::try_from(round % 4).expect("small")].to_vec();
        request.extend((0..length).map(|_| u8::try_from(next() % 256).expect("a byte")));
        request.extend_from_slice(b"\r\n\r\n");
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            raw_exchange_then_close(lab.address(), &request),
        )
        .await
        .expect("the lab never hangs a connection");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 "),
            "{answer:?}"
        );
    }
    assert_eq!(Api::token(&lab).get("/version").await.status, 200);
}
