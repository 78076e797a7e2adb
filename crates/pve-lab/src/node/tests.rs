//! Fast table-driven tests of the node, calling [`Node::handle`] directly.
//!
//! Why: the HTTP layer has its own tests; these pin the node's PVE behaviours (task
//! failures inside tasks, locks, digests, agent timing) with a 100x time scale so the
//! whole module runs in a few seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Node, NodeOptions, split_total};
use crate::api::{ApiError, ApiRequest, Identity, Method};

/// A fast node: durations scaled 100x down, agent up 50 ms after start.
fn fast_options() -> NodeOptions {
    NodeOptions {
        time_scale: 0.01,
        agent_boot_delay: Duration::from_secs(5),
        with_template: true,
        ..NodeOptions::default()
    }
}

fn request(method: Method, template: &str, params: &Value) -> ApiRequest {
    let mut path_params = BTreeMap::new();
    path_params.insert("node".to_owned(), "lloyd".to_owned());
    let mut body = Map::new();
    for (key, value) in params.as_object().cloned().unwrap_or_default() {
        if template.contains(&format!("{{{key}}}")) {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            path_params.insert(key, text);
        } else {
            body.insert(key, value);
        }
    }
    ApiRequest {
        method,
        template: template.to_owned(),
        path_params,
        params: body,
        identity: Identity {
            user: "root@pam".into(),
            token: Some("lab".into()),
        },
    }
}

async fn call(
    node: &Node,
    method: Method,
    template: &str,
    params: Value,
) -> Result<Value, ApiError> {
    node.handle(request(method, template, &params))
        .await
        .map(|value| split_total(value).0)
}

async fn ok(node: &Node, method: Method, template: &str, params: Value) -> Value {
    match call(node, method, template, params).await {
        Ok(value) => value,
        Err(error) => panic!("{template} failed: {error:?}"),
    }
}

/// Polls a task until it stops; returns its status object.
async fn wait(node: &Node, upid: &Value) -> Value {
    for _ in 0..500 {
        let status = ok(
            node,
            Method::Get,
            "/nodes/{node}/tasks/{upid}/status",
            json!({"upid": upid}),
        )
        .await;
        if status["status"] == "stopped" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {upid} did not finish");
}

async fn clone_template(node: &Node, newid: u32) -> Value {
    let upid = ok(
        node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/clone",
        json!({"vmid": 1001, "newid": newid, "name": "jump"}),
    )
    .await;
    let status = wait(node, &upid).await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
    upid
}

#[tokio::test]
async fn version_and_nextid() {
    let node = Node::in_memory(fast_options());
    let version = ok(&node, Method::Get, "/version", json!({})).await;
    assert_eq!(version["release"], "9.1");
    assert_eq!(
        ok(&node, Method::Get, "/cluster/nextid", json!({})).await,
        json!("100")
    );
    let taken = call(&node, Method::Get, "/cluster/nextid", json!({"vmid": 1001})).await;
    let error = taken.expect_err("1001 is taken");
    assert_eq!(error.status, 400);
    assert_eq!(error.errors["vmid"], "VM 1001 already exists");
}

const CLONE: &str = "/nodes/{node}/qemu/{vmid}/clone";
const CONFIG: &str = "/nodes/{node}/qemu/{vmid}/config";
const STATUS: &str = "/nodes/{node}/qemu/{vmid}/status/current";
const TASK_LOG: &str = "/nodes/{node}/tasks/{upid}/log";

async fn task_log(node: &Node, upid: &Value) -> Vec<String> {
    let lines = ok(
        node,
        Method::Get,
        TASK_LOG,
        json!({"upid": upid, "limit": 0}),
    )
    .await;
    lines
        .as_array()
        .into_iter()
        .flatten()
        .map(|line| line["t"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Dispatches a task (HTTP 200 with a UPID) and waits for it.
async fn run_task(node: &Node, method: Method, template: &str, params: Value) -> (Value, Value) {
    let upid = ok(node, method, template, params).await;
    assert!(
        upid.as_str()
            .is_some_and(|upid| upid.starts_with("UPID:lloyd:")),
        "{upid}"
    );
    let status = wait(node, &upid).await;
    (upid, status)
}

async fn start(node: &Node, vmid: u32) {
    let (_, status) = run_task(
        node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/start",
        json!({"vmid": vmid}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
}

#[tokio::test]
async fn linked_clone_holds_the_clone_lock_until_the_task_ends() {
    let node = Node::in_memory(fast_options());
    let upid = ok(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150, "name": "jump"}),
    )
    .await;
    let text = upid.as_str().unwrap_or_default();
    assert!(text.ends_with(":qmclone:1001:root@pam!lab:"), "{text}");
    let during = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(during["lock"], "clone");
    assert_eq!(
        ok(&node, Method::Get, STATUS, json!({"vmid": 150})).await["lock"],
        "clone"
    );
    let running = ok(
        &node,
        Method::Get,
        "/nodes/{node}/tasks/{upid}/status",
        json!({"upid": upid}),
    )
    .await;
    assert_eq!(running["status"], "running");
    assert_eq!(wait(&node, &upid).await["exitstatus"], "OK");

    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    let source = ok(&node, Method::Get, CONFIG, json!({"vmid": 1001})).await;
    assert!(config.get("lock").is_none(), "{config}");
    assert!(config.get("template").is_none(), "{config}");
    assert_eq!(config["name"], "jump");
    assert_eq!(
        config["scsi0"],
        "local-lvm:base-1001-disk-0/vm-150-disk-0,discard=on,iothread=1,size=3584M"
    );
    assert_eq!(config["ide2"], "local-lvm:vm-150-cloudinit,media=cdrom");
    assert_ne!(config["net0"], source["net0"], "a clone gets a new MAC");
    assert_ne!(
        config["smbios1"], source["smbios1"],
        "a clone gets a new SMBIOS uuid"
    );
    assert_eq!(config["cores"], json!(2), "integers are typed");
    let log = task_log(&node, &upid).await;
    assert_eq!(
        log[..2],
        [
            "create full clone of drive ide2 (local-lvm:vm-1001-cloudinit)",
            "  Logical volume \"vm-150-cloudinit\" created."
        ]
    );
    assert!(
        log.contains(&"create linked clone of drive scsi0 (local-lvm:base-1001-disk-0)".to_owned()),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("TASK OK"));
}

#[tokio::test]
async fn clone_rules_answer_like_pve_before_forking() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"vmid": 1001, "newid": 150}),
            500,
            "unable to create VM 150: config file already exists",
        ),
        (
            json!({"vmid": 1001, "newid": 151, "full": false, "storage": "local-lvm"}),
            500,
            "parameter 'storage' not allowed for linked clones",
        ),
        (
            json!({"vmid": 1001, "newid": 151, "full": false, "format": "qcow2"}),
            500,
            "parameter 'format' not allowed for linked clones",
        ),
        (
            json!({"vmid": 150, "newid": 151, "full": false}),
            500,
            "Linked clone feature is not supported for drive 'scsi0'",
        ),
        (
            json!({"vmid": 999, "newid": 151}),
            500,
            "Configuration file 'nodes/lloyd/qemu-server/999.conf' does not exist",
        ),
        (
            json!({"vmid": 1001, "newid": 151, "full": true, "storage": "nope"}),
            500,
            "storage 'nope' does not exist",
        ),
        (
            json!({"vmid": 1001, "newid": 151, "target": "other"}),
            500,
            "no such cluster node 'other'",
        ),
    ];
    for (params, status, message) in cases {
        let error = call(&node, Method::Post, CLONE, params.clone())
            .await
            .expect_err("must fail");
        assert_eq!(
            (error.status, error.message.as_str()),
            (status, message),
            "{params}"
        );
    }
}

#[tokio::test]
async fn full_clone_of_a_vm_copies_disks_and_defaults_the_name() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    let (upid, status) = run_task(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 150, "newid": 151}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK");
    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 151})).await;
    assert_eq!(config["name"], "Copy-of-VM-jump");
    assert!(
        config["scsi0"]
            .as_str()
            .is_some_and(|disk| disk.starts_with("local-lvm:vm-151-disk-0,")),
        "{config}"
    );
    let log = task_log(&node, &upid).await;
    assert!(
        log.iter()
            .any(|line| line.starts_with("transferred 3.5 GiB of 3.5 GiB (100.00%)")),
        "{log:?}"
    );
}

#[tokio::test]
async fn config_digest_delete_warnings_and_locks() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    let before = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    let digest = before["digest"].as_str().unwrap_or_default().to_owned();
    assert_eq!(digest.len(), 40);

    let stale = call(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "cores": 4, "digest": "0".repeat(40)}),
    )
    .await;
    assert_eq!(
        stale.expect_err("stale digest").message,
        "checksum mismatch (file change by other user?)"
    );
    let put = ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "cores": 4, "memory": "4096", "digest": digest}),
    )
    .await;
    assert_eq!(put, Value::Null);
    let after = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(
        (after["cores"].clone(), after["memory"].clone()),
        (json!(4), json!("4096"))
    );
    assert_ne!(after["digest"], before["digest"]);

    let (upid, status) = run_task(
        &node,
        Method::Post,
        CONFIG,
        json!({"vmid": 150, "delete": "balloon,tags", "ciuser": "admin"}),
    )
    .await;
    assert_eq!(status["exitstatus"], "WARNINGS: 1", "{status}");
    let log = task_log(&node, &upid).await;
    assert!(
        log.contains(
            &"WARN: cannot delete 'balloon' - not set in current configuration!".to_owned()
        ),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("TASK WARNINGS: 1"));
    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert!(config.get("tags").is_none());
    assert_eq!(config["ciuser"], "admin");

    let unknown = call(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "delete": "bogus"}),
    )
    .await;
    assert_eq!(
        unknown.expect_err("unknown").errors["delete"],
        "unknown option 'bogus'"
    );

    let upid = ok(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 151}),
    )
    .await;
    let locked = call(
        &node,
        Method::Post,
        CONFIG,
        json!({"vmid": 151, "cores": 1}),
    )
    .await;
    assert_eq!(locked.expect_err("locked").message, "VM is locked (clone)");
    wait(&node, &upid).await;
}

#[tokio::test]
async fn resize_grows_and_fails_inside_the_task_on_shrink() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    let resize = "/nodes/{node}/qemu/{vmid}/resize";
    let cases = [
        ("+8G", "OK", "11776M"),
        ("32G", "OK", "32G"),
        ("32G", "OK", "32G"),
        ("16G", "shrinking disks is not supported", "32G"),
    ];
    for (size, exitstatus, expected) in cases {
        let (upid, status) = run_task(
            &node,
            Method::Put,
            resize,
            json!({"vmid": 150, "disk": "scsi0", "size": size}),
        )
        .await;
        assert_eq!(status["exitstatus"], exitstatus, "{size}");
        let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
        assert!(
            config["scsi0"]
                .as_str()
                .is_some_and(|disk| disk.ends_with(&format!("size={expected}"))),
            "{size}: {config}"
        );
        if exitstatus != "OK" {
            let log = task_log(&node, &upid).await;
            assert_eq!(
                log.last().map(String::as_str),
                Some("TASK ERROR: shrinking disks is not supported")
            );
        }
    }
    let (_, status) = run_task(
        &node,
        Method::Put,
        resize,
        json!({"vmid": 150, "disk": "scsi5", "size": "+1G"}),
    )
    .await;
    assert_eq!(status["exitstatus"], "disk 'scsi5' does not exist");
}

#[tokio::test]
async fn start_failures_happen_inside_the_task() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    start(&node, 150).await;
    let current = ok(&node, Method::Get, STATUS, json!({"vmid": 150})).await;
    assert_eq!(
        (current["status"].clone(), current["qmpstatus"].clone()),
        (json!("running"), json!("running"))
    );

    let (upid, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/start",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(status["exitstatus"], "VM 150 already running");
    assert_eq!(
        task_log(&node, &upid).await.last().map(String::as_str),
        Some("TASK ERROR: VM 150 already running")
    );

    let clone = ok(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 151}),
    )
    .await;
    let (_, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/start",
        json!({"vmid": 151}),
    )
    .await;
    assert_eq!(status["exitstatus"], "VM is locked (clone)");
    wait(&node, &clone).await;

    let reboot = call(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/reboot",
        json!({"vmid": 151}),
    )
    .await;
    assert_eq!(reboot.expect_err("stopped").message, "VM 151 not running");
}

#[tokio::test]
async fn destroy_refuses_running_vms_and_removes_disks() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    start(&node, 150).await;
    let vm = "/nodes/{node}/qemu/{vmid}";
    let running = call(
        &node,
        Method::Delete,
        vm,
        json!({"vmid": 150, "purge": true}),
    )
    .await;
    assert_eq!(
        running.expect_err("running").message,
        "VM 150 is running - destroy failed"
    );
    let (_, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/stop",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK");
    let (_, status) = run_task(
        &node,
        Method::Delete,
        vm,
        json!({"vmid": 150, "purge": true, "destroy-unreferenced-disks": true}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK");
    let gone = call(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(
        gone.expect_err("gone").message,
        "Configuration file 'nodes/lloyd/qemu-server/150.conf' does not exist"
    );
    let content = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"storage": "local-lvm", "vmid": 150}),
    )
    .await;
    assert_eq!(content, json!([]));
    let template = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"storage": "local-lvm", "vmid": 1001}),
    )
    .await;
    assert_eq!(template.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn agent_answers_only_after_the_boot_delay() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "ipconfig0": "ip=192.168.10.20/24,gw=192.168.10.1"}),
    )
    .await;
    let interfaces = "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces";
    let stopped = call(&node, Method::Get, interfaces, json!({"vmid": 150})).await;
    assert_eq!(
        stopped.expect_err("stopped").message,
        "VM 150 is not running"
    );
    start(&node, 150).await;
    let early = call(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/agent/ping",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(
        early.expect_err("booting").message,
        "QEMU guest agent is not running"
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        ok(
            &node,
            Method::Post,
            "/nodes/{node}/qemu/{vmid}/agent/ping",
            json!({"vmid": 150})
        )
        .await,
        json!({"result": {}})
    );

    let result = ok(&node, Method::Get, interfaces, json!({"vmid": 150})).await;
    let names: Vec<&str> = result["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert_eq!(names, ["lo", "eth0", "docker0"]);
    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    let mac = super::agent::net_mac(config["net0"].as_str().unwrap_or_default())
        .unwrap_or_default()
        .to_lowercase();
    let eth0 = &result["result"][1];
    assert_eq!(eth0["hardware-address"], json!(mac));
    assert_eq!(
        eth0["ip-addresses"][0],
        json!({"ip-address": "192.168.10.20", "ip-address-type": "ipv4", "prefix": 24})
    );
    assert!(
        eth0["ip-addresses"][1]["ip-address"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("fe80::"))
    );

    let read = "/nodes/{node}/qemu/{vmid}/agent/file-read";
    let key = ok(
        &node,
        Method::Get,
        read,
        json!({"vmid": 150, "file": "/etc/ssh/ssh_host_ed25519_key.pub"}),
    )
    .await;
    let line = key["content"].as_str().unwrap_or_default().to_owned();
    assert!(
        line.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI") && line.ends_with(" root@jump\n"),
        "{line}"
    );
    let again = ok(
        &node,
        Method::Get,
        read,
        json!({"vmid": 150, "file": "/etc/ssh/ssh_host_ed25519_key.pub"}),
    )
    .await;
    assert_eq!(again["content"], json!(line), "the host key is stable");

    let pid = ok(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/agent/exec",
        json!({"vmid": 150, "command": ["true"]}),
    )
    .await;
    let status = ok(
        &node,
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/agent/exec-status",
        json!({"vmid": 150, "pid": pid["pid"]}),
    )
    .await;
    assert_eq!(status, json!({"exited": 1, "exitcode": 0, "out-data": ""}));

    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 1001, "agent": "0", "skiplock": true}),
    )
    .await;
    let off = call(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/agent/ping",
        json!({"vmid": 1001}),
    )
    .await;
    assert_eq!(
        off.expect_err("no agent").message,
        "No QEMU guest agent configured"
    );
}

#[tokio::test]
async fn unknown_tasks_and_paths_answer_like_pve() {
    let node = Node::in_memory(fast_options());
    let missing = call(
        &node,
        Method::Get,
        "/nodes/{node}/tasks/{upid}/status",
        json!({"upid": "UPID:lloyd:00000001:00000001:00000001:qmstart:150:root@pam:"}),
    )
    .await;
    let error = missing.expect_err("no such task");
    assert_eq!(
        (error.status, error.errors["upid"].as_str()),
        (400, "no such task")
    );
    let unknown = call(
        &node,
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/rrd",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(
        unknown.expect_err("501").message,
        "Method 'GET /nodes/lloyd/qemu/150/rrd' not implemented"
    );
    let other = call(
        &node,
        Method::Get,
        "/nodes/{node}/qemu",
        json!({"node": "elsewhere"}),
    )
    .await;
    assert_eq!(other.expect_err("node").status, 500);
}

#[tokio::test]
async fn task_list_and_log_pages_carry_totals() {
    let node = Node::in_memory(fast_options());
    let upid = clone_template(&node, 150).await;
    let raw = node
        .handle(request(
            Method::Get,
            TASK_LOG,
            &json!({"upid": upid, "start": 1, "limit": 1}),
        ))
        .await;
    let (lines, total) = split_total(raw.expect("log"));
    assert_eq!(lines.as_array().map(Vec::len), Some(1));
    assert_eq!(lines[0]["n"], json!(2));
    assert_eq!(
        total,
        Some(u64::try_from(task_log(&node, &upid).await.len()).unwrap_or(0))
    );
    let raw = node
        .handle(request(
            Method::Get,
            "/nodes/{node}/tasks",
            &json!({"vmid": 1001, "typefilter": "qmclone"}),
        ))
        .await;
    let (tasks, total) = split_total(raw.expect("list"));
    assert_eq!(total, Some(1));
    assert_eq!(tasks[0]["upid"], upid);
    assert_eq!(tasks[0]["status"], "OK");
}
