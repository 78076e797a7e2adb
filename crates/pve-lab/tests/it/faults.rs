//! Fault injection: 5xx answers, reset connections, determinism, the control endpoint.

use pve_lab::FaultSpec;
use serde_json::Value;

use crate::common::{Api, start_with};

async fn statuses(spec: &str, count: usize) -> Vec<Option<u16>> {
    let spec: FaultSpec = spec.parse().expect("a spec");
    let lab = start_with(|options| options.faults = spec).await;
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for _ in 0..count {
        let response = client
            .get(format!("{}/version", lab.url()))
            .header("Authorization", lab.authorization())
            .send()
            .await;
        out.push(response.ok().map(|r| r.status().as_u16()));
    }
    out
}

#[tokio::test]
async fn http_faults_are_deterministic_with_the_seed() {
    let first = statuses("http5xx=0.3,reset=0.1,seed=42", 60).await;
    let second = statuses("http5xx=0.3,reset=0.1,seed=42", 60).await;
    assert_eq!(first, second);
    let resets = first.iter().filter(|status| status.is_none()).count();
    let errors = first
        .iter()
        .filter(|status| status.is_some_and(|s| s >= 500))
        .count();
    assert!(resets > 0 && errors > 0, "{first:?}");
    assert!(
        first
            .iter()
            .flatten()
            .all(|status| [200, 500, 503, 596].contains(status)),
        "{first:?}"
    );
    let other_seed = statuses("http5xx=0.3,reset=0.1,seed=43", 60).await;
    assert_ne!(first, other_seed);
}

#[tokio::test]
async fn certain_faults_always_happen() {
    let all_errors = statuses("http5xx=1", 5).await;
    assert!(
        all_errors
            .iter()
            .all(|status| status.is_some_and(|s| s >= 500)),
        "{all_errors:?}"
    );
    let all_resets = statuses("reset=1", 5).await;
    assert!(all_resets.iter().all(Option::is_none), "{all_resets:?}");
}

#[tokio::test]
async fn control_endpoint_changes_http_faults_at_runtime() {
    let lab = start_with(|options| options.faults = "slow=2,seed=1".parse().expect("spec")).await;
    let client = reqwest::Client::new();
    let control = format!("{}/lab/faults", lab.url().trim_end_matches("/api2/json"));
    let get = client
        .get(&control)
        .header("Authorization", lab.authorization())
        .send()
        .await
        .expect("answer");
    assert_eq!(get.status(), 200);
    let body: Value = get.json().await.expect("JSON");
    assert_eq!(body["data"]["slow"], 2.0);
    let denied = client
        .put(&control)
        .header(
            "Authorization",
            format!("PVEAPIToken={}", lab.readonly_token()),
        )
        .body("http5xx=1")
        .send()
        .await
        .expect("answer");
    assert_eq!(denied.status(), 403);
    let anonymous = client.get(&control).send().await.expect("answer");
    assert_eq!(anonymous.status(), 401);
    let bad = client
        .put(&control)
        .header("Authorization", lab.authorization())
        .body("http5xx=7")
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status(), 400);
    let set = client
        .put(&control)
        .header("Authorization", lab.authorization())
        .body("http5xx=1,slow=2")
        .send()
        .await
        .expect("answer");
    assert_eq!(set.status(), 200);
    assert_eq!(Api::token(&lab).get("/version").await.status / 100, 5);
    assert!((lab.faults().spec().http_5xx - 1.0).abs() < f64::EPSILON);
    let counted: Value = client
        .get(&control)
        .header("Authorization", lab.authorization())
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        counted["data"]["injected"],
        serde_json::json!({"http5xx": 1, "reset": 0, "lost": 0}),
        "the one faulted /version call is counted; /lab itself never is: {counted}"
    );
    let healed = client
        .put(&control)
        .header("Authorization", lab.authorization())
        .body("")
        .send()
        .await
        .expect("answer");
    assert_eq!(healed.status(), 200);
    assert_eq!(Api::token(&lab).get("/version").await.status, 200);
}

/// The exit status of a task, polled until it stops.
async fn task_outcome(api: &Api, upid: &str) -> String {
    let path = format!("/nodes/lloyd/tasks/{upid}/status");
    for _ in 0..400 {
        let reply = api.get(&path).await;
        if reply.data()["status"] == "stopped" {
            return reply.data()["exitstatus"].as_str().unwrap_or("").to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("task {upid} did not stop");
}

#[tokio::test]
async fn control_endpoint_changes_task_faults_at_runtime() {
    let lab = start_with(|options| options.node.with_template = true).await;
    let api = Api::token(&lab);
    let control = format!("{}/lab/faults", lab.url().trim_end_matches("/api2/json"));
    let client = reqwest::Client::new();
    let clone = |newid: &'static str| {
        let api = api.clone();
        async move {
            let reply = api
                .call("POST", "/nodes/lloyd/qemu/1001/clone", &[("newid", newid)])
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            reply.data().as_str().expect("a UPID").to_owned()
        }
    };
    let healthy = clone("150").await;
    assert_eq!(task_outcome(&api, &healthy).await, "OK");
    let set = client
        .put(&control)
        .header("Authorization", lab.authorization())
        .body("lock-timeout=1")
        .send()
        .await
        .expect("answer");
    assert_eq!(set.status(), 200);
    assert!((lab.node().task_faults().lock_timeout - 1.0).abs() < f64::EPSILON);
    let faulty = clone("151").await;
    let outcome = task_outcome(&api, &faulty).await;
    assert!(outcome.contains("got timeout"), "{outcome}");
    let healed = client
        .put(&control)
        .header("Authorization", lab.authorization())
        .body("")
        .send()
        .await
        .expect("answer");
    assert_eq!(healed.status(), 200);
    let again = clone("152").await;
    assert_eq!(task_outcome(&api, &again).await, "OK");
}

#[tokio::test]
async fn a_reset_fault_is_a_tcp_reset_not_an_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lab = start_with(|options| options.faults = "reset=1".parse().expect("spec")).await;
    let mut stream = tokio::net::TcpStream::connect(lab.address())
        .await
        .expect("connect");
    let request = format!(
        "GET /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        lab.authorization()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buffer = Vec::new();
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut buffer),
    )
    .await
    .expect("the lab does not hang");
    let error = outcome.expect_err("no orderly end of stream");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(buffer.is_empty(), "no answer bytes before the reset");
}
