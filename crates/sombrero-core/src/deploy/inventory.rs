//! The Ansible inventory stage 3 reads: one object, written twice (inside
//! `terraform-outputs.json` as `ansible_inventory`, and as `inventory.yml`).
//!
//! Why an object and YAML written by hand: the original double-encoded the inventory as a
//! JSON string inside JSON, which broke every consumer. Here it is a plain object, and
//! `inventory.yml` is block YAML whose scalars are all JSON-quoted (JSON strings are valid
//! YAML double-quoted scalars), so no YAML library is needed and no value can be misread
//! (`yes`, `0755`, `1e3` stay strings). Host key checking stays on: the connection
//! arguments point at the `known_hosts` file sombrero pinned, never `StrictHostKeyChecking=no`.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

/// Everything the inventory needs.
#[derive(Debug, Clone)]
pub struct InventoryFacts<'a> {
    pub hostname: &'a str,
    /// Where Ansible connects (127.0.0.1 for a lab forward, else the VM's address).
    pub connect_host: String,
    /// `Some` only when not 22 (a lab forward).
    pub connect_port: Option<u16>,
    pub ssh_user: &'a str,
    /// `None`: the key is in the ssh-agent (no file to name).
    pub ssh_key_path: Option<&'a str>,
    pub known_hosts: &'a Path,
    pub environment: &'a str,
    pub vm_id: u32,
    pub node: &'a str,
    pub template_id: Option<u32>,
    pub ip_address: String,
    pub gateway: String,
    pub dns_servers: Vec<String>,
    pub cores: u32,
    pub memory_mib: u64,
    pub disk_size: String,
    pub tags: &'a [String],
}

/// Shell-quotes `text` for `ansible_ssh_common_args` (which Ansible splits like a shell).
fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The inventory object: `all.hosts.<name>`, `all.vars`, `all.children.jump_hosts`.
pub fn inventory(facts: &InventoryFacts<'_>) -> Value {
    let mut host = Map::new();
    host.insert("ansible_host".into(), json!(facts.connect_host));
    if let Some(port) = facts.connect_port {
        host.insert("ansible_port".into(), json!(port));
    }
    host.insert("ansible_user".into(), json!(facts.ssh_user));
    if let Some(path) = facts.ssh_key_path {
        host.insert("ansible_ssh_private_key_file".into(), json!(path));
    }
    host.insert(
        "ansible_python_interpreter".into(),
        json!("/usr/bin/python3"),
    );
    host.insert("vm_id".into(), json!(facts.vm_id));
    host.insert("proxmox_node".into(), json!(facts.node));
    host.insert("template_id".into(), json!(facts.template_id));
    host.insert("ip_address".into(), json!(facts.ip_address));
    host.insert("gateway".into(), json!(facts.gateway));
    host.insert("dns_servers".into(), json!(facts.dns_servers));
    host.insert("cores".into(), json!(facts.cores));
    host.insert("memory".into(), json!(facts.memory_mib));
    host.insert("disk_size".into(), json!(facts.disk_size));
    // Not `tags`: that is a reserved play keyword and Ansible warns about the variable.
    host.insert("vm_tags".into(), json!(facts.tags));
    let known_hosts = shell_quote(&facts.known_hosts.display().to_string());
    json!({
        "all": {
            "hosts": { facts.hostname: Value::Object(host) },
            "vars": {
                "ansible_ssh_common_args": format!(
                    "-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
                ),
                "deployment_environment": facts.environment,
            },
            "children": {
                "jump_hosts": { "hosts": { facts.hostname: {} } }
            }
        }
    })
}

/// A scalar (or an empty container) in JSON syntax, which YAML reads the same way.
fn scalar(value: &Value) -> String {
    value.to_string()
}

fn emit(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let key = Value::String(key.clone()).to_string();
                match item {
                    Value::Object(inner) if !inner.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        emit(out, item, indent + 2);
                    }
                    Value::Array(inner) if !inner.is_empty() => {
                        let _ = writeln!(out, "{pad}{key}:");
                        emit(out, item, indent + 2);
                    }
                    other => {
                        let _ = writeln!(out, "{pad}{key}: {}", scalar(other));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let _ = writeln!(out, "{pad}- {}", scalar(item));
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

/// `inventory` as YAML, with a header saying where it came from.
pub fn to_yaml(inventory: &Value, environment: &str) -> String {
    let mut out = format!(
        "# Ansible inventory for environment {environment}, written by `sombrero deploy`.\n\
         # Regenerated on every deploy; see docs/outputs.md.\n"
    );
    emit(&mut out, inventory, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::{InventoryFacts, inventory, to_yaml};
    use std::path::Path;

    #[test]
    fn yaml_quotes_every_scalar_and_keeps_host_key_checking() {
        let tags = vec!["sombrero".to_owned(), "staging".to_owned()];
        let facts = InventoryFacts {
            hostname: "jump-man",
            connect_host: "127.0.0.1".into(),
            connect_port: Some(40022),
            ssh_user: "ansible",
            ssh_key_path: Some("~/.ssh/jump-man-key"),
            known_hosts: Path::new("/tmp/my dir/known_hosts"),
            environment: "staging",
            vm_id: 152,
            node: "lloyd",
            template_id: Some(1001),
            ip_address: "192.168.10.252".into(),
            gateway: "192.168.10.1".into(),
            dns_servers: vec!["192.168.10.1".into()],
            cores: 2,
            memory_mib: 2048,
            disk_size: "32G".into(),
            tags: &tags,
        };
        let value = inventory(&facts);
        let host = &value["all"]["hosts"]["jump-man"];
        assert_eq!(host["ansible_port"], 40022);
        let args = value["all"]["vars"]["ansible_ssh_common_args"]
            .as_str()
            .unwrap();
        assert!(
            args.contains("UserKnownHostsFile='/tmp/my dir/known_hosts'"),
            "{args}"
        );
        assert!(args.contains("StrictHostKeyChecking=yes"));
        let yaml = to_yaml(&value, "staging");
        assert!(yaml.contains("\n      \"ansible_port\": 40022\n"), "{yaml}");
        assert!(
            yaml.contains("\"jump_hosts\":\n      \"hosts\":\n        \"jump-man\": {}\n"),
            "{yaml}"
        );
        assert!(yaml.contains("        - \"sombrero\"\n"), "{yaml}");
    }
}
