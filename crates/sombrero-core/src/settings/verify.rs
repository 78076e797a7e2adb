//! `[verify]`: the limits of `sombrero verify`'s headroom checks.
//!
//! Why configurable: what counts as "too full" differs between a lab VM and a busy
//! production jump host; the defaults (90 % disk, 90 % memory, a 1-minute load of 2 per
//! CPU) flag a VM that is about to stop working, not one that is merely in use.

use serde::Serialize;

use super::error::SettingsError;
use super::resolve::Layers;
use super::source::{Resolved, Source};
use crate::verify::Thresholds;

/// The headroom limits, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct VerifySettings {
    /// Highest use of `/`, in percent.
    pub disk_max_percent: Resolved<u8>,
    /// Highest memory use (total minus available), in percent.
    pub memory_max_percent: Resolved<u8>,
    /// Highest 1-minute load average per CPU.
    pub load_max_per_cpu: Resolved<f64>,
}

impl VerifySettings {
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            disk_percent: self.disk_max_percent.value,
            memory_percent: self.memory_max_percent.value,
            load_per_cpu: self.load_max_per_cpu.value,
        }
    }
}

pub(super) fn resolve_verify(
    layers: &Layers<'_>,
    errors: &mut Vec<SettingsError>,
) -> VerifySettings {
    let table = &layers.file.document().verify;
    let defaults = Thresholds::default();
    let mut percent = |key: &str, value: Option<&toml::Spanned<i64>>, default: u8| {
        let Some(spanned) = value else {
            return Resolved::new(default, Source::Default);
        };
        let name = format!("verify.{key}");
        match u8::try_from(*spanned.get_ref()) {
            Ok(number) if (1..=100).contains(&number) => {
                Resolved::new(number, layers.file.source(name))
            }
            _ => {
                errors.push(SettingsError::InvalidValue {
                    at: layers.file.origin(name, &spanned.span()),
                    message: format!("{} is not a percentage from 1 to 100", spanned.get_ref()),
                });
                Resolved::new(default, Source::Default)
            }
        }
    };
    let disk_max_percent = percent(
        "disk_max_percent",
        table.disk_max_percent.as_ref(),
        defaults.disk_percent,
    );
    let memory_max_percent = percent(
        "memory_max_percent",
        table.memory_max_percent.as_ref(),
        defaults.memory_percent,
    );
    let load_max_per_cpu = match &table.load_max_per_cpu {
        None => Resolved::new(defaults.load_per_cpu, Source::Default),
        Some(spanned) => {
            let value = *spanned.get_ref();
            if value.is_finite() && value > 0.0 && value <= 1000.0 {
                Resolved::new(value, layers.file.source("verify.load_max_per_cpu"))
            } else {
                errors.push(SettingsError::InvalidValue {
                    at: layers
                        .file
                        .origin("verify.load_max_per_cpu", &spanned.span()),
                    message: format!("{value} is not a load per CPU above 0 (e.g. 2.0)"),
                });
                Resolved::new(defaults.load_per_cpu, Source::Default)
            }
        }
    };
    VerifySettings {
        disk_max_percent,
        memory_max_percent,
        load_max_per_cpu,
    }
}
