//! Which privileges each stage needs, by the paths the API checks them on (the schema's
//! `permissions` of every endpoint the stage calls), and which of them a token lacks.

use std::collections::BTreeMap;

use serde_json::Value;

/// The caller's effective privileges as `GET /access/permissions` returns them.
pub type Held = BTreeMap<String, BTreeMap<String, Value>>;

/// A privilege a stage needs on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub stage: &'static str,
    pub path: String,
    pub privilege: &'static str,
}

/// Configuring a VM (create, clone's settings, resize): every key sombrero sets.
const CONFIGURE_VM: [&str; 9] = [
    "VM.Allocate",
    "VM.Config.Disk",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Cloudinit",
    "VM.Config.Options",
    "VM.PowerMgmt",
    "VM.GuestAgent.Audit",
];

/// What each stage calls needs (PVE 9's privilege names).
pub fn needs(vmid: u32, template: Option<u32>, storage: &str, node: &str) -> Vec<Need> {
    let vm = format!("/vms/{vmid}");
    let template = template.map_or_else(|| "/vms".to_owned(), |id| format!("/vms/{id}"));
    let storage = format!("/storage/{storage}");
    let node = format!("/nodes/{node}");
    let mut list = Vec::new();
    let mut add = |stage, path: &str, privileges: &[&'static str]| {
        for privilege in privileges {
            list.push(Need {
                stage,
                path: path.to_owned(),
                privilege,
            });
        }
    };
    add("build", &template, &CONFIGURE_VM);
    add(
        "build",
        &template,
        &["VM.Config.HWType", "VM.GuestAgent.FileRead"],
    );
    add(
        "build",
        &storage,
        &[
            "Datastore.AllocateSpace",
            "Datastore.AllocateTemplate",
            "Datastore.Audit",
        ],
    );
    add("deploy", &template, &["VM.Clone", "VM.Audit"]);
    add("deploy", &vm, &CONFIGURE_VM);
    add("deploy", &vm, &["VM.Audit", "VM.GuestAgent.FileRead"]);
    add("deploy", &storage, &["Datastore.AllocateSpace"]);
    add("status and diagnose", &node, &["Sys.Audit"]);
    add("diagnose", &vm, &["VM.GuestAgent.Unrestricted"]);
    list
}

/// Whether `held` grants `privilege` on `path`: on the path itself or on a parent
/// (PVE propagates ACLs by default; `/access/permissions` lists where they are set).
pub fn holds(held: &Held, path: &str, privilege: &str) -> bool {
    let mut prefix = path.trim_end_matches('/').to_owned();
    loop {
        let key = if prefix.is_empty() {
            "/"
        } else {
            prefix.as_str()
        };
        if held
            .get(key)
            .is_some_and(|privileges| privileges.contains_key(privilege))
        {
            return true;
        }
        if prefix.is_empty() {
            return false;
        }
        match prefix.rfind('/') {
            Some(at) => prefix.truncate(at),
            None => prefix.clear(),
        }
    }
}

/// The needs `held` does not grant.
pub fn missing(held: &Held, needs: &[Need]) -> Vec<Need> {
    needs
        .iter()
        .filter(|need| !holds(held, &need.path, need.privilege))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held(value: serde_json::Value) -> Held {
        serde_json::from_value(value).expect("held")
    }

    #[test]
    fn privileges_propagate_from_parents_and_missing_ones_are_named() {
        let held = held(json!({
            "/": {"Sys.Audit": 1, "VM.Audit": 1},
            "/vms/150": {"VM.PowerMgmt": 1},
        }));
        assert!(holds(&held, "/vms/150", "VM.Audit"), "from /");
        assert!(holds(&held, "/vms/150", "VM.PowerMgmt"));
        assert!(!holds(&held, "/vms/151", "VM.PowerMgmt"));
        let needs = needs(150, Some(1001), "local-lvm", "pve1");
        let missing = missing(&held, &needs);
        assert!(
            missing
                .iter()
                .any(|need| need.privilege == "VM.Clone" && need.path == "/vms/1001")
        );
        assert!(!missing.iter().any(|need| need.privilege == "Sys.Audit"));
        let everything: Held = needs
            .iter()
            .map(|need| {
                (
                    need.path.clone(),
                    BTreeMap::from([(need.privilege.to_owned(), json!(1))]),
                )
            })
            .fold(Held::new(), |mut all, (path, privileges)| {
                all.entry(path).or_default().extend(privileges);
                all
            });
        assert!(super::missing(&everything, &needs).is_empty());
    }
}
