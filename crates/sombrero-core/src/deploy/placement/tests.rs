//! The placement rule on hand-made clusters: each reason to set a node aside, the
//! memory order and the tie by name.

use super::{Cluster, NodeFacts, Request, StorageFacts, TemplateSite, choose};
use crate::deploy::DeployError;
use crate::settings::NodeChoice;

const GIB: u64 = 1024 * 1024 * 1024;

fn node(name: &str, online: bool, free_gib: u64) -> NodeFacts {
    NodeFacts {
        name: name.to_owned(),
        online,
        maxmem: 64 * GIB,
        mem: (64 - free_gib) * GIB,
    }
}

fn storage(node: &str, storage: &str, shared: bool) -> StorageFacts {
    StorageFacts {
        node: node.to_owned(),
        storage: storage.to_owned(),
        shared,
        images: true,
        available: true,
    }
}

/// Three nodes, each with `local-lvm`, all seeing `shared`.
fn cluster(free: [(bool, u64); 3]) -> Cluster {
    let names = ["lloyd", "pve2", "pve3"];
    let mut cluster = Cluster::default();
    for (name, (online, gib)) in names.iter().zip(free) {
        cluster.nodes.push(node(name, online, gib));
        cluster.storages.push(storage(name, "local-lvm", false));
        cluster.storages.push(storage(name, "shared", true));
    }
    cluster
}

fn site(node: &str, storage: &str) -> TemplateSite {
    TemplateSite {
        vmid: 9000,
        node: node.to_owned(),
        storages: vec![storage.to_owned()],
    }
}

/// A full clone onto `shared` (the VMs of a cluster with shared storage).
fn place(cluster: &Cluster, choice: &NodeChoice, site: &TemplateSite) -> Result<String, String> {
    place_on(cluster, choice, site, "shared")
}

fn place_on(
    cluster: &Cluster,
    choice: &NodeChoice,
    site: &TemplateSite,
    disk_storage: &str,
) -> Result<String, String> {
    let request = Request {
        choice,
        memory_mib: 4096,
        template: Some(site),
        disk_storage: Some(disk_storage),
    };
    choose(cluster, &request)
        .map(|placement| placement.node)
        .map_err(|error| error.to_string())
}

#[test]
fn auto_takes_the_most_free_memory_and_breaks_ties_by_name() {
    let shared = site("lloyd", "shared");
    let cluster = cluster([(true, 10), (true, 30), (true, 20)]);
    assert_eq!(place(&cluster, &NodeChoice::Auto, &shared).unwrap(), "pve2");
    let tied = self::cluster([(true, 20), (true, 20), (true, 20)]);
    assert_eq!(place(&tied, &NodeChoice::Auto, &shared).unwrap(), "lloyd");
    let among = NodeChoice::Among(vec!["pve3".into(), "lloyd".into()]);
    assert_eq!(place(&cluster, &among, &shared).unwrap(), "pve3");
}

#[test]
fn offline_nodes_and_local_templates_are_set_aside_with_their_reason() {
    let cluster = cluster([(true, 10), (false, 30), (true, 20)]);
    // The template's disk is local to lloyd: only lloyd can clone it.
    let local = site("lloyd", "local-lvm");
    assert_eq!(place(&cluster, &NodeChoice::Auto, &local).unwrap(), "lloyd");
    let placement = choose(
        &cluster,
        &Request {
            choice: &NodeChoice::Auto,
            memory_mib: 4096,
            template: Some(&local),
            disk_storage: Some("shared"),
        },
    )
    .unwrap();
    assert!(
        placement.reason.contains("pve2: offline"),
        "{}",
        placement.reason
    );
    assert!(
        placement
            .reason
            .contains("pve3: template 9000 is on local-lvm, local to lloyd"),
        "{}",
        placement.reason
    );
    // On shared storage the offline node is still skipped.
    let shared = site("lloyd", "shared");
    assert_eq!(place(&cluster, &NodeChoice::Auto, &shared).unwrap(), "pve3");
}

#[test]
fn a_fixed_node_is_used_or_refused_by_name() {
    let cluster = cluster([(true, 10), (false, 30), (true, 20)]);
    let shared = site("lloyd", "shared");
    let named = |name: &str| NodeChoice::Named(name.to_owned());
    assert_eq!(place(&cluster, &named("lloyd"), &shared).unwrap(), "lloyd");
    let request = Request {
        choice: &named("pve2"),
        memory_mib: 4096,
        template: Some(&shared),
        disk_storage: None,
    };
    assert!(matches!(
        choose(&cluster, &request),
        Err(DeployError::NodeOffline { node, .. }) if node == "pve2"
    ));
    let unknown = place(&cluster, &named("pve9"), &shared).unwrap_err();
    assert!(
        unknown.contains("pve9") && unknown.contains("lloyd, pve2, pve3"),
        "{unknown}"
    );
}

#[test]
fn nothing_fits_lists_every_node_with_its_reason() {
    let cluster = cluster([(true, 2), (false, 30), (true, 3)]);
    let error = place(&cluster, &NodeChoice::Auto, &site("lloyd", "shared")).unwrap_err();
    for expected in ["lloyd: 2.0 GiB free", "pve2: offline", "pve3: 3.0 GiB free"] {
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn a_full_clone_needs_its_disk_storage_on_the_node() {
    let mut cluster = cluster([(true, 10), (true, 30), (true, 20)]);
    cluster
        .storages
        .retain(|s| !(s.node == "pve2" && s.storage == "shared"));
    let shared = site("lloyd", "shared");
    // pve2 does not see the shared storage at all: neither template nor disks.
    assert_eq!(place(&cluster, &NodeChoice::Auto, &shared).unwrap(), "pve3");
}

#[test]
fn a_full_clone_onto_local_storage_stays_on_the_templates_node() {
    // PVE refuses a clone to another node onto non-shared storage, so with local-lvm only
    // the template's own node qualifies, however much memory the others have.
    let cluster = cluster([(true, 10), (true, 30), (true, 20)]);
    let shared = site("lloyd", "shared");
    assert_eq!(
        place_on(&cluster, &NodeChoice::Auto, &shared, "local-lvm").unwrap(),
        "lloyd"
    );
    let named = NodeChoice::Named("pve2".into());
    let error = place_on(&cluster, &named, &shared, "local-lvm").unwrap_err();
    assert!(error.contains("disk_storage local-lvm is local"), "{error}");
}

#[test]
fn node_choices_parse_from_text_and_refuse_bad_names() {
    assert_eq!(NodeChoice::parse(" AUTO ").unwrap(), NodeChoice::Auto);
    assert_eq!(
        NodeChoice::parse("lloyd").unwrap(),
        NodeChoice::Named("lloyd".into())
    );
    assert_eq!(
        NodeChoice::parse("pve2, pve3,pve2").unwrap(),
        NodeChoice::Among(vec!["pve2".into(), "pve3".into()])
    );
    assert!(NodeChoice::parse("pve2,auto").unwrap_err().contains("auto"));
    assert!(
        NodeChoice::parse("pve_2")
            .unwrap_err()
            .contains("\"pve_2\"")
    );
    assert!(NodeChoice::parse("").is_err());
}

#[test]
fn a_named_node_holding_the_template_leaves_storage_errors_to_the_preflight() {
    // `plan` names a missing storage with the storages that exist; placement must not
    // replace that error with its own when the clone stays on the template's node.
    let cluster = cluster([(true, 10), (true, 30), (true, 20)]);
    let here = site("lloyd", "local-lvm");
    let named = NodeChoice::Named("lloyd".into());
    assert_eq!(
        place_on(&cluster, &named, &here, "ceph-pool").unwrap(),
        "lloyd"
    );
    let elsewhere = NodeChoice::Named("pve2".into());
    let error = place_on(&cluster, &elsewhere, &here, "ceph-pool").unwrap_err();
    assert!(error.contains("local to lloyd"), "{error}");
}
