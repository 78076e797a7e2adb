//! Clone rules, config updates, digests and nextid.
//!
//! Why: these are the behaviours stage 2 depends on and clients most often get wrong
//! (clone lock, digest races, delete warnings).

use serde_json::json;

use super::*;
use crate::api::Method;

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

#[tokio::test]
async fn linked_clone_holds_the_clone_lock_until_the_task_ends() {
    let node = Node::in_memory(slow_clone_options());
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
    let node = Node::in_memory(slow_clone_options());
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

    let skiplock = call(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "cores": 1, "skiplock": true}),
    )
    .await;
    assert_eq!(
        skiplock.expect_err("token").errors["skiplock"],
        "Only root may use this option."
    );

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
async fn cipassword_is_stored_hashed_and_shown_masked() {
    let node = Node::in_memory(fast_options());
    clone_template(&node, 150).await;
    ok(
        &node,
        Method::Put,
        CONFIG,
        json!({"vmid": 150, "cipassword": "s3cret"}),
    )
    .await;
    let shown = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(shown["cipassword"], "**********");
    let stored = node
        .shared
        .read(|state| state.vms[&150].config["cipassword"].clone());
    assert!(
        stored.starts_with("$5$") && !stored.contains("s3cret"),
        "{stored}"
    );
    let dump = "/nodes/{node}/qemu/{vmid}/cloudinit/dump";
    let user = ok(
        &node,
        Method::Get,
        dump,
        json!({"vmid": 150, "type": "user"}),
    )
    .await;
    assert!(
        user.as_str()
            .is_some_and(|text| text.contains(&format!("password: {stored}\n"))),
        "{user}"
    );
}
