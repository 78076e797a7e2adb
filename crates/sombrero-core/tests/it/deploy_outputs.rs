//! The outputs of a real deploy against the documented schema (docs/outputs.md, read here
//! so the document and the files cannot drift apart), and the inventory through
//! `ansible-inventory` when Ansible is installed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::deploy::{client, deploy_env, desired, lab};

const DOC: &str = include_str!("../../../../docs/outputs.md");

/// `key -> type` from the document's terraform-outputs.json table.
fn documented_keys() -> BTreeMap<String, String> {
    DOC.lines()
        .skip_while(|line| !line.starts_with("## terraform-outputs.json"))
        .take_while(|line| !line.starts_with("## The inventory"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((key.to_owned(), (*cells.get(2)?).to_owned()))
        })
        .collect()
}

fn type_matches(value: &Value, documented: &str) -> bool {
    documented.split(" or ").any(|kind| match kind {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => false,
    })
}

#[tokio::test]
async fn outputs_follow_the_documented_schema_and_ansible_reads_the_inventory() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    deploy_env(&client, &desired("staging", dir.path()))
        .await
        .unwrap();
    let outputs_dir = dir.path().join("outputs");
    let text = std::fs::read_to_string(outputs_dir.join("terraform-outputs.json")).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().unwrap();
    let documented = documented_keys();
    assert!(
        documented.len() >= 14,
        "the table was not found: {documented:?}"
    );
    for (key, kind) in &documented {
        let field = object.get(key).unwrap_or_else(|| panic!("{key} missing"));
        assert!(type_matches(field, kind), "{key} should be {kind}: {field}");
    }
    for key in object.keys() {
        assert!(documented.contains_key(key), "{key} is not documented");
    }
    assert_eq!(value["vm_ip"], "192.168.10.252");
    let host = &value["ansible_inventory"]["all"]["hosts"]["jump-man"];
    assert_eq!(host["ansible_user"], "ansible");
    let args = value["ansible_inventory"]["all"]["vars"]["ansible_ssh_common_args"]
        .as_str()
        .unwrap();
    assert!(args.contains("StrictHostKeyChecking=yes") && !args.contains("=no"));

    let inventory = outputs_dir.join("staging").join("inventory.yml");
    let listed = std::process::Command::new("ansible-inventory")
        .arg("-i")
        .arg(&inventory)
        .arg("--list")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .output();
    let Ok(listed) = listed else {
        pve_lab::testing::skip(
            "outputs_follow_the_documented_schema_and_ansible_reads_the_inventory",
            "ansible-inventory is not installed (pip install ansible-core)",
        );
        return;
    };
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    // No warning about the inventory (e.g. a host variable with a reserved name); other
    // warnings (an interpreter deprecation) are not the inventory's business.
    let warnings = String::from_utf8_lossy(&listed.stderr);
    assert!(
        !warnings.contains("reserved name") && !warnings.contains(&*inventory.to_string_lossy()),
        "ansible-inventory warns about the inventory: {warnings}"
    );
    let parsed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let vars = &parsed["_meta"]["hostvars"]["jump-man"];
    assert_eq!(vars["ansible_host"], host["ansible_host"]);
    assert_eq!(vars["vm_id"], 152);
    assert_eq!(
        vars["vm_tags"],
        serde_json::json!(["jump-host", "sombrero", "staging"])
    );
    assert_eq!(vars["ansible_ssh_common_args"], args);
    assert!(
        parsed["jump_hosts"]["hosts"]
            .as_array()
            .is_some_and(|hosts| hosts.contains(&Value::from("jump-man"))),
        "{parsed}"
    );
}
