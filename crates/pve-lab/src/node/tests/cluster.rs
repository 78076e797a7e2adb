//! The lab as a three-node cluster: membership, per-node and shared storage, clones with
//! `target`, migrations, and a node going down.

use serde_json::{Value, json};

use super::{CLONE, CONFIG, STATUS, call, fast_options, ok, task_log, wait};
use crate::api::Method;
use crate::node::{ClusterError, Node, NodeOptions};

const MIGRATE: &str = "/nodes/{node}/qemu/{vmid}/migrate";
const START: &str = "/nodes/{node}/qemu/{vmid}/status/start";

fn cluster_options(template_storage: &str) -> NodeOptions {
    let mut options = fast_options();
    options
        .set_nodes(["lloyd", "pve2", "pve3"])
        .expect("valid names");
    options.template_storage = Some(template_storage.to_owned());
    options
}

fn cluster(template_storage: &str) -> Node {
    Node::in_memory(cluster_options(template_storage))
}

/// Runs a task-starting call and waits for its end; returns (status, log).
async fn task(node: &Node, method: Method, template: &str, params: Value) -> (Value, Vec<String>) {
    let upid = ok(node, method, template, params).await;
    let status = wait_on(node, &upid).await;
    let log = task_log_on(node, &upid).await;
    (status, log)
}

/// The task endpoints live on the UPID's node, which [`wait`] assumes is `lloyd`.
async fn wait_on(node: &Node, upid: &Value) -> Value {
    let owner = upid
        .as_str()
        .unwrap_or_default()
        .split(':')
        .nth(1)
        .unwrap_or_default();
    assert_eq!(owner, "lloyd", "these tests start tasks on lloyd: {upid}");
    wait(node, upid).await
}

async fn task_log_on(node: &Node, upid: &Value) -> Vec<String> {
    task_log(node, upid).await
}

async fn clone_on(node: &Node, newid: u32, params: Value) -> Result<Value, crate::api::ApiError> {
    let mut params = params;
    params["vmid"] = json!(1001);
    params["newid"] = json!(newid);
    call(node, Method::Post, CLONE, params).await
}

#[tokio::test]
async fn every_member_answers_and_the_lists_span_the_cluster() {
    let node = cluster("local-lvm");
    let nodes = ok(&node, Method::Get, "/nodes", json!({})).await;
    let names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["node"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lloyd", "pve2", "pve3"]);
    let status = ok(&node, Method::Get, "/cluster/status", json!({})).await;
    assert_eq!(status[0]["type"], "cluster");
    assert_eq!(status[0]["nodes"], 3);
    assert_eq!(status[0]["quorate"], 1);
    assert_eq!(status[1]["name"], "lloyd");
    assert_eq!(status[1]["local"], 1);
    assert_eq!(status[2]["local"], 0);
    assert_eq!(status[3]["ip"], "127.0.0.3");
    for member in ["lloyd", "pve2", "pve3"] {
        let status = ok(
            &node,
            Method::Get,
            "/nodes/{node}/status",
            json!({"node": member}),
        )
        .await;
        assert!(status["memory"]["total"].as_u64().unwrap() > 0);
        let storages = ok(
            &node,
            Method::Get,
            "/nodes/{node}/storage",
            json!({"node": member}),
        )
        .await;
        let ids: Vec<(&str, u64)> = storages
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["storage"].as_str().unwrap(),
                    item["shared"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ids, [("local", 0), ("local-lvm", 0), ("shared", 1)]);
        let images = ok(
            &node,
            Method::Get,
            "/nodes/{node}/storage/{storage}/content",
            json!({"node": member, "storage": "local"}),
        )
        .await;
        assert_eq!(
            images.as_array().unwrap().len(),
            1,
            "each node has its own cloud image"
        );
    }
    let unknown = call(
        &node,
        Method::Get,
        "/nodes/{node}/status",
        json!({"node": "pve9"}),
    )
    .await
    .unwrap_err();
    assert!(
        unknown.message.contains("hostname lookup 'pve9' failed"),
        "{unknown:?}"
    );
    let resources = ok(
        &node,
        Method::Get,
        "/cluster/resources",
        json!({"type": "storage"}),
    )
    .await;
    let shared: Vec<&str> = resources
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["storage"] == "shared")
        .map(|item| item["node"].as_str().unwrap())
        .collect();
    assert_eq!(
        shared,
        ["lloyd", "pve2", "pve3"],
        "shared storage once per node"
    );
}

#[tokio::test]
async fn a_single_node_lab_is_still_a_standalone_node() {
    let node = Node::in_memory(fast_options());
    let status = ok(&node, Method::Get, "/cluster/status", json!({})).await;
    assert_eq!(status.as_array().unwrap().len(), 1, "{status}");
    assert_eq!(status[0]["type"], "node");
    let storages = ok(&node, Method::Get, "/nodes/{node}/storage", json!({})).await;
    assert_eq!(
        storages.as_array().unwrap().len(),
        2,
        "no shared storage: {storages}"
    );
}

#[tokio::test]
async fn a_vm_is_addressed_on_its_node_and_ids_are_cluster_wide() {
    let node = cluster("shared");
    let (status, _) = task(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150, "target": "pve2"}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
    assert_eq!(node.vm_node(150).as_deref(), Some("pve2"));
    let config = ok(
        &node,
        Method::Get,
        CONFIG,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await;
    assert!(
        config["scsi0"].as_str().unwrap().starts_with("shared:"),
        "{config}"
    );
    let elsewhere = call(&node, Method::Get, CONFIG, json!({"vmid": 150}))
        .await
        .unwrap_err();
    assert_eq!(
        elsewhere.message,
        "Configuration file 'nodes/lloyd/qemu-server/150.conf' does not exist"
    );
    let on_pve2 = ok(
        &node,
        Method::Get,
        "/nodes/{node}/qemu",
        json!({"node": "pve2"}),
    )
    .await;
    assert_eq!(on_pve2.as_array().unwrap().len(), 1);
    let on_lloyd = ok(&node, Method::Get, "/nodes/{node}/qemu", json!({})).await;
    assert_eq!(on_lloyd[0]["vmid"], 1001);
    assert_eq!(
        ok(&node, Method::Get, "/cluster/nextid", json!({})).await,
        "100"
    );
    let taken = call(&node, Method::Get, "/cluster/nextid", json!({"vmid": 150}))
        .await
        .unwrap_err();
    assert_eq!(taken.status, 400);
    let resources = ok(
        &node,
        Method::Get,
        "/cluster/resources",
        json!({"type": "vm"}),
    )
    .await;
    let homes: Vec<(u64, &str)> = resources
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["vmid"].as_u64().unwrap(),
                item["node"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(homes, [(150, "pve2"), (1001, "lloyd")]);
    let taken_id = clone_on(&node, 150, json!({})).await.unwrap_err();
    assert!(
        taken_id.message.contains("config file already exists"),
        "{taken_id:?}"
    );
}

#[tokio::test]
async fn clones_to_another_node_follow_pve_storage_rules() {
    let local = cluster("local-lvm");
    let refused = clone_on(&local, 150, json!({"target": "pve2"}))
        .await
        .unwrap_err();
    assert_eq!(refused.status, 500);
    assert_eq!(
        refused.message,
        "can't clone VM to node 'pve2' (VM uses local storage)"
    );
    let refused = clone_on(
        &local,
        150,
        json!({"target": "pve2", "full": true, "storage": "shared"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.message,
        "can't clone VM to node 'pve2' (VM uses local storage)"
    );
    let stranger = clone_on(&local, 150, json!({"target": "pve9"}))
        .await
        .unwrap_err();
    assert_eq!(stranger.message, "no such cluster node 'pve9'");
    let shared = cluster("shared");
    let non_shared = clone_on(
        &shared,
        150,
        json!({"target": "pve2", "full": true, "storage": "local-lvm"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        non_shared.message,
        "can't clone to non-shared storage 'local-lvm'"
    );
    let upid = clone_on(&shared, 151, json!({"target": "pve3", "full": true}))
        .await
        .unwrap();
    assert!(
        upid.as_str().unwrap().starts_with("UPID:lloyd:"),
        "the source node's worker clones"
    );
    assert_eq!(wait_on(&shared, &upid).await["exitstatus"], "OK");
    assert_eq!(shared.vm_node(151).as_deref(), Some("pve3"));
    let upid = ok(
        &shared,
        Method::Post,
        START,
        json!({"node": "pve3", "vmid": 151}),
    )
    .await;
    assert!(
        upid.as_str().unwrap().starts_with("UPID:pve3:"),
        "tasks run on the VM's node: {upid}"
    );
    assert_eq!(wait_for(&shared, "pve3", &upid).await["exitstatus"], "OK");
}

#[tokio::test]
async fn migrations_move_vms_and_refuse_what_pve_refuses() {
    let node = cluster("local-lvm");
    let (status, _) = task(
        &node,
        Method::Post,
        CLONE,
        json!({"vmid": 1001, "newid": 150, "full": true}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK");
    let local_node = call(
        &node,
        Method::Post,
        MIGRATE,
        json!({"vmid": 150, "target": "lloyd"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (local_node.status, local_node.errors["target"].as_str()),
        (400, "target is local node.")
    );
    let stranger = call(
        &node,
        Method::Post,
        MIGRATE,
        json!({"vmid": 150, "target": "pve9"}),
    )
    .await
    .unwrap_err();
    assert_eq!(stranger.message, "no such cluster node 'pve9'");
    let (status, log) = task(
        &node,
        Method::Post,
        MIGRATE,
        json!({"vmid": 150, "target": "pve2"}),
    )
    .await;
    assert_eq!(status["exitstatus"], "OK", "{log:?}");
    assert_eq!(status["type"], "qmigrate");
    assert!(
        log.iter()
            .any(|line| line == "starting migration of VM 150 to node 'pve2' (127.0.0.2)"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|line| line.starts_with("migration finished successfully")),
        "{log:?}"
    );
    assert_eq!(node.vm_node(150).as_deref(), Some("pve2"));
    let disks = ok(
        &node,
        Method::Get,
        "/nodes/{node}/storage/{storage}/content",
        json!({"node": "pve2", "storage": "local-lvm", "vmid": 150}),
    )
    .await;
    assert_eq!(
        disks.as_array().unwrap().len(),
        2,
        "disk and cloud-init moved: {disks}"
    );
    let config = ok(
        &node,
        Method::Get,
        CONFIG,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await;
    assert!(config.get("lock").is_none(), "{config}");
    // Running on pve2: offline refused, online without with-local-disks fails in the task.
    let upid = ok(
        &node,
        Method::Post,
        START,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await;
    let started = wait_for(&node, "pve2", &upid).await;
    assert_eq!(started["exitstatus"], "OK");
    let offline = call(
        &node,
        Method::Post,
        MIGRATE,
        json!({"node": "pve2", "vmid": 150, "target": "pve3"}),
    )
    .await
    .unwrap_err();
    assert_eq!(offline.message, "can't migrate running VM without --online");
    let upid = ok(
        &node,
        Method::Post,
        MIGRATE,
        json!({"node": "pve2", "vmid": 150, "target": "pve3", "online": true}),
    )
    .await;
    let failed = wait_for(&node, "pve2", &upid).await;
    assert_eq!(failed["exitstatus"], "migration aborted");
    assert_eq!(node.vm_node(150).as_deref(), Some("pve2"));
    let upid = ok(
        &node,
        Method::Post,
        MIGRATE,
        json!({"node": "pve2", "vmid": 150, "target": "pve3", "online": true, "with-local-disks": true}),
    )
    .await;
    assert_eq!(wait_for(&node, "pve2", &upid).await["exitstatus"], "OK");
    assert_eq!(node.vm_node(150).as_deref(), Some("pve3"));
    let current = ok(
        &node,
        Method::Get,
        STATUS,
        json!({"node": "pve3", "vmid": 150}),
    )
    .await;
    assert_eq!(
        current["status"], "running",
        "an online migration keeps the VM running"
    );
    let nodes = ok(&node, Method::Get, "/nodes", json!({})).await;
    let used = |name: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["node"] == name)
            .unwrap()["mem"]
            .as_u64()
            .unwrap()
    };
    assert!(
        used("pve3") > used("pve2"),
        "memory follows the running VM: {nodes}"
    );
}

#[tokio::test]
async fn linked_clones_on_local_storage_cannot_migrate() {
    let node = cluster("local-lvm");
    super::clone_template(&node, 150).await;
    let (status, log) = task(
        &node,
        Method::Post,
        MIGRATE,
        json!({"vmid": 150, "target": "pve2"}),
    )
    .await;
    assert_eq!(status["exitstatus"], "migration aborted");
    assert!(
        log.iter()
            .any(|line| line.contains("as it's a clone of 'base-1001-disk-0'")),
        "{log:?}"
    );
}

async fn wait_for(node: &Node, owner: &str, upid: &Value) -> Value {
    for _ in 0..500 {
        let status = ok(
            node,
            Method::Get,
            "/nodes/{node}/tasks/{upid}/status",
            json!({"node": owner, "upid": upid}),
        )
        .await;
        if status["status"] == "stopped" {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("task {upid} did not finish");
}

#[tokio::test]
async fn a_node_that_goes_down_answers_as_pve_does_and_comes_back() {
    let node = cluster("shared");
    let upid = clone_on(&node, 150, json!({"target": "pve2"}))
        .await
        .unwrap();
    assert_eq!(wait_on(&node, &upid).await["exitstatus"], "OK");
    let upid = ok(
        &node,
        Method::Post,
        START,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await;
    assert_eq!(wait_for(&node, "pve2", &upid).await["exitstatus"], "OK");
    node.set_node_online("pve2", false).unwrap();
    assert_eq!(node.nodes_down(), ["pve2"]);
    let unreachable = call(
        &node,
        Method::Get,
        STATUS,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (unreachable.status, unreachable.message.as_str()),
        (595, "No route to host")
    );
    let nodes = ok(&node, Method::Get, "/nodes", json!({})).await;
    assert_eq!(nodes[1]["status"], "offline");
    assert!(nodes[1].get("mem").is_none());
    let status = ok(&node, Method::Get, "/cluster/status", json!({})).await;
    assert_eq!(status[2]["online"], 0);
    assert_eq!(status[0]["quorate"], 1, "two of three still form a quorum");
    let resources = ok(&node, Method::Get, "/cluster/resources", json!({})).await;
    let of = |id: &str| {
        resources
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(of("qemu/150")["status"], "unknown");
    assert_eq!(of("node/pve2")["status"], "offline");
    assert_eq!(of("storage/pve2/shared")["status"], "unknown");
    assert_eq!(of("storage/pve3/shared")["status"], "available");
    let to_down = ok(
        &node,
        Method::Post,
        MIGRATE,
        json!({"vmid": 1001, "target": "pve2"}),
    )
    .await;
    let (failed, log) = (
        wait_on(&node, &to_down).await,
        task_log_on(&node, &to_down).await,
    );
    assert_eq!(failed["exitstatus"], "migration aborted");
    assert!(
        log.iter()
            .any(|line| line.contains("Can't connect to destination address")),
        "{log:?}"
    );
    node.set_node_online("pve2", true).unwrap();
    let current = ok(
        &node,
        Method::Get,
        STATUS,
        json!({"node": "pve2", "vmid": 150}),
    )
    .await;
    assert_eq!(
        current["status"], "stopped",
        "the VM lost power with its node"
    );
    assert_eq!(
        node.set_node_online("pve9", false),
        Err(ClusterError::UnknownNode("pve9".into()))
    );
    node.set_nodes_down(&["pve2".into(), "pve3".into()])
        .unwrap();
    let status = ok(&node, Method::Get, "/cluster/status", json!({})).await;
    assert_eq!(status[0]["quorate"], 0);
    // Without quorum the cluster file system is read-only: reads answer, changes get
    // PVE's 500, on the node that is still up too.
    let refused = clone_on(&node, 160, json!({"full": 1})).await.unwrap_err();
    assert_eq!(
        (refused.status, refused.message.as_str()),
        (500, "cluster not ready - no quorum?")
    );
    let listed = call(
        &node,
        Method::Get,
        "/nodes/{node}/qemu",
        json!({"node": "lloyd"}),
    )
    .await;
    assert!(listed.is_ok(), "{listed:?}");
    node.set_nodes_down(&["pve3".into()]).unwrap();
    let upid = clone_on(&node, 160, json!({"full": 1}))
        .await
        .expect("two of three: quorate");
    wait_on(&node, &upid).await;
    node.set_nodes_down(&[]).unwrap();
    assert!(node.nodes_down().is_empty());
}

#[test]
fn node_names_follow_pve_rules() {
    let mut options = NodeOptions::default();
    assert!(options.set_nodes(["a", "b-2"]).is_ok());
    assert_eq!(options.cluster_nodes(), ["a", "b-2"]);
    for bad in ["-a", "a-", "a_b", "a.b", ""] {
        assert!(options.set_nodes([bad]).is_err(), "{bad}");
    }
    assert!(options.set_nodes(["a", "a"]).is_err());
    assert!(options.set_nodes(Vec::<String>::new()).is_err());
}
