//! Running guests: pending changes, cloud-init snapshots, boot order, bridges, the
//! generic agent command.
//!
//! Why: what a running guest sees is decided at start (cloud-init, boot order, bridges);
//! clients that change a running VM must restart it, and these tests pin that.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::api::Method;

#[tokio::test]
async fn running_vms_keep_cold_changes_pending_and_cloudinit_tracks_the_image() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    start(&node, 150).await;
    ok(&node, Method::Put, CONFIG, json!({"vmid": 150, "cores": 4, "name": "jump2", "ipconfig0": "ip=dhcp", "cipassword": "secret"})).await;
    let shown = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    let current = ok(
        &node,
        Method::Get,
        CONFIG,
        json!({"vmid": 150, "current": true}),
    )
    .await;
    assert_eq!(
        (shown["cores"].clone(), current["cores"].clone()),
        (json!(4), json!(2))
    );
    assert_eq!(current["name"], "jump2", "name is hot-pluggable");
    assert_eq!(current["cipassword"], "**********");
    let pending = ok(
        &node,
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/pending",
        json!({"vmid": 150}),
    )
    .await;
    let cores = pending
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["key"] == "cores")
        .cloned();
    assert_eq!(
        cores,
        Some(json!({"key": "cores", "value": "2", "pending": "4"}))
    );

    let cloudinit = ok(
        &node,
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/cloudinit",
        json!({"vmid": 150}),
    )
    .await;
    let item = |key: &str| {
        cloudinit
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item["key"] == key)
            .cloned()
    };
    assert_eq!(
        item("ipconfig0"),
        Some(json!({"key": "ipconfig0", "pending": "ip=dhcp"}))
    );
    assert_eq!(
        item("name"),
        Some(json!({"key": "name", "value": "jump", "pending": "jump2"}))
    );

    let (_, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/reboot",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK");
    let current = ok(
        &node,
        Method::Get,
        CONFIG,
        json!({"vmid": 150, "current": true}),
    )
    .await;
    assert_eq!(
        current["cores"],
        json!(4),
        "a restart applies pending changes"
    );
    let cloudinit = ok(
        &node,
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/cloudinit",
        json!({"vmid": 150}),
    )
    .await;
    assert!(
        cloudinit
            .as_array()
            .into_iter()
            .flatten()
            .all(|item| item.get("pending").is_none()),
        "{cloudinit}"
    );
    let dump = ok(
        &node,
        Method::Get,
        "/nodes/{node}/qemu/{vmid}/cloudinit/dump",
        json!({"vmid": 150, "type": "user"}),
    )
    .await;
    assert!(
        dump.as_str()
            .is_some_and(|text| text.starts_with("#cloud-config\nhostname: jump2\n")),
        "{dump}"
    );
}

#[tokio::test]
async fn start_fails_in_the_task_for_an_unknown_bridge() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "net0": "virtio,bridge=vmbr7"}),
    )
    .await;
    let (_, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/start",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(status["exitstatus"], "bridge 'vmbr7' does not exist");
}

#[tokio::test]
async fn the_guest_uses_what_cloudinit_applied_at_start_and_needs_a_boot_disk() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    let set = json!({"vmid": 150, "ipconfig0": "ip=192.168.10.20/24,gw=192.168.10.1"});
    ok(&node, Method::Put, CONFIG, set).await;
    start(&node, 150).await;
    let later = json!({"vmid": 150, "ipconfig0": "ip=192.168.10.30/24,gw=192.168.10.1"});
    ok(&node, Method::Put, CONFIG, later).await;
    tokio::time::sleep(Duration::from_millis(260)).await;
    let interfaces = "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces";
    let result = ok(&node, Method::Get, interfaces, json!({"vmid": 150})).await;
    let address = result["result"][1]["ip-addresses"][0]["ip-address"].clone();
    assert_eq!(
        address, "192.168.10.20",
        "a changed ipconfig0 needs a restart"
    );

    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "boot": "order=net0"}),
    )
    .await;
    let reboot = "/nodes/{node}/qemu/{vmid}/status/reboot";
    let (_, status) = run_task(&node, Method::Post, reboot, json!({"vmid": 150})).await;
    assert_eq!(status["exitstatus"], "OK");
    tokio::time::sleep(Duration::from_millis(260)).await;
    let lost = call(&node, Method::Get, interfaces, json!({"vmid": 150})).await;
    assert_eq!(
        lost.expect_err("no boot disk").message,
        "QEMU guest agent is not running",
        "without a disk in the boot order the guest never boots"
    );
}

#[tokio::test]
async fn cloudinit_regeneration_and_the_generic_agent_command() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    start(&node, 150).await;
    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "ciuser": "admin"}),
    )
    .await;
    let pending = "/nodes/{node}/qemu/{vmid}/cloudinit";
    let before = ok(&node, Method::Get, pending, json!({"vmid": 150})).await;
    assert!(
        before
            .as_array()
            .into_iter()
            .flatten()
            .any(|item| item["key"] == "ciuser" && item["pending"] == "admin"),
        "{before}"
    );
    assert_eq!(
        ok(&node, Method::Put, pending, json!({"vmid": 150})).await,
        Value::Null
    );
    let after = ok(&node, Method::Get, pending, json!({"vmid": 150})).await;
    assert!(
        after
            .as_array()
            .into_iter()
            .flatten()
            .all(|item| item.get("pending").is_none()),
        "{after}"
    );

    tokio::time::sleep(Duration::from_millis(260)).await;
    let agent = "/nodes/{node}/qemu/{vmid}/agent";
    let host = ok(
        &node,
        Method::Post,
        agent,
        json!({"vmid": 150, "command": "get-host-name"}),
    )
    .await;
    assert_eq!(host, json!({"result": {"host-name": "jump"}}));
    let disabled = call(
        &node,
        Method::Post,
        agent,
        json!({"vmid": 150, "command": "fstrim"}),
    )
    .await;
    assert_eq!(
        disabled.expect_err("disabled").message,
        "Agent error: The command fstrim has been disabled for this instance"
    );
}
