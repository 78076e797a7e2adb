//! The SSH-forward extension endpoint, `GET /lab/vms/{vmid}/ssh`, with state-only guests.
//!
//! Why: sombrero's deploy asks it which 127.0.0.1 port reaches a VM's SSH; a state-only
//! guest has none (`data: null`), an unknown VM is a 404, and it needs a credential like
//! the API. The real-guest answer is checked by the qemu end-to-end test.

use serde_json::Value;

use crate::common::start_with;

async fn get(lab: &pve_lab::LabHandle, path: &str, authorization: Option<String>) -> (u16, Value) {
    let url = format!("{}{path}", lab.url().trim_end_matches("/api2/json"));
    let mut request = reqwest::Client::new().get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_state_only_guest_has_no_ssh_forward() {
    let lab = start_with(|options| options.node.with_template = true).await;
    let (status, body) = get(&lab, "/lab/vms/1001/ssh", Some(lab.authorization())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"data": null}));
    let readonly = format!("PVEAPIToken={}", lab.readonly_token());
    let (status, _) = get(&lab, "/lab/vms/1001/ssh", Some(readonly)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_vms_and_anonymous_callers_are_refused() {
    let lab = start_with(|options| options.node.with_template = true).await;
    let (status, body) = get(&lab, "/lab/vms/4242/ssh", Some(lab.authorization())).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&lab, "/lab/vms/1001/ssh", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&lab, "/lab/vms/abc/ssh", Some(lab.authorization())).await;
    assert_eq!(status, 400);
}
