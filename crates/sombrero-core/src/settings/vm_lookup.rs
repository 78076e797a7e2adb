//! The generic half of building a VM: looking a field up in `[environments.NAME]` then
//! `[defaults]`, and the small checks shared by many fields (required, counts, VM ids,
//! text that must match a rule).
//!
//! Why split from `vm.rs`: these helpers know nothing about any particular field, and
//! keeping them apart leaves `vm.rs` reading as the list of the VM's fields and rules.

use toml::Spanned;

use super::document::VmTable;
use super::error::SettingsError;
use super::resolve::Layers;
use super::source::{Origin, Resolved, Source};
use super::values::VMID_RANGE;

/// A value and where it is.
pub(super) type Found<T> = (T, Origin);

/// Builds one environment's VM, collecting every problem in `errors`.
pub(super) struct Builder<'a, 'e> {
    pub layers: &'a Layers<'a>,
    pub environment: &'a str,
    pub errors: &'e mut Vec<SettingsError>,
}

impl Builder<'_, '_> {
    /// The field from `[environments.NAME]`, else from `[defaults]`.
    pub(super) fn lookup<T: Clone>(
        &self,
        key: &str,
        pick: impl Fn(&VmTable) -> Option<&Spanned<T>>,
    ) -> Option<Found<T>> {
        let document = self.layers.file.document();
        let candidates = [
            (
                document.environments.get(self.environment),
                format!("environments.{}.{key}", self.environment),
            ),
            (Some(&document.defaults), format!("defaults.{key}")),
        ];
        candidates.into_iter().find_map(|(table, key_path)| {
            let spanned = pick(table?)?;
            let origin = self.layers.file.origin(key_path, &spanned.span());
            Some((spanned.get_ref().clone(), origin))
        })
    }

    pub(super) fn missing(&mut self, key: &str, variable: Option<&str>) {
        let file = self.layers.file.path().display();
        let in_file = format!(
            "`{key}` in [environments.{}] or [defaults] of {file}",
            self.environment
        );
        let how = match variable {
            Some(name) => format!("{name}, or {in_file}"),
            None => in_file,
        };
        self.errors.push(SettingsError::Missing {
            what: format!("{key} of environment {}", self.environment),
            how,
        });
    }

    pub(super) fn required<T>(&mut self, key: &str, found: Option<Found<T>>) -> Option<Found<T>> {
        if found.is_none() {
            self.missing(key, None);
        }
        found
    }

    pub(super) fn invalid(&mut self, at: Origin, message: String) {
        self.errors
            .push(SettingsError::InvalidValue { at, message });
    }

    /// A required text field that `check` accepts.
    pub(super) fn text(
        &mut self,
        key: &str,
        pick: impl Fn(&VmTable) -> Option<&Spanned<String>>,
        check: impl Fn(&str) -> bool,
        expected: &str,
    ) -> Option<Resolved<String>> {
        let found = self.lookup(key, pick);
        let (value, origin) = self.required(key, found)?;
        if !check(&value) {
            self.invalid(origin, format!("{value:?} is not {expected}"));
            return None;
        }
        Some(Resolved::new(value, origin.source))
    }

    pub(super) fn vmid(&mut self, value: i64, origin: Origin) -> Option<Resolved<u32>> {
        match u32::try_from(value) {
            Ok(vmid) if VMID_RANGE.contains(&value) => Some(Resolved::new(vmid, origin.source)),
            _ => {
                self.errors
                    .push(SettingsError::VmIdOutOfRange { at: origin, value });
                None
            }
        }
    }

    pub(super) fn count(
        &mut self,
        key: &str,
        pick: impl Fn(&VmTable) -> Option<&Spanned<i64>>,
        minimum: i64,
    ) -> Option<Resolved<u64>> {
        let found = self.lookup(key, pick);
        let (value, origin) = self.required(key, found)?;
        match u64::try_from(value) {
            Ok(count) if value >= minimum => Some(Resolved::new(count, origin.source)),
            _ => {
                self.invalid(
                    origin,
                    format!("{value} is less than the minimum {minimum}"),
                );
                None
            }
        }
    }

    pub(super) fn list(
        &self,
        key: &str,
        pick: impl Fn(&VmTable) -> Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> (Vec<Spanned<String>>, Source) {
        match self.lookup(key, pick) {
            Some((items, origin)) => (items, origin.source),
            None => (Vec::new(), Source::Default),
        }
    }

    pub(super) fn optional_text(
        &mut self,
        key: &str,
        pick: impl Fn(&VmTable) -> Option<&Spanned<String>>,
        check: impl Fn(&str) -> bool,
        expected: &str,
    ) -> Result<Option<Resolved<String>>, ()> {
        match self.lookup(key, pick) {
            None => Ok(None),
            Some((value, origin)) if check(&value) => Ok(Some(Resolved::new(value, origin.source))),
            Some((value, origin)) => {
                self.invalid(origin, format!("{value:?} is not {expected}"));
                Err(())
            }
        }
    }
}
