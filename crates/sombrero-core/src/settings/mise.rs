//! `.mise.local.toml`: the runbook's file of environment variables, read as is.
//!
//! Why read it at all: operators following the runbook already keep their API URL, token
//! and SSH key in `.mise.local.toml` (`[env]` table) and run tools through mise, which
//! exports them. sombrero reads the same table so it works without mise, ranking it below
//! real environment variables (which is what running under `mise exec` would give).
//!
//! Only the `[env]` table is read; everything else in the file belongs to mise. Values that
//! are strings, integers or booleans become variables; mise directives (`_` and tables) are
//! skipped. Templates of the form `{{env.NAME}}` are expanded (one level) from the table's
//! other entries and the process environment; other templates are skipped with a warning,
//! since sombrero does not implement mise's template language.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::error::{SettingsError, SettingsErrors};
use super::source::{Origin, Position, Source};

/// One variable from the `[env]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiseValue {
    pub value: String,
    pub position: Position,
}

/// The `[env]` table of a `.mise.local.toml`.
#[derive(Debug, Clone, Default)]
pub struct MiseEnv {
    path: PathBuf,
    values: HashMap<String, MiseValue>,
    warnings: Vec<String>,
}

impl MiseEnv {
    /// The conventional file name, looked up next to `sombrero.toml`.
    pub const FILE_NAME: &'static str = ".mise.local.toml";

    /// Parses the file's text; `process_env` is used only to expand `{{env.NAME}}`.
    ///
    /// # Errors
    /// A TOML syntax error, with line and column.
    pub fn parse(
        path: impl Into<PathBuf>,
        text: &str,
        process_env: &HashMap<String, String>,
    ) -> Result<Self, SettingsErrors> {
        let path = path.into();
        let table = DeTable::parse(text).map_err(|error| {
            let position = Position::of_offset(text, error.span().map_or(0, |span| span.start));
            SettingsError::Syntax {
                path: path.clone(),
                line: position.line,
                column: position.column,
                message: error.message().trim().to_owned(),
            }
        })?;
        let mut mise = Self {
            path,
            values: HashMap::new(),
            warnings: Vec::new(),
        };
        let Some(env) = table.get_ref().get("env") else {
            return Ok(mise);
        };
        let DeValue::Table(env) = env.get_ref() else {
            mise.warnings.push(format!(
                "{}: `env` is not a table; ignored",
                mise.path.display()
            ));
            return Ok(mise);
        };
        let mut raw_values: HashMap<String, MiseValue> = HashMap::new();
        for (key, value) in env {
            let name: &str = key.get_ref();
            let position = Position::of_offset(text, value.span().start);
            let raw = match value.get_ref() {
                DeValue::String(text) => text.to_string(),
                DeValue::Integer(integer) => integer.as_str().to_owned(),
                DeValue::Boolean(flag) => flag.to_string(),
                _ => continue,
            };
            if name != "_" {
                raw_values.insert(
                    name.to_owned(),
                    MiseValue {
                        value: raw,
                        position,
                    },
                );
            }
        }
        for (name, entry) in &raw_values {
            match expand(&entry.value, &raw_values, process_env) {
                Some(value) => {
                    let position = entry.position;
                    mise.values
                        .insert(name.clone(), MiseValue { value, position });
                }
                None => mise.warnings.push(format!(
                    "{}:{}:{}: env.{name} uses a mise template sombrero cannot expand; ignored",
                    mise.path.display(),
                    entry.position.line,
                    entry.position.column
                )),
            }
        }
        Ok(mise)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A variable's value and where it is, if set and not empty.
    pub fn get(&self, name: &str) -> Option<(&str, Origin)> {
        let entry = self
            .values
            .get(name)
            .filter(|entry| !entry.value.is_empty())?;
        let origin = Origin {
            source: Source::Mise {
                path: self.path.clone(),
                name: name.to_owned(),
            },
            position: Some(entry.position),
        };
        Some((&entry.value, origin))
    }

    /// Things the user should know (skipped templates, odd shapes).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Expands `{{env.NAME}}` (spaces allowed inside the braces); `None` for other templates.
fn expand(
    raw: &str,
    table: &HashMap<String, MiseValue>,
    process_env: &HashMap<String, String>,
) -> Option<String> {
    let mut output = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("{{") {
        output.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let name = after[..end].trim().strip_prefix("env.")?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        let value = table
            .get(name)
            .map(|entry| entry.value.clone())
            .or_else(|| process_env.get(name).cloned())
            .unwrap_or_default();
        output.push_str(&value);
        rest = &after[end + 2..];
    }
    output.push_str(rest);
    Some(output)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::MiseEnv;

    const RUNBOOK_FILE: &str = r#"
[tools]
terraform = "1.13.0"

[env]
TF_VAR_pve_api_url = "https://pve.example:8006/api2/json"
TF_VAR_proxmox_insecure = true
PKR_VAR_proxmox_url = "{{ env.TF_VAR_pve_api_url }}"
TEMPLATE_ID = 1002
WEIRD = "{{ exec(command='date') }}"
_.file = ".env"
"#;

    #[test]
    fn reads_the_env_table_as_mise_would() {
        let mise = MiseEnv::parse(".mise.local.toml", RUNBOOK_FILE, &HashMap::new())
            .expect("must be valid");
        let (url, origin) = mise.get("TF_VAR_pve_api_url").expect("must be valid");
        assert_eq!(url, "https://pve.example:8006/api2/json");
        assert_eq!(
            origin.to_string(),
            ".mise.local.toml:6:22: env.TF_VAR_pve_api_url"
        );
        assert_eq!(
            mise.get("TF_VAR_proxmox_insecure")
                .expect("must be valid")
                .0,
            "true"
        );
        assert_eq!(mise.get("TEMPLATE_ID").expect("must be valid").0, "1002");
        assert_eq!(
            mise.get("PKR_VAR_proxmox_url").expect("must be valid").0,
            "https://pve.example:8006/api2/json"
        );
        assert!(mise.get("WEIRD").is_none());
        assert_eq!(mise.warnings().len(), 1, "{:?}", mise.warnings());
        assert!(mise.get("_").is_none());
    }

    #[test]
    fn syntax_errors_have_positions() {
        let error = MiseEnv::parse("m.toml", "[env]\nA = \n", &HashMap::new())
            .expect_err("must be rejected");
        assert!(error.to_string().starts_with("m.toml:2:"), "{error}");
    }
}
