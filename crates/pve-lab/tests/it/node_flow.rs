//! The node over real HTTP: the "done when" flow, every answer schema-checked.
//!
//! Why: the node's unit tests call `Node::handle` directly; this proves the same behaviours
//! reach a plain HTTP client with only the token (nodes, clone 1001 -> 150, watch the task,
//! start, agent interfaces), and that every response matches the official `returns`.

use std::time::Duration;

use pve_lab::api::Method;
use serde_json::Value;

use crate::common::{Api, Reply, assert_schema, start_with};

/// A task-starting call: method, path, form parameters.
type Step = (Method, &'static str, Vec<(&'static str, &'static str)>);

async fn checked(api: &Api, method: Method, path: &str, params: &[(&str, &str)]) -> Reply {
    let verb = match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
    };
    let reply = api.call(verb, path, params).await;
    assert_schema(method, path, &reply);
    reply
}

async fn wait_task(api: &Api, upid: &str) -> Value {
    let path = format!("/nodes/lloyd/tasks/{upid}/status");
    for _ in 0..400 {
        let reply = checked(api, Method::Get, &path, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if reply.data()["status"] == "stopped" {
            return reply.data().clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {upid} did not stop");
}

#[tokio::test]
async fn clone_start_and_read_the_agent_over_http() {
    let lab = start_with(|options| {
        options.node.with_template = true;
        options.node.agent_boot_delay = Duration::from_secs(20);
        options.node.durations.clone_linked = Duration::from_secs(30);
    })
    .await;
    let api = Api::token(&lab);

    let nodes = checked(&api, Method::Get, "/nodes", &[]).await;
    assert_eq!(nodes.data()[0]["node"], "lloyd", "{}", nodes.body);
    for path in [
        "/version",
        "/nodes/lloyd/status",
        "/cluster/resources",
        "/nodes/lloyd/qemu",
        "/nodes/lloyd/storage",
        "/nodes/lloyd/network",
    ] {
        let reply = checked(&api, Method::Get, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let next = checked(&api, Method::Get, "/cluster/nextid", &[]).await;
    assert_eq!(next.data(), "100");
    let content = checked(
        &api,
        Method::Get,
        "/nodes/lloyd/storage/local/content",
        &[("content", "import")],
    )
    .await;
    assert_eq!(
        content.data()[0]["volid"],
        "local:import/debian-12-genericcloud-amd64.qcow2"
    );

    let clone = checked(
        &api,
        Method::Post,
        "/nodes/lloyd/qemu/1001/clone",
        &[("newid", "150"), ("name", "jump")],
    )
    .await;
    assert_eq!(clone.status, 200, "{}", clone.body);
    let upid = clone.data().as_str().expect("a UPID").to_owned();
    let locked = checked(&api, Method::Get, "/nodes/lloyd/qemu/150/config", &[]).await;
    assert_eq!(locked.data()["lock"], "clone");
    assert_eq!(wait_task(&api, &upid).await["exitstatus"], "OK");
    let log = checked(
        &api,
        Method::Get,
        &format!("/nodes/lloyd/tasks/{upid}/log"),
        &[],
    )
    .await;
    assert!(
        log.body["total"].as_u64().is_some_and(|total| total >= 2),
        "{}",
        log.body
    );

    let update = checked(
        &api,
        Method::Put,
        "/nodes/lloyd/qemu/150/config",
        &[
            ("ipconfig0", "ip=192.168.10.20/24,gw=192.168.10.1"),
            ("memory", "2048"),
            ("balloon", "1024"),
        ],
    )
    .await;
    assert_eq!(update.status, 200, "{}", update.body);
    for path in [
        "/nodes/lloyd/qemu/150/config",
        "/nodes/lloyd/qemu/150/pending",
        "/nodes/lloyd/qemu/150/cloudinit",
        "/nodes/lloyd/qemu/150/status/current",
    ] {
        let reply = checked(&api, Method::Get, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }

    let started = checked(
        &api,
        Method::Post,
        "/nodes/lloyd/qemu/150/status/start",
        &[],
    )
    .await;
    let upid = started.data().as_str().expect("a UPID").to_owned();
    assert_eq!(wait_task(&api, &upid).await["exitstatus"], "OK");
    let early = checked(
        &api,
        Method::Get,
        "/nodes/lloyd/qemu/150/agent/network-get-interfaces",
        &[],
    )
    .await;
    assert_eq!(
        (early.status, early.message().trim_end()),
        (500, "QEMU guest agent is not running")
    );
    tokio::time::sleep(Duration::from_millis(260)).await;
    let interfaces = checked(
        &api,
        Method::Get,
        "/nodes/lloyd/qemu/150/agent/network-get-interfaces",
        &[],
    )
    .await;
    assert_eq!(interfaces.status, 200, "{}", interfaces.body);
    let eth0 = &interfaces.data()["result"][1];
    assert_eq!(eth0["ip-addresses"][0]["ip-address"], "192.168.10.20");
    let key = checked(
        &api,
        Method::Get,
        "/nodes/lloyd/qemu/150/agent/file-read",
        &[("file", "/etc/ssh/ssh_host_ed25519_key.pub")],
    )
    .await;
    assert!(
        key.data()["content"]
            .as_str()
            .is_some_and(|line| line.starts_with("ssh-ed25519 ")),
        "{}",
        key.body
    );
    let tasks = checked(&api, Method::Get, "/nodes/lloyd/tasks", &[("vmid", "150")]).await;
    assert_eq!(tasks.body["total"], 1, "{}", tasks.body);
}

#[tokio::test]
async fn every_node_endpoint_answers_in_the_schema_shape() {
    let lab = start_with(|options| {
        options.node.with_template = true;
        options.node.agent_boot_delay = Duration::from_millis(100);
    })
    .await;
    let api = Api::token(&lab);
    let create = checked(
        &api,
        Method::Post,
        "/nodes/lloyd/qemu",
        &[
            ("vmid", "200"),
            ("name", "golden"),
            ("agent", "1"),
            ("memory", "2048"),
            (
                "scsi0",
                "local-lvm:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2",
            ),
            ("ide2", "local-lvm:cloudinit"),
            ("net0", "virtio,bridge=vmbr0"),
        ],
    )
    .await;
    finish(&api, &create).await;
    let steps: Vec<Step> = vec![
        (
            Method::Post,
            "/nodes/lloyd/qemu/200/config",
            vec![("ciuser", "admin"), ("delete", "tags")],
        ),
        (
            Method::Put,
            "/nodes/lloyd/qemu/200/resize",
            vec![("disk", "scsi0"), ("size", "+1G")],
        ),
        (Method::Post, "/nodes/lloyd/qemu/200/status/start", vec![]),
        (Method::Post, "/nodes/lloyd/qemu/200/status/reboot", vec![]),
        (
            Method::Post,
            "/nodes/lloyd/qemu/200/status/shutdown",
            vec![],
        ),
        (Method::Post, "/nodes/lloyd/qemu/200/template", vec![]),
        (
            Method::Post,
            "/nodes/lloyd/qemu/200/clone",
            vec![("newid", "201"), ("full", "1")],
        ),
        (
            Method::Post,
            "/nodes/lloyd/storage/local/download-url",
            vec![
                ("content", "iso"),
                ("filename", "a.iso"),
                ("url", "https://example.invalid/a.iso"),
            ],
        ),
        (Method::Post, "/nodes/lloyd/qemu/201/status/start", vec![]),
    ];
    for (method, path, params) in steps {
        let reply = checked(&api, method, path, &params).await;
        let status = finish(&api, &reply).await;
        assert!(
            status == "OK" || status.starts_with("WARNINGS"),
            "{path}: {status}"
        );
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let reads = [
        "/nodes/lloyd",
        "/nodes/lloyd/qemu/201",
        "/nodes/lloyd/qemu/201/status",
        "/nodes/lloyd/qemu/201/agent",
        "/nodes/lloyd/qemu/201/cloudinit",
        "/nodes/lloyd/storage/local",
        "/nodes/lloyd/storage/local-lvm/content",
        "/nodes/lloyd/storage/local/content/local%3Aiso%2Fa.iso",
        "/nodes/lloyd/tasks",
    ];
    for path in reads {
        let reply = checked(&api, Method::Get, path, &[]).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    for kind in ["vm", "storage", "node", "sdn"] {
        let reply = checked(&api, Method::Get, "/cluster/resources", &[("type", kind)]).await;
        assert_eq!(reply.status, 200, "{kind}: {}", reply.body);
    }
    let dump = checked(
        &api,
        Method::Get,
        "/nodes/lloyd/qemu/201/cloudinit/dump",
        &[("type", "network")],
    )
    .await;
    assert!(
        dump.data()
            .as_str()
            .is_some_and(|text| text.starts_with("version: 1\n")),
        "{}",
        dump.body
    );
    let ping = checked(&api, Method::Post, "/nodes/lloyd/qemu/201/agent/ping", &[]).await;
    assert_eq!(ping.status, 200, "{}", ping.body);
    let exec = checked(
        &api,
        Method::Post,
        "/nodes/lloyd/qemu/201/agent/exec",
        &[("command", "uname"), ("command", "-a")],
    )
    .await;
    let pid = exec.data()["pid"].to_string();
    let status = checked(
        &api,
        Method::Get,
        "/nodes/lloyd/qemu/201/agent/exec-status",
        &[("pid", &pid)],
    )
    .await;
    assert_eq!(status.data()["exited"], 1, "{}", status.body);
    let stop = checked(&api, Method::Post, "/nodes/lloyd/qemu/201/status/stop", &[]).await;
    finish(&api, &stop).await;
    let destroy = checked(
        &api,
        Method::Delete,
        "/nodes/lloyd/qemu/201",
        &[("purge", "1")],
    )
    .await;
    assert_eq!(finish(&api, &destroy).await, "OK");
}

/// Waits for the task a dispatch answered and returns its exit status.
async fn finish(api: &Api, reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let upid = reply.data().as_str().expect("a UPID").to_owned();
    let status = wait_task(api, &upid).await;
    let log = checked(
        api,
        Method::Get,
        &format!("/nodes/lloyd/tasks/{upid}/log"),
        &[("limit", "0")],
    )
    .await;
    assert_eq!(log.status, 200, "{}", log.body);
    status["exitstatus"].as_str().unwrap_or_default().to_owned()
}
