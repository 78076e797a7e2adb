//! The documentation of the configuration cannot fall behind the code: every
//! `sombrero.toml` key and every `SOMBRERO_*` variable the shipped sources read has a row
//! in docs/configuration.md, every such variable is declared in `env_vars.rs` (issue 2:
//! "all declared in one documented module"; decision 016), and every setting variable
//! really sets the setting the documentation's table says, with itself as the source.

/// Every `SOMBRERO_*` name in `text` (a name starts with a letter after the prefix).
fn sombrero_names(text: &str) -> Vec<String> {
    text.match_indices("SOMBRERO_")
        .filter_map(|(start, prefix)| {
            let rest = &text[start + prefix.len()..];
            let length = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            let name = rest[..length].trim_end_matches('_');
            let starts_with_letter = name.starts_with(|c: char| c.is_ascii_uppercase());
            starts_with_letter.then(|| format!("SOMBRERO_{name}"))
        })
        .collect()
}

/// The shipped sources (`crates/*/src`, without their test modules), the lab's scripts and
/// the Ansible tree's Python (its callback reads a variable sombrero sets).
fn shipped_sources(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut pending = vec![root.join("crates"), root.join("lab"), root.join("ansible")];
    let mut found = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "tests" | "benches" | "target") {
                    pending.push(path);
                }
            } else if match path.extension().and_then(|ext| ext.to_str()) {
                Some("rs") => !name.ends_with("tests.rs"),
                Some("sh" | "py") => true,
                _ => false,
            } {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn every_sombrero_variable_read_anywhere_is_declared_and_documented() {
    use sombrero_core::settings::env_vars;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let documentation = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let declared: Vec<&str> = env_vars::ALL.iter().map(|var| var.name).collect();
    for var in env_vars::ALL {
        assert!(
            documentation.contains(&format!("| `{}` |", var.name)),
            "{} has a row in docs/configuration.md",
            var.name
        );
    }
    let mut seen = 0;
    for path in shipped_sources(&root) {
        let text = std::fs::read_to_string(&path).unwrap();
        for name in sombrero_names(&text) {
            seen += 1;
            assert!(
                declared.contains(&name.as_str()),
                "{name} (read in {}) is declared in settings/env_vars.rs",
                path.display()
            );
        }
    }
    assert!(seen >= 10, "the scan found the names: {seen}");
}

#[test]
fn every_configuration_key_has_a_row_in_the_documentation() {
    use sombrero_core::settings::document::{API_KEYS, BUILD_KEYS, PATHS_KEYS, VM_KEYS};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let documentation = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    for (table, keys) in [
        ("[api]", API_KEYS),
        ("[paths]", PATHS_KEYS),
        ("[build]", BUILD_KEYS),
        ("[defaults]", VM_KEYS),
    ] {
        let section = documentation
            .split(&format!("### `{table}`"))
            .nth(1)
            .unwrap_or_else(|| panic!("a section for {table}"));
        let section = section.split("\n### ").next().unwrap();
        for key in keys {
            let row = section
                .lines()
                .find(|line| line.starts_with(&format!("| `{key}` |")))
                .unwrap_or_else(|| panic!("{table} {key} has a row"));
            // Key, type, default, variable, example: every cell filled but the variable.
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 7, "{row}");
            for (index, cell) in cells[1..6].iter().enumerate() {
                assert!(index == 3 || !cell.is_empty(), "{table} {key}: {row}");
            }
        }
    }
}

#[test]
fn every_setting_variable_sets_what_the_documentation_says() {
    use crate::sandbox::{SSH_KEY, Sandbox};
    // (variable, value, pointer into `config show --json`, expected value).
    let fingerprint = ["AB"; 32].join(":");
    let cases: &[(&str, &str, &str, serde_json::Value)] = &[
        (
            "TF_VAR_pve_api_url",
            "https://pve.example:8006",
            "/api/url",
            "https://pve.example:8006/api2/json".into(),
        ),
        (
            "PKR_VAR_proxmox_url",
            "https://pve.example:8006",
            "/api/url",
            "https://pve.example:8006/api2/json".into(),
        ),
        (
            "TF_VAR_pve_api_token",
            "terraform@pve!token=abc",
            "/api/token",
            "terraform@pve!token=[redacted]".into(),
        ),
        (
            "TF_VAR_proxmox_insecure",
            "yes",
            "/api/insecure",
            true.into(),
        ),
        (
            "TF_VAR_ci_ssh_key",
            SSH_KEY,
            "/vm/ssh_public_key",
            SSH_KEY.into(),
        ),
        (
            "PKR_VAR_proxmox_username",
            "root@pam",
            "/api/username",
            "root@pam".into(),
        ),
        (
            "PKR_VAR_proxmox_password",
            "pw",
            "/api/password",
            "[redacted]".into(),
        ),
        ("PKR_VAR_proxmox_node", "n2", "/vm/node", "n2".into()),
        ("ENV", "staging", "/environment", "staging".into()),
        ("TEMPLATE_ID", "1002", "/vm/template_id", 1002.into()),
        (
            "SOMBRERO_PVE_FINGERPRINT",
            &fingerprint,
            "/api/fingerprint",
            fingerprint.as_str().into(),
        ),
        (
            "SOMBRERO_PVE_CA_FILE",
            "ca.pem",
            "/api/ca_file",
            "ca.pem".into(),
        ),
        ("SOMBRERO_HISTORY", "h.db", "/paths/history", "h.db".into()),
        (
            "SOMBRERO_OUTPUTS_DIR",
            "out",
            "/paths/outputs_dir",
            "out".into(),
        ),
        (
            "SOMBRERO_SSH_PUBLIC_KEY_FILE",
            "key.pub",
            "/vm/ssh_public_key",
            serde_json::json!({ "file": "key.pub" }),
        ),
        (
            "SOMBRERO_SSH_PRIVATE_KEY_FILE",
            "keys/jump-man-key",
            "/vm/ssh_private_key_file",
            "keys/jump-man-key".into(),
        ),
        (
            "SOMBRERO_ANSIBLE_DIR",
            "site/ansible",
            "/paths/ansible_dir",
            "site/ansible".into(),
        ),
    ];
    // Every setting variable is covered (SOMBRERO_CONFIG names the file: config.rs).
    for var in sombrero_core::settings::env_vars::ALL {
        let setting = var.origin != sombrero_core::settings::env_vars::Origin::Knob;
        if setting && var.name != "SOMBRERO_CONFIG" {
            assert!(
                cases.iter().any(|case| case.0 == var.name),
                "{} has a case",
                var.name
            );
        }
    }
    for (name, value, pointer, expected) in cases {
        let outcome = Sandbox::new()
            .env(name, value)
            .run(&["config", "show", "--json"])
            .expect_code(0);
        let document: serde_json::Value = serde_json::from_str(&outcome.stdout).unwrap();
        let setting = document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} in {document}"));
        assert_eq!(&setting["value"], expected, "{name}: {setting}");
        assert_eq!(setting["source"], format!("env {name}"), "{name}");
    }
}
