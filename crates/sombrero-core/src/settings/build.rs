//! `[build]`: what stage 1 (`sombrero build`) makes the golden template from.
//!
//! Why a table of its own: the template id stays where stage 2 reads it
//! (`template_id` in `[defaults]`, `TEMPLATE_ID`, `--template-id`), so build and deploy
//! cannot disagree on it; what only the build needs (the template's name, the cloud
//! image volume and where to fetch it, the builder's storage and the OS tag) lives here.
//! Values are checked once, here, so `build` never starts with a volume id it cannot use.

use serde::Serialize;

use super::error::SettingsError;
use super::resolve::{Layers, variable_or_file};
use super::source::{Resolved, Source};

/// The runbook's template name.
pub const DEFAULT_TEMPLATE_NAME: &str = "ubuntu-server-numbat-docker";
/// Ubuntu 24.04's cloud image, as an import volume of `local`.
pub const DEFAULT_BASE_IMAGE: &str = "local:import/noble-server-cloudimg-amd64.qcow2";
/// The builder's disk, grown from the cloud image's own size (room for Docker).
pub const DEFAULT_DISK_GIB: u32 = 8;

/// What `sombrero build` builds from, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSettings {
    /// The golden template's name.
    pub template_name: Resolved<String>,
    /// The cloud image volume (`STORAGE:import/FILE`) the builder's disk is imported from.
    pub base_image: Resolved<String>,
    /// Where the node fetches `base_image` from when it is missing (`download-url`).
    pub base_image_url: Option<Resolved<String>>,
    /// The SHA-256 the downloaded image must have (lowercase hex).
    pub base_image_sha256: Option<Resolved<String>>,
    /// Storage for the builder's disks; unset: the VM's `disk_storage`.
    pub storage: Option<Resolved<String>>,
    /// The builder's disk size in GiB (grown from the image's size, never shrunk).
    pub disk_size_gib: Resolved<u32>,
    /// The OS tag the template carries; unset: from the builder's `/etc/os-release`
    /// (`ubuntu-24-04` on Ubuntu 24.04, `debian-12` in the lab).
    pub os_tag: Option<Resolved<String>>,
}

impl BuildSettings {
    /// `(storage, FILE)` of the base image volume (checked when resolved).
    pub fn base_image_parts(&self) -> (&str, &str) {
        split_volume(&self.base_image.value).unwrap_or(("local", ""))
    }
}

/// `STORAGE:import/FILE` -> `(STORAGE, FILE)`.
pub fn split_volume(volume: &str) -> Option<(&str, &str)> {
    let (storage, rest) = volume.split_once(':')?;
    let file = rest.strip_prefix("import/")?;
    let plain = |text: &str| {
        !text.is_empty()
            && !text.contains('/')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (plain(storage) && plain(file) && !file.starts_with('.')).then_some((storage, file))
}

pub(super) fn resolve_build(layers: &Layers<'_>, errors: &mut Vec<SettingsError>) -> BuildSettings {
    let table = &layers.file.document().build;
    let text = |key: &str, value: Option<&toml::Spanned<String>>| {
        variable_or_file(layers, &[], &format!("build.{key}"), value)
    };
    let or_default = |found: Option<(String, super::source::Origin)>, default: &str| {
        found.map_or_else(
            || Resolved::new(default.to_owned(), Source::Default),
            |(value, at)| Resolved::new(value.trim().to_owned(), at.source),
        )
    };
    let mut check = |found: Option<(String, super::source::Origin)>,
                     valid: &dyn Fn(&str) -> Result<String, String>| {
        found.and_then(|(value, at)| match valid(value.trim()) {
            Ok(value) => Some(Resolved::new(value, at.source)),
            Err(message) => {
                errors.push(SettingsError::InvalidValue { at, message });
                None
            }
        })
    };
    let base_image = check(text("base_image", table.base_image.as_ref()), &|value| {
        match split_volume(value) {
            Some(_) => Ok(value.to_owned()),
            None => Err(format!(
                "{value:?} is not an import volume (STORAGE:import/FILE, e.g. {DEFAULT_BASE_IMAGE})"
            )),
        }
    })
    .unwrap_or_else(|| Resolved::new(DEFAULT_BASE_IMAGE.to_owned(), Source::Default));
    let base_image_url = check(
        text("base_image_url", table.base_image_url.as_ref()),
        &|value| {
            if (value.starts_with("https://") || value.starts_with("http://")) && value.len() > 8 {
                Ok(value.to_owned())
            } else {
                Err(format!("{value:?} is not an http(s) URL"))
            }
        },
    );
    let base_image_sha256 = check(
        text("base_image_sha256", table.base_image_sha256.as_ref()),
        &|value| {
            let value = value.strip_prefix("sha256:").unwrap_or(value);
            if value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(value.to_ascii_lowercase())
            } else {
                Err(format!("{value:?} is not a SHA-256 (64 hex digits)"))
            }
        },
    );
    let storage = check(text("storage", table.storage.as_ref()), &|value| {
        if split_volume(&format!("{value}:import/x")).is_some() {
            Ok(value.to_owned())
        } else {
            Err(format!("{value:?} is not a storage id"))
        }
    });
    let os_tag = check(text("os_tag", table.os_tag.as_ref()), &|value| {
        if !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            Ok(value.to_owned())
        } else {
            Err(format!(
                "{value:?} is not a tag (lowercase letters, digits and '-', e.g. ubuntu-24-04)"
            ))
        }
    });
    let disk_size_gib = match &table.disk_size_gib {
        None => Resolved::new(DEFAULT_DISK_GIB, Source::Default),
        Some(spanned) => match u32::try_from(*spanned.get_ref()) {
            Ok(size) if (2..=1024).contains(&size) => {
                Resolved::new(size, layers.file.source("build.disk_size_gib"))
            }
            _ => {
                errors.push(SettingsError::InvalidValue {
                    at: layers.file.origin("build.disk_size_gib", &spanned.span()),
                    message: format!(
                        "{} GiB is not a disk size from 2 to 1024",
                        spanned.get_ref()
                    ),
                });
                Resolved::new(DEFAULT_DISK_GIB, Source::Default)
            }
        },
    };
    BuildSettings {
        template_name: or_default(
            text("template_name", table.template_name.as_ref()),
            DEFAULT_TEMPLATE_NAME,
        ),
        base_image,
        base_image_url,
        base_image_sha256,
        storage,
        disk_size_gib,
        os_tag,
    }
}

#[cfg(test)]
mod tests {
    use super::split_volume;

    #[test]
    fn import_volumes_split_and_others_do_not() {
        assert_eq!(
            split_volume("local:import/noble-server-cloudimg-amd64.qcow2"),
            Some(("local", "noble-server-cloudimg-amd64.qcow2"))
        );
        for bad in [
            "local:iso/x.iso",
            "import/x.qcow2",
            "local:import/",
            "local:import/../x.qcow2",
            "local:import/a/b.qcow2",
            ":import/x.qcow2",
        ] {
            assert_eq!(split_volume(bad), None, "{bad}");
        }
    }
}
