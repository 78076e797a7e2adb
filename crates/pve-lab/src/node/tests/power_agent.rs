//! Power tasks, resize, destroy, the guest agent and task endpoints.
//!
//! Why: PVE reports these failures inside tasks (HTTP 200 on dispatch) and the agent
//! timing is what address discovery waits on.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::api::Method;

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
    let node = Node::in_memory(slow_clone_options());
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
    assert_eq!(
        status["exitstatus"], "can't lock file '/var/lock/qemu-server/lock-151.conf' - got timeout",
        "the clone holds the target's lock file longer than the lock timeout"
    );
    wait(&node, &clone).await;

    node.shared.write(|state| {
        if let Some(vm) = state.vms.get_mut(&151) {
            vm.config.insert("lock".into(), "backup".into());
        }
    });
    let (upid, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/start",
        json!({"vmid": 151}),
    )
    .await;
    assert_eq!(status["exitstatus"], "VM is locked (backup)");
    let log = task_log(&node, &upid).await;
    assert_eq!(
        log.last().map(String::as_str),
        Some("TASK ERROR: VM is locked (backup)")
    );

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
    tokio::time::sleep(Duration::from_millis(260)).await;
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
    let mac = crate::node::agent::net_mac(config["net0"].as_str().unwrap_or_default())
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
    let head = json!({"vmid": 150, "file": "/etc/ssh/ssh_host_ed25519_key.pub", "count": 11});
    let head = ok(&node, Method::Get, read, head).await;
    assert_eq!(
        head,
        json!({"content": "ssh-ed25519", "bytes-read": 11, "truncated": 1})
    );
    let missing = call(
        &node,
        Method::Get,
        read,
        json!({"vmid": 150, "file": "/nope"}),
    )
    .await;
    assert_eq!(
        missing.expect_err("no file").message,
        "Agent error: Failed to open file '/nope': No such file or directory"
    );

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
        json!({"vmid": 1001, "agent": "0"}),
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
    let reply = raw.expect("log");
    let (lines, total) = (reply.data, reply.total);
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
    let reply = raw.expect("list");
    let (tasks, total) = (reply.data, reply.total);
    assert_eq!(total, Some(1));
    assert_eq!(tasks[0]["upid"], upid);
    assert_eq!(tasks[0]["status"], "OK");
}
