//! Where a setting's value came from.
//!
//! Why: "which of my five configuration layers won?" is the first question when a deploy
//! targets the wrong VM. Every resolved value carries a [`Source`], `sombrero config show`
//! prints it, and every error names the [`Origin`] of the offending value (file, line and
//! column, key path, or the environment variable to change).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The layer and exact place a value was taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A command-line flag, e.g. `--env`.
    Flag(&'static str),
    /// A process environment variable.
    Env(String),
    /// A variable in the `[env]` table of `.mise.local.toml`.
    Mise { path: PathBuf, name: String },
    /// A key in `sombrero.toml`, e.g. `environments.staging.vmid`.
    File { path: PathBuf, key: String },
    /// sombrero's built-in default.
    Default,
}

impl fmt::Display for Source {
    /// The label `config show` prints: `flag --env`, `env TF_VAR_pve_api_url`,
    /// `.mise.local.toml:env.NAME`, `sombrero.toml:key.path` or `default`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "flag {flag}"),
            Self::Env(name) => write!(f, "env {name}"),
            Self::Mise { path, name } => write!(f, "{}:env.{name}", path.display()),
            Self::File { path, key } => write!(f, "{}:{key}", path.display()),
            Self::Default => f.write_str("default"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A 1-based line and column in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The line and column of byte `offset` in `text` (columns count characters).
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = before
            .get(line_start..)
            .map_or(0, |rest| rest.chars().count())
            + 1;
        Self { line, column }
    }
}

/// Where a (possibly invalid) value is: its [`Source`] plus, for files, the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: Source,
    pub position: Option<Position>,
}

impl Origin {
    /// An origin without a position (flags, environment variables, defaults).
    pub fn new(source: Source) -> Self {
        Self {
            source,
            position: None,
        }
    }
}

impl fmt::Display for Origin {
    /// `sombrero.toml:21:6: environments.staging.ip`, `environment variable ENV`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let position = |f: &mut fmt::Formatter<'_>| match self.position {
            Some(Position { line, column }) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        };
        match &self.source {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Mise { path, name } => {
                write!(f, "{}", path.display())?;
                position(f)?;
                write!(f, ": env.{name}")
            }
            Source::File { path, key } => {
                write!(f, "{}", path.display())?;
                position(f)?;
                write!(f, ": {key}")
            }
            Source::Default => f.write_str("built-in default"),
        }
    }
}

/// A resolved value and where it came from. Serializes as `{"value": ..., "source": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Resolved<T> {
    pub fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }

    /// Transforms the value, keeping the source.
    pub fn map<U>(self, function: impl FnOnce(T) -> U) -> Resolved<U> {
        Resolved {
            value: function(self.value),
            source: self.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Origin, Position, Source};

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(
            Position::of_offset(text, 0),
            Position { line: 1, column: 1 }
        );
        let offset = text.find('=').expect("must be valid");
        assert_eq!(offset, 2);
        let second = text.rfind('=').expect("must be valid");
        assert_eq!(
            Position::of_offset(text, second),
            Position { line: 2, column: 4 }
        );
    }

    #[test]
    fn labels_name_the_layer_and_key() {
        let file = Source::File {
            path: "conf/sombrero.toml".into(),
            key: "environments.staging.vmid".into(),
        };
        assert_eq!(
            file.to_string(),
            "conf/sombrero.toml:environments.staging.vmid"
        );
        assert_eq!(Source::Env("ENV".into()).to_string(), "env ENV");
        assert_eq!(Source::Flag("--env").to_string(), "flag --env");
        let origin = Origin {
            source: file,
            position: Some(Position { line: 3, column: 7 }),
        };
        assert_eq!(
            origin.to_string(),
            "conf/sombrero.toml:3:7: environments.staging.vmid"
        );
    }
}
