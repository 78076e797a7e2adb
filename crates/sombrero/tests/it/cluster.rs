//! Issue 16's cluster tests, through the binary, on a three-node lab (`lloyd`, `pve2`,
//! `pve3`; template 1001 on the shared storage): `node = "auto"` puts the three
//! environments where the rule says; a deploy after `sombrero migrate` changes nothing; a
//! node taken down makes `plan` choose another node (auto) or fail naming it (fixed), and
//! the template's node taken down is named too, and so is a cluster without quorum; a plan
//! reads `/cluster/resources` once.

use serde_json::Value;

use crate::sandbox::{Sandbox, pointed_at_lab};

const NODES: [&str; 3] = ["lloyd", "pve2", "pve3"];

/// A state-only three-node lab in this process, its tasks at a tenth of their durations.
async fn three_nodes() -> pve_lab::LabHandle {
    let mut options = pve_lab::LabOptions::for_tests()
        .with_nodes(NODES)
        .expect("node names");
    options.node.with_template = true;
    options.node.time_scale = 0.1;
    pve_lab::Lab::start(options).await.expect("lab starts")
}

/// The shipped configuration with `node` set to `node` and the VMs' disks on the shared
/// storage (a full clone to another node than the template's needs it, as on PVE).
fn configured(lab: &pve_lab::LabHandle, node: &str) -> Sandbox {
    let sandbox = pointed_at_lab(lab);
    let config = crate::sandbox::SHIPPED_CONFIG
        .replacen("node = \"lloyd\"", &format!("node = \"{node}\""), 1)
        .replacen(
            "disk_storage = \"local-lvm\"",
            "disk_storage = \"shared\"",
            1,
        );
    assert!(config.contains(&format!("node = \"{node}\"")));
    assert!(config.contains("disk_storage = \"shared\""));
    sandbox.write("sombrero.toml", &config);
    sandbox
}

fn auto(lab: &pve_lab::LabHandle) -> Sandbox {
    configured(lab, "auto")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_places_each_environment_on_the_node_with_the_most_free_memory() {
    let lab = three_nodes().await;
    let sandbox = auto(&lab);
    let requests = lab.requests();
    let sandbox = tokio::task::spawn_blocking(move || {
        // All three nodes start equal: the tie goes to the first name; each running VM
        // then takes its memory from its node, so the next goes to the next node.
        for environment in ["production", "staging", "development"] {
            requests.clear();
            let plan = sandbox
                .run(&["plan", "--env", environment, "--json"])
                .expect_code(0);
            // Placement, the template and the address check share one read of the
            // cluster (it lists every VM and storage: slow on a big cluster).
            assert_eq!(
                requests.count("GET", "/cluster/resources"),
                1,
                "{:?}",
                requests.snapshot()
            );
            let plan = json(&plan.stdout);
            let reason = plan["placement"]["reason"].as_str().expect("reason");
            assert!(reason.contains("most free memory"), "{reason}");
            sandbox
                .run(&["deploy", "--env", environment, "--yes"])
                .expect_code(0)
                .stderr_has(&format!("node {}", plan["node"].as_str().expect("node")));
        }
        sandbox
    })
    .await
    .expect("cli");
    let placed: Vec<_> = [150, 152, 151]
        .iter()
        .map(|vmid| lab.node().vm_node(*vmid).expect("VM exists"))
        .collect();
    assert_eq!(placed, ["lloyd", "pve2", "pve3"]);
    // status shows where each VM is, read from the cluster.
    tokio::task::spawn_blocking(move || {
        let status = sandbox
            .run(&["status", "--env", "staging", "--json"])
            .expect_code(0);
        assert_eq!(json(&status.stdout)["node"], "pve2");
    })
    .await
    .expect("cli");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_after_a_migration_changes_nothing_and_keeps_the_vm_where_it_is() {
    let lab = three_nodes().await;
    // A fixed node: the VM is found on pve3 all the same and is not moved back.
    let sandbox = configured(&lab, "lloyd");
    let sandbox = tokio::task::spawn_blocking(move || {
        sandbox
            .run(&["deploy", "--env", "production", "--yes"])
            .expect_code(0);
        sandbox
            .run(&["migrate", "--env", "production", "--to", "pve3"])
            .expect_code(1)
            .stderr_has("is running")
            .stderr_has("--online");
        sandbox
            .run(&["migrate", "--env", "production", "--to", "pve9", "--online"])
            .expect_code(1)
            .stderr_has("node pve9 is not part of the cluster");
        let moved = sandbox
            .run(&["migrate", "--env", "production", "--to", "pve3", "--online"])
            .expect_code(0);
        assert!(
            moved.stdout.contains("moved from lloyd to pve3 (live)."),
            "{}",
            moved.stdout
        );
        sandbox
    })
    .await
    .expect("cli");
    assert_eq!(lab.node().vm_node(150).as_deref(), Some("pve3"));
    tokio::task::spawn_blocking(move || {
        let outputs_dir = sandbox.path().join("deployments/outputs");
        let outputs = json(
            &std::fs::read_to_string(outputs_dir.join("production/terraform-outputs.json"))
                .expect("outputs"),
        );
        assert_eq!(outputs["node"], "pve3");
        let inventory =
            std::fs::read_to_string(outputs_dir.join("production/inventory.yml")).expect("inv");
        assert!(
            inventory.contains("\"proxmox_node\": \"pve3\""),
            "{inventory}"
        );
        let again = sandbox
            .run(&["deploy", "--env", "production", "--yes"])
            .expect_code(0)
            .stderr_has("action: no changes")
            .stderr_has(" 0 writes")
            .stderr_has("moved from the configured node lloyd");
        assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);
        // Already there: nothing is sent.
        sandbox
            .run(&["migrate", "--env", "production", "--to", "pve3", "--online"])
            .expect_code(0)
            .stdout
            .contains("already on pve3")
            .then_some(())
            .expect("already on pve3");
        // diagnose looks at the VM where it is, not on the configured node.
        let diagnosis = sandbox.run(&["diagnose", "--env", "production"]);
        assert!(
            diagnosis.stderr.contains("looking at VM 150 on node pve3"),
            "{}",
            diagnosis.stderr
        );
        assert!(!diagnosis.stdout.contains("595"), "{}", diagnosis.stdout);
        let history = sandbox.run(&["history", "--json"]).expect_code(0);
        let runs = json(&history.stdout);
        let commands: Vec<_> = runs["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|run| run["command"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            commands.iter().filter(|c| *c == "migrate").count(),
            4,
            "refused and done migrations are recorded: {commands:?}"
        );
    })
    .await
    .expect("cli");
    assert_eq!(lab.node().vm_node(150).as_deref(), Some("pve3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_taken_down_is_avoided_with_auto_and_named_when_fixed() {
    let lab = three_nodes().await;
    let fixed = configured(&lab, "pve2");
    let automatic = auto(&lab);
    // Production first (auto: lloyd, by name); staging would then go to pve2.
    let automatic = tokio::task::spawn_blocking(move || {
        automatic
            .run(&["deploy", "--env", "production", "--yes"])
            .expect_code(0);
        let plan = automatic
            .run(&["plan", "--env", "staging", "--json"])
            .expect_code(0);
        assert_eq!(json(&plan.stdout)["node"], "pve2");
        automatic
    })
    .await
    .expect("cli");
    lab.node()
        .set_node_online("pve2", false)
        .expect("pve2 down");
    let automatic = tokio::task::spawn_blocking(move || {
        fixed
            .run(&["plan", "--env", "staging"])
            .expect_code(1)
            .stderr_has("node pve2 is offline")
            .stderr_has("node = \"auto\"");
        let plan = automatic
            .run(&["plan", "--env", "staging", "--json"])
            .expect_code(0);
        let plan = json(&plan.stdout);
        assert_eq!(plan["node"], "pve3");
        let reason = plan["placement"]["reason"].as_str().expect("reason");
        assert!(reason.contains("pve2: offline"), "{reason}");
        automatic
            .run(&["deploy", "--env", "staging", "--yes"])
            .expect_code(0);
        automatic
    })
    .await
    .expect("cli");
    assert_eq!(lab.node().vm_node(152).as_deref(), Some("pve3"));
    // The template's own node down: PVE clones a template on its node (it would answer
    // 595 for it), so no other node can clone it, shared storage or not; said in words.
    lab.node()
        .set_node_online("lloyd", false)
        .expect("lloyd down");
    let automatic = tokio::task::spawn_blocking(move || {
        automatic
            .run(&["plan", "--env", "development"])
            .expect_code(1)
            .stderr_has("template 1001 is on node lloyd, which is offline")
            .stderr_has("bring lloyd back online");
        automatic
    })
    .await
    .expect("cli");
    // Two of three down: no quorum, so PVE refuses every change. A change that reaches
    // PVE is refused in words, and a plan with changes says so before any write.
    lab.node()
        .set_nodes_down(&["lloyd".into(), "pve2".into()])
        .expect("two down");
    let automatic = tokio::task::spawn_blocking(move || {
        automatic
            .run(&["destroy", "--env", "staging", "--yes"])
            .expect_code(1)
            .stderr_has("the cluster has no quorum")
            .stderr_has("pvecm status");
        automatic
    })
    .await
    .expect("cli");
    assert_eq!(lab.node().vm_node(152).as_deref(), Some("pve3"));
    lab.node()
        .set_nodes_down(&["pve2".into(), "pve3".into()])
        .expect("two down");
    tokio::task::spawn_blocking(move || {
        automatic
            .run(&["plan", "--env", "development"])
            .expect_code(1)
            .stderr_has("the cluster has no quorum (1 of 3 nodes online: lloyd)");
    })
    .await
    .expect("cli");
}
