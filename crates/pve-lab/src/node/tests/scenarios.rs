//! Create with import, templates, boot order, faults, lock contention, download-url.
//!
//! Why: these are the stage 1 path (create from a cloud image, convert to template) and
//! the failure modes the client helper must survive (lock timeouts, failing tasks, an
//! agent that never comes up).

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::api::Method;
use crate::node::TaskFaults;

#[tokio::test]
async fn create_imports_a_cloud_image_then_becomes_a_template() {
    let node = Node::in_memory(slow_clone_options());
    let params = json!({
        "vmid": 200, "name": "golden", "memory": "2048", "agent": "1",
        "scsi0": "local-lvm:0,import-from=local:import/debian-12-genericcloud-amd64.qcow2",
        "ide2": "local-lvm:cloudinit", "net0": "virtio,bridge=vmbr0",
    });
    let upid = ok(&node, Method::Post, "/nodes/{node}/qemu", params.clone()).await;
    assert_eq!(
        ok(&node, Method::Get, CONFIG, json!({"vmid": 200})).await["lock"],
        "create"
    );
    assert_eq!(wait(&node, &upid).await["exitstatus"], "OK");
    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 200})).await;
    assert_eq!(config["scsi0"], "local-lvm:vm-200-disk-0,size=3G");
    assert_eq!(config["ide2"], "local-lvm:vm-200-cloudinit,media=cdrom");
    let net = config["net0"].as_str().unwrap_or_default();
    assert!(
        net.starts_with("virtio=BC:24:11:") && net.ends_with(",bridge=vmbr0"),
        "{net}"
    );

    let again = call(&node, Method::Post, "/nodes/{node}/qemu", params).await;
    assert_eq!(
        again.expect_err("taken").message,
        "unable to create VM 200: config file already exists"
    );

    let template = "/nodes/{node}/qemu/{vmid}/template";
    let (_, status) = run_task(&node, Method::Post, template, json!({"vmid": 200})).await;
    assert_eq!(status["exitstatus"], "OK");
    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 200})).await;
    assert_eq!(
        (config["template"].clone(), config["scsi0"].clone()),
        (json!(1), json!("local-lvm:base-200-disk-0,size=3G"))
    );
    let twice = call(&node, Method::Post, template, json!({"vmid": 200})).await;
    assert_eq!(
        twice.expect_err("template").message,
        "you can't convert a template to a template"
    );

    clone_template(&node, 150).await;
    start(&node, 150).await;
    let running = call(&node, Method::Post, template, json!({"vmid": 150})).await;
    assert_eq!(
        running.expect_err("running").message,
        "you can't convert a VM to template if VM is running"
    );
}

#[tokio::test]
async fn boot_order_follows_deleted_devices_and_rejects_unknown_ones() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "delete": "ide2"}),
    )
    .await;
    let config = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(config["boot"], "order=scsi0;net0");
    assert!(config.get("ide2").is_none());
    let bad = call(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "boot": "order=scsi9"}),
    )
    .await;
    assert_eq!(
        bad.expect_err("bad order").message,
        "invalid bootorder: device 'scsi9' does not exist'"
    );
}

fn faulty(faults: TaskFaults) -> Node {
    Node::in_memory(NodeOptions {
        faults,
        ..fast_options()
    })
}

#[tokio::test]
async fn injected_faults_fail_inside_tasks() {
    let always = TaskFaults {
        lock_timeout: 1.0,
        ..TaskFaults::default()
    };
    let node = faulty(always);
    let (_, status) = run_task(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150}),
    )
    .await;
    assert_eq!(
        status["exitstatus"],
        "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout"
    );
    assert!(
        call(&node, Method::Get, CONFIG, json!({"vmid": 150}))
            .await
            .is_err(),
        "a failed clone leaves no target"
    );
    let (_, status) = run_task(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/status/stop",
        json!({"vmid": 1001}),
    )
    .await;
    assert_eq!(
        status["exitstatus"],
        "can't lock file '/var/lock/qemu-server/lock-1001.conf' - got timeout"
    );

    let node = faulty(TaskFaults {
        task_fail: 1.0,
        ..TaskFaults::default()
    });
    let (upid, status) = run_task(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150}),
    )
    .await;
    assert!(
        status["exitstatus"]
            .as_str()
            .is_some_and(|text| text.starts_with("clone failed: ")),
        "{status}"
    );
    assert!(
        task_log(&node, &upid)
            .await
            .last()
            .is_some_and(|line| line.starts_with("TASK ERROR: clone failed: "))
    );

    let node = faulty(TaskFaults {
        agent_never: 1.0,
        ..TaskFaults::default()
    });
    clone_template(&node, 150).await;
    start(&node, 150).await;
    tokio::time::sleep(Duration::from_millis(260)).await;
    let ping = call(
        &node,
        Method::Post,
        "/nodes/{node}/qemu/{vmid}/agent/ping",
        json!({"vmid": 150}),
    )
    .await;
    assert_eq!(
        ping.expect_err("never up").message,
        "QEMU guest agent is not running"
    );
}

#[tokio::test]
async fn parallel_clones_share_the_template_but_wait_for_exclusive_holders() {
    let node = Node::in_memory(fast_options());
    let mut upids = Vec::new();
    for newid in 150..156 {
        let params = json!({"vmid": 1001, "newid": newid, "full": true});
        upids.push(ok(&node, Method::Post, CLONE, params).await);
    }
    for upid in &upids {
        assert_eq!(
            wait(&node, upid).await["exitstatus"],
            "OK",
            "clones hold the template shared"
        );
    }

    let mut options = fast_options();
    options.durations.config = Duration::from_secs(100);
    let node = Node::in_memory(options);
    let update = ok(
        &node,
        Method::Post,
        CONFIG,
        json!({"vmid": 1001, "tags": "golden"}),
    )
    .await;
    let (_, status) = run_task(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150}),
    )
    .await;
    assert_eq!(
        status["exitstatus"],
        "can't lock file '/var/lock/qemu-server/lock-1001.conf' - got timeout"
    );
    assert!(
        call(&node, Method::Get, CONFIG, json!({"vmid": 150}))
            .await
            .is_err(),
        "no target is left"
    );
    assert_eq!(wait(&node, &update).await["exitstatus"], "OK");
}

#[tokio::test]
async fn download_url_registers_a_volume_without_fetching() {
    let node = Node::in_memory(fast_options());
    let path = "/nodes/{node}/storage/{storage}/download-url";
    let params = json!({"storage": "local", "content": "import", "filename": "noble.qcow2", "url": "https://example.invalid/noble.qcow2"});
    let (upid, status) = run_task(&node, Method::Post, path, params.clone()).await;
    assert_eq!(status["exitstatus"], "OK");
    assert!(
        upid.as_str()
            .is_some_and(|upid| upid.contains(":download:noble.qcow2:")),
        "{upid}"
    );
    let content = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"storage": "local", "content": "import"}),
    )
    .await;
    assert!(
        content
            .as_array()
            .into_iter()
            .flatten()
            .any(|item| item["volid"] == "local:import/noble.qcow2"),
        "{content}"
    );
    let again = call(&node, Method::Post, path, params).await;
    assert_eq!(
        again.expect_err("exists").message,
        "refusing to override existing file '/var/lib/vz/import/noble.qcow2'"
    );
    let wrong = call(&node, Method::Post, path, json!({"storage": "local-lvm", "content": "iso", "filename": "a.iso", "url": "https://example.invalid/a.iso"})).await;
    assert_eq!(
        wrong.expect_err("no iso").message,
        "storage 'local-lvm' is not configured for content-type 'iso'"
    );
}

/// State-only guests "download" zero bytes, whose SHA-256 is well known; a wrong checksum
/// fails the task with PVE's message and registers nothing.
#[tokio::test]
async fn download_url_verifies_a_sha256_checksum_like_pve() {
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let node = Node::in_memory(fast_options());
    let path = "/nodes/{node}/storage/{storage}/download-url";
    let request = |filename: &str, checksum: &str| {
        json!({"storage": "local", "content": "import", "filename": filename,
               "url": "https://example.invalid/x.qcow2", "checksum": checksum,
               "checksum-algorithm": "sha256"})
    };
    let (_, good) = run_task(
        &node,
        Method::Post,
        path,
        request("good.qcow2", &EMPTY_SHA256.to_uppercase()),
    )
    .await;
    assert_eq!(good["exitstatus"], "OK");
    let wrong = "0".repeat(64);
    let (_, bad) = run_task(&node, Method::Post, path, request("bad.qcow2", &wrong)).await;
    assert_eq!(
        bad["exitstatus"],
        format!("checksum mismatch: got '{EMPTY_SHA256}' != expect '{wrong}'")
    );
    let content = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"storage": "local", "content": "import"}),
    )
    .await
    .to_string();
    assert!(content.contains("local:import/good.qcow2"), "{content}");
    assert!(!content.contains("bad.qcow2"), "{content}");
    let unpaired = call(
        &node,
        Method::Post,
        path,
        json!({"storage": "local", "content": "import",
        "filename": "c.qcow2", "url": "https://example.invalid/c.qcow2", "checksum": EMPTY_SHA256}),
    )
    .await;
    assert!(
        unpaired
            .expect_err("needs the algorithm")
            .errors
            .contains_key("checksum-algorithm"),
        "a checksum without its algorithm is a parameter error"
    );
}

#[test]
fn absurd_time_factors_never_panic() {
    use crate::node::{LONGEST_WAIT, multiply};
    let second = Duration::from_secs(1);
    assert_eq!(multiply(second, f64::NAN), Duration::ZERO);
    assert_eq!(multiply(second, -3.0), Duration::ZERO);
    assert_eq!(multiply(second, 1e300), LONGEST_WAIT);
    assert_eq!(multiply(second, 0.5), Duration::from_millis(500));
}

#[tokio::test]
async fn a_panicking_task_ends_with_unexpected_status_and_releases_its_locks() {
    use crate::node::locks::{self, LockMode};
    use crate::node::tasks::{self, TaskContext, TaskSpec};
    let node = Node::in_memory(fast_options());
    let shared = std::sync::Arc::clone(&node.shared);
    let spec = TaskSpec {
        kind: "qmstart",
        node: "lloyd".into(),
        id: "150".into(),
        user: "root@pam".into(),
        duration: Duration::ZERO,
    };
    let upid = shared.write(|state| {
        tasks::spawn(&shared, state, spec, |context: TaskContext| async move {
            context
                .acquire(&locks::vm_lock(150), LockMode::Exclusive)
                .await?;
            assert!(context.upid.is_empty(), "a bug in a task body");
            Ok(())
        })
    });
    let status = wait(&node, &json!(upid)).await;
    assert_eq!(status["exitstatus"], "unexpected status");
    let log = ok(
        &node,
        Method::Get,
        "/nodes/{node}/tasks/{upid}/log",
        json!({"upid": upid}),
    )
    .await;
    assert_eq!(
        log.as_array()
            .and_then(|lines| lines.last())
            .map(|line| line["t"].clone()),
        Some(json!("TASK ERROR: unexpected status"))
    );
    assert!(
        shared
            .locks
            .try_acquire(&locks::vm_lock(150), LockMode::Exclusive),
        "the dead task's lock is released"
    );
}
