//! Every parameter of every endpoint the lab serves, with hostile values: the lab answers
//! each one (4xx, or 200/500 where the value happens to be acceptable), never drops the
//! connection (which is what a panicking handler looks like to a client) and never hangs.
//!
//! Why: issue 3 item 11, "bad requests get PVE's answers, never a panic or a hung
//! connection". The garbage tests in `wire.rs` break the HTTP framing; this one reaches
//! the validators, the property-string parsers and the handlers behind them.

use pve_lab::api::Method;
use pve_lab::schema::{Schema, method_name};
use serde_json::Value;

use crate::common::{Api, Reply, start_with};

/// Values that have broken parsers elsewhere: empty, signs, overflow, separators of
/// property strings and forms, control characters, non-ASCII, a long string.
fn hostile_values() -> Vec<String> {
    vec![
        String::new(),
        "-1".into(),
        "99999999999999999999999".into(),
        "1e400".into(),
        "=,=;,".into(),
        "a=b,c=d,e".into(),
        "%00%ff".into(),
        "\u{0}\u{7f}".into(),
        "ü€😀".into(),
        "+99999999999T".into(),
        "x".repeat(20_000),
    ]
}

/// A concrete path for a template: the seeded node and storage, VM `vmid`.
fn concrete(template: &str, vmid: u32) -> String {
    template
        .replace("{node}", "lloyd")
        .replace("{vmid}", &vmid.to_string())
        .replace("{storage}", "local")
        .replace(
            "{upid}",
            "UPID:lloyd:00000001:00000002:00000003:qmstart:1001:root@pam:",
        )
        .replace(
            "{volume}",
            "local:import%2Fdebian-12-genericcloud-amd64.qcow2",
        )
}

#[tokio::test]
async fn hostile_values_for_every_parameter_are_answered() {
    let lab = start_with(|options| {
        options.node.with_template = true;
        options.node.agent_boot_delay = std::time::Duration::ZERO;
    })
    .await;
    let api = Api::token(&lab);
    // The template, and a running full clone (other handlers: hotplug, agent, pending).
    let clone = api
        .call(
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[("newid", "150"), ("name", "fuzz"), ("full", "1")],
        )
        .await;
    assert_eq!(clone.status, 200, "{}", clone.body);
    wait_until_unlocked(&api, 150).await;
    let start = api
        .call("POST", "/nodes/lloyd/qemu/150/status/start", &[])
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let mut answered = 0_usize;
    for vmid in [1001, 150] {
        answered += fuzz_forms(&api, vmid).await;
        fuzz_json(&api, vmid).await;
    }
    assert!(answered > 2000, "only {answered} requests were made");
    // Still serving afterwards.
    let version = api.get("/version").await;
    assert_eq!(version.status, 200);
    assert!(matches!(version.data(), Value::Object(_)));
}

async fn wait_until_unlocked(api: &Api, vmid: u32) {
    for _ in 0..500 {
        let config = api.get(&format!("/nodes/lloyd/qemu/{vmid}/config")).await;
        if config.status == 200 && config.data().get("lock").is_none() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("VM {vmid} stayed locked");
}

/// Form values for every parameter; returns the number of requests.
async fn fuzz_forms(api: &Api, vmid: u32) -> usize {
    let values = hostile_values();
    let mut answered = 0_usize;
    for endpoint in Schema::get().endpoints() {
        let path = concrete(&endpoint.template, vmid);
        let verb = method_name(endpoint.method);
        let properties = endpoint.parameters["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in properties.keys() {
            if endpoint.template.contains(&format!("{{{name}}}")) {
                continue;
            }
            let key = name.replace("[n]", "0");
            for value in &values {
                let reply = api
                    .call(verb, &path, &[(key.as_str(), value.as_str())])
                    .await;
                assert_answered(&format!("{verb} {path} {key}={value:.40?}"), &reply);
                answered += 1;
            }
        }
    }
    answered
}

/// JSON values of every type for every parameter of every POST/PUT endpoint.
async fn fuzz_json(api: &Api, vmid: u32) {
    // JSON bodies carry types a form cannot: objects, nested arrays, null, floats.
    let json_values = [
        serde_json::json!({"a": {"b": 1}}),
        serde_json::json!([[1], {"x": null}]),
        Value::Null,
        serde_json::json!(true),
        serde_json::json!(1.5),
        serde_json::json!(-9_223_372_036_854_775_808_i64),
        serde_json::json!(u64::MAX),
    ];
    for endpoint in Schema::get().endpoints() {
        if !matches!(endpoint.method, Method::Post | Method::Put) {
            continue;
        }
        let path = concrete(&endpoint.template, vmid);
        let verb = method_name(endpoint.method);
        let properties = endpoint.parameters["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in properties.keys() {
            let key = name.replace("[n]", "0");
            for value in &json_values {
                let body = serde_json::json!({ key.clone(): value }).to_string();
                let reply = api
                    .raw_call(
                        verb,
                        &path,
                        "",
                        Some(("application/json", body.into_bytes())),
                    )
                    .await;
                assert_answered(&format!("{verb} {path} {key}={value}"), &reply);
            }
        }
    }
}

/// An answer PVE could give: a status it uses, and for a 500 a handler's message rather
/// than the lab's "panicked" (a handler that panics is answered 500 by the server).
fn assert_answered(label: &str, reply: &Reply) {
    assert!(
        matches!(reply.status, 200 | 400 | 403 | 404 | 413 | 500 | 501),
        "{label}: {} {}",
        reply.status,
        reply.body
    );
    let text = reply.body.to_string();
    assert!(
        !text.contains("panicked") && !text.contains("unwrap"),
        "{label}: {text}"
    );
}
