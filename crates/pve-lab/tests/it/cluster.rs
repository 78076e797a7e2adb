//! A three-node lab over real HTTP: every cluster answer schema-checked, the node power
//! switches at `/lab/nodes`, the `node-down` fault, and pveproxy's 595 on the wire.

use std::time::Duration;

use pve_lab::api::Method;
use pve_lab::{Lab, LabOptions};
use serde_json::Value;

use crate::common::{Api, assert_schema, install_crypto, raw_exchange, status_line};

async fn cluster(faults: &str) -> pve_lab::LabHandle {
    install_crypto();
    let mut options = LabOptions::for_tests()
        .with_nodes(["lloyd", "pve2", "pve3"])
        .expect("valid names");
    options.node.with_template = true;
    options.faults = faults.parse().expect("a fault spec");
    Lab::start(options).await.expect("the lab starts")
}

async fn wait_task(api: &Api, node: &str, upid: &str) -> Value {
    let path = format!("/nodes/{node}/tasks/{upid}/status");
    for _ in 0..400 {
        let reply = api.get(&path).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if reply.data()["status"] == "stopped" {
            return reply.data().clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {upid} did not stop");
}

async fn control(lab: &pve_lab::LabHandle, method: reqwest::Method, path: &str) -> (u16, Value) {
    let url = format!("{}{path}", lab.url().trim_end_matches("/api2/json"));
    let response = reqwest::Client::new()
        .request(method, url)
        .header("Authorization", lab.authorization())
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cluster_answers_match_the_schema_and_migration_moves_the_vm() {
    let lab = cluster("").await;
    let api = Api::token(&lab);
    for path in [
        "/cluster/status",
        "/nodes",
        "/cluster/resources",
        "/nodes/pve3/status",
    ] {
        let reply = api.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_schema(Method::Get, path, &reply);
    }
    let clone = api
        .call(
            "POST",
            "/nodes/lloyd/qemu/1001/clone",
            &[("newid", "150"), ("target", "pve2")],
        )
        .await;
    assert_eq!(clone.status, 200, "{}", clone.body);
    let upid = clone.data().as_str().unwrap().to_owned();
    assert_eq!(wait_task(&api, "lloyd", &upid).await["exitstatus"], "OK");
    let migrate = api
        .call(
            "POST",
            "/nodes/pve2/qemu/150/migrate",
            &[("target", "pve3"), ("online", "1")],
        )
        .await;
    assert_schema(Method::Post, "/nodes/pve2/qemu/150/migrate", &migrate);
    let upid = migrate.data().as_str().unwrap().to_owned();
    assert!(upid.contains(":qmigrate:150:"), "{upid}");
    assert_eq!(wait_task(&api, "pve2", &upid).await["exitstatus"], "OK");
    assert_eq!(lab.node().vm_node(150).as_deref(), Some("pve3"));
    let gone = api.get("/nodes/pve2/qemu/150/config").await;
    assert_eq!(gone.status, 500);
    assert_eq!(
        gone.message().trim(),
        "Configuration file 'nodes/pve2/qemu-server/150.conf' does not exist"
    );
    let running = api
        .call("POST", "/nodes/pve3/qemu/150/status/start", &[])
        .await;
    let upid = running.data().as_str().unwrap().to_owned();
    assert_eq!(wait_task(&api, "pve3", &upid).await["exitstatus"], "OK");
    let refused = api
        .call(
            "POST",
            "/nodes/pve3/qemu/150/migrate",
            &[("target", "lloyd")],
        )
        .await;
    assert_eq!(refused.status, 500);
    assert!(
        refused
            .message()
            .contains("can't migrate running VM without --online")
    );
    let bad_map = api
        .call(
            "POST",
            "/nodes/pve3/qemu/150/migrate",
            &[
                ("target", "lloyd"),
                ("online", "1"),
                ("targetstorage", "a,b"),
            ],
        )
        .await;
    assert_eq!(bad_map.status, 400, "{}", bad_map.body);
}

#[tokio::test]
async fn nodes_go_down_and_up_through_the_extension_endpoint_and_the_fault() {
    let lab = cluster("node-down=pve3").await;
    let api = Api::token(&lab);
    assert_eq!(lab.node().nodes_down(), ["pve3"]);
    let (status, body) = control(&lab, reqwest::Method::GET, "/lab/nodes").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"][2],
        serde_json::json!({"node": "pve3", "online": 0})
    );
    let request = format!(
        "GET /api2/json/nodes/pve3/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        lab.authorization()
    );
    let raw = raw_exchange(lab.address(), request.as_bytes()).await;
    assert_eq!(status_line(&raw), "HTTP/1.1 595 No route to host");
    let (status, body) = control(&lab, reqwest::Method::POST, "/lab/nodes/pve3/up").await;
    assert_eq!(
        (status, &body["data"]["online"]),
        (200, &serde_json::json!(1))
    );
    assert_eq!(api.get("/nodes/pve3/status").await.status, 200);
    let (status, _) = control(&lab, reqwest::Method::POST, "/lab/nodes/pve2/down").await;
    assert_eq!(status, 200);
    let reply = api.get("/cluster/status").await;
    assert_schema(Method::Get, "/cluster/status", &reply);
    assert_eq!(reply.data()[2]["online"], 0);
    let (status, body) = control(&lab, reqwest::Method::POST, "/lab/nodes/pve9/down").await;
    assert_eq!(status, 404, "{body}");
    // A fault spec replaces the set of down nodes.
    let url = format!("{}/lab/faults", lab.url().trim_end_matches("/api2/json"));
    let client = reqwest::Client::new();
    let put = client
        .put(&url)
        .header("Authorization", lab.authorization())
        .body("node-down=lloyd")
        .send()
        .await
        .expect("answer");
    assert_eq!(put.status().as_u16(), 200);
    assert_eq!(lab.node().nodes_down(), ["lloyd"]);
    let unknown = client
        .put(&url)
        .header("Authorization", lab.authorization())
        .body("node-down=pve9")
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status().as_u16(), 400);
    assert_eq!(
        lab.node().nodes_down(),
        ["lloyd"],
        "a refused spec changes nothing"
    );
    let readonly = reqwest::Client::new()
        .post(format!(
            "{}/lab/nodes/pve2/up",
            lab.url().trim_end_matches("/api2/json")
        ))
        .header(
            "Authorization",
            format!("PVEAPIToken={}", lab.readonly_token()),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(readonly.status().as_u16(), 403);
}

#[tokio::test]
async fn a_fault_naming_a_stranger_stops_the_lab_from_starting() {
    install_crypto();
    let mut options = LabOptions::for_tests();
    options.faults = "node-down=pve2".parse().expect("a valid spec");
    let error = Lab::start(options).await.expect_err("pve2 is not a member");
    assert!(format!("{error:?}").contains("pve2"), "{error:?}");
    assert!("node-down=-x".parse::<pve_lab::FaultSpec>().is_err());
}

#[tokio::test]
async fn the_api_requests_are_counted_per_path_at_lab_requests() {
    let lab = cluster("").await;
    let api = Api::token(&lab);
    for _ in 0..3 {
        assert_eq!(api.get("/cluster/resources").await.status, 200);
    }
    assert_eq!(api.get("/nodes").await.status, 200);
    let (status, body) = control(&lab, reqwest::Method::GET, "/lab/requests").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["GET /cluster/resources"], 3, "{body}");
    assert_eq!(body["data"]["GET /nodes"], 1, "{body}");
    // The lab's own endpoints are not API requests and are not counted.
    assert!(
        body["data"]
            .as_object()
            .is_some_and(|counts| counts.len() == 2),
        "{body}"
    );
    let (status, _) = control(&lab, reqwest::Method::DELETE, "/lab/requests").await;
    assert_eq!(status, 200);
    assert_eq!(lab.requests().count("GET", "/cluster/resources"), 0);
}
