//! Persistence: round trip, interrupted tasks, crash-safe writes.
//!
//! Why: `sombrero lab serve --state DIR` must survive restarts and crashes without ever
//! loading a torn file or silently starting over.

use serde_json::json;

use super::*;
use crate::api::Method;
use crate::node::persist::STATE_FILE;

fn persistent(dir: &std::path::Path) -> NodeOptions {
    NodeOptions {
        state_dir: Some(dir.to_path_buf()),
        ..fast_options()
    }
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::new(persistent(dir.path())).expect("first start");
    let upid = clone_template(&node, 150).await;
    let before = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    drop(node);
    assert!(
        !dir.path().join(format!("{STATE_FILE}.tmp")).exists(),
        "no temporary file is left"
    );

    let node = Node::new(persistent(dir.path())).expect("restart");
    let after = ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(after, before, "same config, same digest");
    let status = ok(
        &node,
        Method::Get,
        "/nodes/{node}/tasks/{upid}/status",
        json!({"upid": upid}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK");
    assert_eq!(
        ok(&node, Method::Get, "/cluster/nextid", json!({})).await,
        json!("100")
    );
    let taken = call(&node, Method::Get, "/cluster/nextid", json!({"vmid": 150})).await;
    assert_eq!(taken.expect_err("150 is taken").status, 400);
}

#[tokio::test]
async fn tasks_running_when_the_lab_died_are_marked_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = persistent(dir.path());
    options.time_scale = 1.0;
    let node = Node::new(options).expect("first start");
    let upid = ok(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150}),
    )
    .await;

    let reloaded = Node::new(persistent(dir.path())).expect("reload while the task runs");
    let status = ok(
        &reloaded,
        Method::Get,
        "/nodes/{node}/tasks/{upid}/status",
        json!({"upid": upid}),
    )
    .await;
    assert_eq!(
        (status["status"].clone(), status["exitstatus"].clone()),
        (json!("stopped"), json!("unexpected status"))
    );
    let log = task_log(&reloaded, &upid).await;
    assert!(
        log.last()
            .is_some_and(|line| line.starts_with("TASK ERROR: unexpected status")),
        "{log:?}"
    );
    let target = ok(&reloaded, Method::Get, CONFIG, json!({"vmid": 150})).await;
    assert_eq!(
        target["lock"], "clone",
        "like PVE, an interrupted clone leaves its lock behind"
    );
}

#[tokio::test]
async fn torn_or_corrupt_files_never_load_silently() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::new(persistent(dir.path())).expect("first start");
    clone_template(&node, 150).await;
    drop(node);
    std::fs::write(dir.path().join(format!("{STATE_FILE}.tmp")), b"{\"vms\": {").expect("write");
    let node = Node::new(persistent(dir.path())).expect("a stray temporary file is ignored");
    assert_eq!(
        ok(&node, Method::Get, CONFIG, json!({"vmid": 150})).await["name"],
        "jump"
    );
    drop(node);

    std::fs::write(dir.path().join(STATE_FILE), b"{\"vms\": {").expect("write");
    let error = Node::new(persistent(dir.path())).expect_err("a corrupt state file is an error");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

fn persistent_cluster(dir: &std::path::Path, names: &[&str]) -> NodeOptions {
    let mut options = persistent(dir);
    options.set_nodes(names).expect("valid names");
    options.template_storage = Some("shared".into());
    options
}

#[tokio::test]
async fn a_cluster_survives_a_restart_and_needs_its_members_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::new(persistent_cluster(dir.path(), &["lloyd", "pve2"])).expect("first start");
    let upid = ok(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150, "target": "pve2"}),
    )
    .await;
    assert_eq!(wait(&node, &upid).await["exitstatus"], "OK");
    drop(node);
    let node = Node::new(persistent_cluster(dir.path(), &["lloyd", "pve2"])).expect("restart");
    assert_eq!(node.vm_node(150).as_deref(), Some("pve2"));
    let config = ok(
        &node,
        Method::Get,
        CONFIG,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await;
    assert!(config["scsi0"].as_str().unwrap().starts_with("shared:"));
    drop(node);
    let error = Node::new(persistent_cluster(dir.path(), &["lloyd"])).expect_err("pve2 is missing");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("on node(s) pve2"), "{error}");
    // `--lab` reopens the project's lab as it was: the missing member joins.
    let mut joining = persistent_cluster(dir.path(), &["lloyd"]);
    joining.join_saved_nodes = true;
    let node = Node::new(joining).expect("pve2 joins");
    assert_eq!(node.vm_node(150).as_deref(), Some("pve2"));
    assert_eq!(node.node_online("pve2"), Some(true));
}

#[tokio::test]
async fn a_state_saved_before_clusters_loads_on_the_first_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(Node::new(persistent(dir.path())).expect("first start"));
    // Rewrite the file as a single-node lab wrote it: no `node` on VMs, storage keys bare.
    let path = dir.path().join(STATE_FILE);
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for vm in saved["vms"].as_object_mut().unwrap().values_mut() {
        vm.as_object_mut().unwrap().remove("node");
    }
    let volumes = saved["volumes"].as_object_mut().unwrap();
    let keys: Vec<String> = volumes.keys().cloned().collect();
    for key in keys {
        let value = volumes.remove(&key).unwrap();
        volumes.insert(key.trim_start_matches("lloyd/").to_owned(), value);
    }
    assert!(saved["volumes"].get("local-lvm").is_some());
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();

    let mut options = persistent(dir.path());
    options.set_nodes(["lloyd", "pve2"]).unwrap();
    let node = Node::new(options).expect("the old state loads");
    assert_eq!(node.vm_node(1001).as_deref(), Some("lloyd"));
    let content = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"storage": "local-lvm", "vmid": 1001}),
    )
    .await;
    assert_eq!(content.as_array().unwrap().len(), 2, "{content}");
    let imported = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"node": "pve2", "storage": "local"}),
    )
    .await;
    assert_eq!(
        imported.as_array().unwrap().len(),
        1,
        "a new member gets its cloud image"
    );
    clone_template(&node, 150).await;
}
