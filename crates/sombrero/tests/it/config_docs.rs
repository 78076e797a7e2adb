//! The documentation of the configuration cannot fall behind the code: every
//! `sombrero.toml` key and every `SOMBRERO_*` variable the shipped sources read has a row
//! in docs/configuration.md, and every such variable is declared in `env_vars.rs`
//! (issue 2: "all declared in one documented module"; decision 016).

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

/// The shipped sources (`crates/*/src`, without their test modules) and the lab's scripts.
fn shipped_sources(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut pending = vec![root.join("crates"), root.join("lab")];
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
                Some("sh") => true,
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
    use sombrero_core::settings::document::{API_KEYS, PATHS_KEYS, VM_KEYS};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let documentation = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    for (table, keys) in [
        ("[api]", API_KEYS),
        ("[paths]", PATHS_KEYS),
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
