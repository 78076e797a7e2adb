//! `sombrero.toml`: parsing with exact positions and strict keys.
//!
//! Why two passes: the spanned parse (`toml::de::DeTable`) reports syntax errors with
//! line and column and lets us list *every* unknown key at once with the closest known key
//! suggested; only then does serde build the typed [`Document`] (with `deny_unknown_fields`
//! as a second guard), keeping each value's span so later checks can point at it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{SettingsError, SettingsErrors, is_secret_key};
use super::source::{Origin, Position, Source};

/// Keys of the top-level table.
pub const TOP_KEYS: &[&str] = &[
    "api",
    "paths",
    "build",
    "verify",
    "defaults",
    "environments",
];
/// Keys of `[verify]`.
pub const VERIFY_KEYS: &[&str] = &["disk_max_percent", "memory_max_percent", "load_max_per_cpu"];
/// Keys of `[build]`.
pub const BUILD_KEYS: &[&str] = &[
    "template_name",
    "base_image",
    "base_image_url",
    "base_image_sha256",
    "storage",
    "disk_size_gib",
    "os_tag",
];
/// Keys of `[api]`.
pub const API_KEYS: &[&str] = &["url", "insecure", "fingerprint", "ca_file", "username"];
/// Keys of `[paths]`.
pub const PATHS_KEYS: &[&str] = &["history", "outputs_dir", "ansible_dir"];
/// Keys of `[defaults]` and of every `[environments.NAME]`.
pub const VM_KEYS: &[&str] = &[
    "vmid",
    "name",
    "description",
    "node",
    "template_id",
    "cores",
    "cpu",
    "memory_mib",
    "balloon_mib",
    "disk_size_gib",
    "disk_slot",
    "disk_storage",
    "bridge",
    "ip",
    "gateway",
    "nameservers",
    "searchdomain",
    "ciuser",
    "ssh_public_key",
    "ssh_public_key_file",
    "ssh_private_key_file",
    "ssh_allow_users",
    "extra_authorized_keys",
    "tags",
];

/// The typed content of `sombrero.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub api: ApiTable,
    #[serde(default)]
    pub paths: PathsTable,
    #[serde(default)]
    pub build: BuildTable,
    #[serde(default)]
    pub verify: VerifyTable,
    #[serde(default)]
    pub defaults: VmTable,
    #[serde(default)]
    pub environments: BTreeMap<String, VmTable>,
}

/// `[api]`: how to reach Proxmox (secrets excluded on purpose).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTable {
    pub url: Option<Spanned<String>>,
    pub insecure: Option<Spanned<bool>>,
    pub fingerprint: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
}

/// `[paths]`: where sombrero keeps its own files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsTable {
    pub history: Option<Spanned<String>>,
    pub outputs_dir: Option<Spanned<String>>,
    pub ansible_dir: Option<Spanned<String>>,
}

/// `[build]`: what stage 1 builds the golden template from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildTable {
    pub template_name: Option<Spanned<String>>,
    pub base_image: Option<Spanned<String>>,
    pub base_image_url: Option<Spanned<String>>,
    pub base_image_sha256: Option<Spanned<String>>,
    pub storage: Option<Spanned<String>>,
    pub disk_size_gib: Option<Spanned<i64>>,
    pub os_tag: Option<Spanned<String>>,
}

/// `[verify]`: the headroom checks' limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyTable {
    pub disk_max_percent: Option<Spanned<i64>>,
    pub memory_max_percent: Option<Spanned<i64>>,
    pub load_max_per_cpu: Option<Spanned<f64>>,
}

/// The VM fields, as written in `[defaults]` or `[environments.NAME]`. Numbers are read as
/// `i64` so out-of-range values get sombrero's own error instead of serde's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmTable {
    pub vmid: Option<Spanned<i64>>,
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    pub node: Option<Spanned<NodeValue>>,
    pub template_id: Option<Spanned<i64>>,
    pub cores: Option<Spanned<i64>>,
    pub cpu: Option<Spanned<String>>,
    pub memory_mib: Option<Spanned<i64>>,
    pub balloon_mib: Option<Spanned<i64>>,
    pub disk_size_gib: Option<Spanned<i64>>,
    pub disk_slot: Option<Spanned<String>>,
    pub disk_storage: Option<Spanned<String>>,
    pub bridge: Option<Spanned<String>>,
    pub ip: Option<Spanned<String>>,
    pub gateway: Option<Spanned<String>>,
    pub nameservers: Option<Spanned<Vec<Spanned<String>>>>,
    pub searchdomain: Option<Spanned<String>>,
    pub ciuser: Option<Spanned<String>>,
    pub ssh_public_key: Option<Spanned<String>>,
    pub ssh_public_key_file: Option<Spanned<String>>,
    pub ssh_private_key_file: Option<Spanned<String>>,
    pub ssh_allow_users: Option<Spanned<Vec<Spanned<String>>>>,
    pub extra_authorized_keys: Option<Spanned<Vec<Spanned<String>>>>,
    pub tags: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `node`: a name, `"auto"`, names separated by commas, or a list of names.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NodeValue {
    One(String),
    Many(Vec<String>),
}

/// A parsed `sombrero.toml` and the text it came from (for positions).
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    document: Document,
}

impl ConfigFile {
    /// Parses the text of the configuration file found at `path` (used in messages and
    /// source labels exactly as given).
    ///
    /// # Errors
    /// Every syntax error, unknown key and wrongly typed value, with positions.
    pub fn parse(
        path: impl Into<PathBuf>,
        text: impl Into<String>,
    ) -> Result<Self, SettingsErrors> {
        let path = path.into();
        let text = text.into();
        let table = DeTable::parse(&text).map_err(|error| syntax_error(&path, &text, &error))?;
        let mut walker = Walker {
            path: &path,
            text: &text,
            leaves: Vec::new(),
            errors: Vec::new(),
        };
        walker.walk(table.get_ref(), "", TOP_KEYS);
        if !walker.errors.is_empty() {
            return Err(SettingsErrors(walker.errors));
        }
        let document: Document = toml::from_str(&text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            let key = walker.key_at(&span);
            SettingsError::WrongType {
                at: Origin {
                    source: Source::File {
                        path: path.clone(),
                        key,
                    },
                    position: Some(Position::of_offset(&text, span.start)),
                },
                message: error.message().trim().to_owned(),
            }
        })?;
        Ok(Self {
            path,
            text,
            document,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The typed content.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// The names of `[environments.*]`, sorted.
    pub fn environment_names(&self) -> Vec<String> {
        self.document.environments.keys().cloned().collect()
    }

    /// The source label of `key`.
    pub fn source(&self, key: impl Into<String>) -> Source {
        Source::File {
            path: self.path.clone(),
            key: key.into(),
        }
    }

    /// Where `key` is, given its value's span.
    pub fn origin(&self, key: impl Into<String>, span: &Range<usize>) -> Origin {
        Origin {
            source: self.source(key),
            position: Some(Position::of_offset(&self.text, span.start)),
        }
    }
}

fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> SettingsErrors {
    let position = Position::of_offset(text, error.span().map_or(0, |span| span.start));
    SettingsError::Syntax {
        path: path.to_owned(),
        line: position.line,
        column: position.column,
        message: error.message().trim().to_owned(),
    }
    .into()
}

/// The known key closest to `key`, if any is close enough to be a likely typo.
pub fn closest_key(key: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(key, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, candidate)| candidate.to_owned())
}

/// Walks the spanned table against the known keys.
struct Walker<'a> {
    path: &'a Path,
    text: &'a str,
    /// Every key path with its value's span, to name the key of a serde type error.
    leaves: Vec<(String, Range<usize>)>,
    errors: Vec<SettingsError>,
}

impl Walker<'_> {
    fn walk(&mut self, table: &DeTable<'_>, prefix: &str, known: &[&str]) {
        for (key, value) in table {
            let name: &str = key.get_ref();
            let key_path = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}.{name}")
            };
            self.leaves.push((key_path.clone(), value.span()));
            if !known.contains(&name) {
                self.errors.push(SettingsError::UnknownKey {
                    at: Origin {
                        source: Source::File {
                            path: self.path.to_owned(),
                            key: key_path.clone(),
                        },
                        position: Some(Position::of_offset(self.text, key.span().start)),
                    },
                    key: name.to_owned(),
                    suggestion: if is_secret_key(name) {
                        None
                    } else {
                        closest_key(name, known)
                    },
                });
                continue;
            }
            let DeValue::Table(inner) = value.get_ref() else {
                continue;
            };
            match key_path.as_str() {
                "api" => self.walk(inner, &key_path, API_KEYS),
                "paths" => self.walk(inner, &key_path, PATHS_KEYS),
                "build" => self.walk(inner, &key_path, BUILD_KEYS),
                "verify" => self.walk(inner, &key_path, VERIFY_KEYS),
                "defaults" => self.walk(inner, &key_path, VM_KEYS),
                "environments" => {
                    for (environment, fields) in inner {
                        let environment_path = format!("environments.{}", environment.get_ref());
                        self.leaves.push((environment_path.clone(), fields.span()));
                        if let DeValue::Table(fields) = fields.get_ref() {
                            self.walk(fields, &environment_path, VM_KEYS);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The most specific key whose value contains `span`.
    fn key_at(&self, span: &Range<usize>) -> String {
        self.leaves
            .iter()
            .filter(|(_, range)| range.contains(&span.start) || range.start == span.start)
            .min_by_key(|(_, range)| range.len())
            .map(|(key, _)| key.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
