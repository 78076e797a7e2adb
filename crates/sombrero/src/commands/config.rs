//! `sombrero config show`: the resolved settings and where every value came from.
//!
//! Why render from the serialized settings: `--json` prints exactly the [`Settings`] struct,
//! and the text view walks that same JSON, so both views always show the same values and
//! a setting added to the model appears in both without touching this file. Secrets are
//! already redacted by serialization (`pve::Secret`, the token's `Display`).

use serde_json::Value;
use sombrero_core::configure;
use sombrero_core::settings::document::VM_KEYS;
use sombrero_core::settings::{Settings, env_vars};

use crate::cli::{ConfigArgs, ConfigCommand};
use crate::context::Context;
use crate::exit::ExitStatus;

/// Runs `sombrero config ...`.
///
/// # Errors
/// Configuration problems (exit 2).
pub fn run(args: &ConfigArgs, context: &Context) -> anyhow::Result<ExitStatus> {
    match args.command {
        ConfigCommand::Show => show(context),
    }
}

fn show(context: &Context) -> anyhow::Result<ExitStatus> {
    let (settings, printer) = (&context.settings, &context.printer);
    if printer.json_mode() {
        printer.json(settings)?;
    } else {
        printer.data(&render_text(settings)?);
    }
    Ok(ExitStatus::Success)
}

/// One printed line: key path, value, source.
struct Row {
    key: String,
    value: String,
    source: String,
}

/// The text view: `key  value  source`, aligned, grouped by section.
fn render_text(settings: &Settings) -> anyhow::Result<String> {
    let json = serde_json::to_value(settings)?;
    let mut rows = Vec::new();
    collect_rows(&json, "", &mut rows);
    rows.sort_by_key(|row| rank(&row.key));
    for row in &mut rows {
        if row.source.is_empty()
            && let Some(name) = variable_for(&row.key)
        {
            row.source = format!("set {name}");
        }
    }
    let key_width = rows.iter().map(|row| row.key.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|row| row.value.chars().count())
        .max()
        .unwrap_or(0)
        .min(48);
    let mut lines = Vec::new();
    let mut section = String::new();
    for row in rows {
        let row_section = row.key.split('.').next().unwrap_or_default().to_owned();
        if row.key.contains('.') && row_section != section {
            lines.push(String::new());
        }
        section = row_section;
        let line = format!(
            "{:key_width$}  {:value_width$}  {}",
            row.key, row.value, row.source
        );
        lines.push(line.trim_end().to_owned());
    }
    // Not a setting: what was found on this machine (its long value keeps its own width).
    let tools = ansible_row();
    lines.push(String::new());
    lines.push(format!(
        "{:key_width$}  {}  {}",
        tools.key, tools.value, tools.source
    ));
    Ok(lines.join("\n"))
}

/// The `ansible-playbook` that `configure` would use (found, not a setting).
fn ansible_row() -> Row {
    let cache = super::configure::cache_dir();
    match configure::ansible::find(&cache) {
        Some(found) => Row {
            key: "tools.ansible".to_owned(),
            value: found.describe(),
            source: "detected".to_owned(),
        },
        None => Row {
            key: "tools.ansible".to_owned(),
            value: format!(
                "none usable (configure installs ansible-core {} into {})",
                configure::ansible::PINNED_VERSION,
                configure::ansible::private_dir(&cache).display()
            ),
            source: "detected".to_owned(),
        },
    }
}

/// Top-level sections and API fields in reading order; VM fields follow `VM_KEYS`.
const SECTIONS: &[&str] = &[
    "config_file",
    "environment",
    "known_environments",
    "vm",
    "api",
    "paths",
];
const API_FIELDS: &[&str] = &[
    "url",
    "token",
    "insecure",
    "fingerprint",
    "ca_file",
    "username",
    "password",
];

/// Sort key: section order, then field order, then name (fields added later sort last).
fn rank(key: &str) -> (usize, usize, String) {
    let (section, field) = key.split_once('.').unwrap_or((key, ""));
    let position = |list: &[&str], name: &str| list.iter().position(|item| *item == name);
    let section_rank = position(SECTIONS, section).unwrap_or(SECTIONS.len());
    let field_rank = match section {
        "vm" => position(VM_KEYS, field),
        "api" => position(API_FIELDS, field),
        _ => None,
    }
    .unwrap_or(usize::MAX);
    (section_rank, field_rank, key.to_owned())
}

/// The variable to set for an unset value, shown instead of a source.
fn variable_for(key: &str) -> Option<&'static str> {
    Some(match key {
        "api.url" => env_vars::PVE_API_URL,
        "api.token" => env_vars::PVE_API_TOKEN,
        "api.fingerprint" => env_vars::SOMBRERO_PVE_FINGERPRINT,
        "api.ca_file" => env_vars::SOMBRERO_PVE_CA_FILE,
        "api.username" => env_vars::PACKER_PROXMOX_USERNAME,
        "api.password" => env_vars::PACKER_PROXMOX_PASSWORD,
        "vm.ssh_public_key" => env_vars::CI_SSH_KEY,
        "vm.ssh_private_key_file" => env_vars::SOMBRERO_SSH_PRIVATE_KEY_FILE,
        "paths.ansible_dir" => env_vars::SOMBRERO_ANSIBLE_DIR,
        _ => return None,
    })
}

/// Whether `value` is a `{"value": ..., "source": ...}` leaf.
fn as_resolved(value: &Value) -> Option<(&Value, &Value)> {
    let object = value.as_object()?;
    (object.len() == 2)
        .then(|| Some((object.get("value")?, object.get("source")?)))
        .flatten()
}

fn collect_rows(value: &Value, key: &str, rows: &mut Vec<Row>) {
    let child_key = |name: &str| {
        if key.is_empty() {
            name.to_owned()
        } else {
            format!("{key}.{name}")
        }
    };
    if let Some((inner, source)) = as_resolved(value) {
        rows.push(Row {
            key: key.to_owned(),
            value: scalar_text(inner),
            source: scalar_text(source),
        });
        return;
    }
    match value {
        Value::Object(object) => {
            for (name, child) in object {
                collect_rows(child, &child_key(name), rows);
            }
        }
        Value::Null => rows.push(Row {
            key: key.to_owned(),
            value: "(unset)".to_owned(),
            source: String::new(),
        }),
        other => rows.push(Row {
            key: key.to_owned(),
            value: scalar_text(other),
            source: String::new(),
        }),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "(unset)".to_owned(),
        Value::Array(items) if items.is_empty() => "(none)".to_owned(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(", "),
        Value::Object(object) => object
            .iter()
            .map(|(name, item)| format!("{name}: {}", scalar_text(item)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
