//! Tests of `sombrero.toml` parsing: positions, unknown keys, types, and the shipped file.

use std::fmt::Write as _;

use super::{ConfigFile, VM_KEYS, closest_key};

const SHIPPED: &str = include_str!("../../../../sombrero.toml");

#[test]
fn the_shipped_file_parses_with_three_environments() {
    let file = ConfigFile::parse("sombrero.toml", SHIPPED).expect("shipped file is valid");
    assert_eq!(
        file.environment_names(),
        ["development", "production", "staging"]
    );
    let staging = &file.document().environments["staging"];
    assert_eq!(staging.vmid.as_ref().map(|v| *v.get_ref()), Some(152));
}

#[test]
fn every_vm_key_is_accepted_by_the_typed_model() {
    let mut text = String::from("[defaults]\n");
    for key in VM_KEYS {
        let value = match *key {
            "nameservers" | "tags" | "ssh_allow_users" | "extra_authorized_keys" => "[]",
            "vmid" | "template_id" | "cores" | "memory_mib" | "balloon_mib" | "disk_size_gib" => {
                "1"
            }
            _ => "\"x\"",
        };
        writeln!(text, "{key} = {value}").expect("writing to a String");
    }
    text.push_str("[api]\nurl = \"x\"\ninsecure = true\nfingerprint = \"x\"\nca_file = \"x\"\nusername = \"x\"\n");
    text.push_str("[paths]\nhistory = \"x\"\noutputs_dir = \"x\"\nansible_dir = \"x\"\n");
    ConfigFile::parse("all.toml", text).expect("every documented key is accepted");
}

#[test]
fn syntax_errors_report_line_and_column() {
    let text = "[defaults]\nname = \"jump-man\"\ncores = = 2\n";
    let error = ConfigFile::parse("bad.toml", text).expect_err("not TOML");
    let message = error.to_string();
    assert!(message.starts_with("bad.toml:3:"), "{message}");
    assert!(message.contains("invalid TOML"), "{message}");
}

#[test]
fn all_unknown_keys_are_reported_with_suggestions() {
    let text =
        "[defaults]\nnmae = \"jump-man\"\nmemory = 2048\n\n[environments.staging]\nvmdi = 152\n";
    let error = ConfigFile::parse("s.toml", text).expect_err("unknown keys");
    assert_eq!(error.problems().len(), 3, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("s.toml:2:1: defaults.nmae: unknown key `nmae` (did you mean `name`?)"),
        "{message}"
    );
    assert!(
        message.contains("(did you mean `memory_mib`?)"),
        "{message}"
    );
    assert!(
        message.contains(
            "s.toml:6:1: environments.staging.vmdi: unknown key `vmdi` (did you mean `vmid`?)"
        ),
        "{message}"
    );
}

#[test]
fn secrets_in_the_file_get_a_specific_hint() {
    for key in ["token", "password"] {
        let text = format!("[api]\n{key} = \"x\"\n");
        let error = ConfigFile::parse("s.toml", text).expect_err("no secrets");
        let hints = error.hints().join("\n");
        assert!(hints.contains("TF_VAR_pve_api_token"), "{hints}");
        assert!(!error.to_string().contains("did you mean"), "{error}");
    }
}

#[test]
fn wrong_types_name_the_key_and_position() {
    let text = "[environments.staging]\nvmid = \"152\"\n";
    let error = ConfigFile::parse("s.toml", text).expect_err("vmid must be an integer");
    let message = error.to_string();
    assert!(
        message.starts_with("s.toml:2:8: environments.staging.vmid:"),
        "{message}"
    );
}

#[test]
fn suggestions_only_for_close_keys() {
    assert_eq!(closest_key("gatway", VM_KEYS).as_deref(), Some("gateway"));
    assert_eq!(closest_key("zzzzzz", VM_KEYS), None);
}
