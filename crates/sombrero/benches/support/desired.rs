//! The staging environment's desired VM from the shipped `sombrero.toml`, for the
//! benchmarks that deploy or place it (`#[path]`-included by each bench binary).

use std::collections::HashMap;

use sombrero_core::deploy::Desired;
use sombrero_core::settings::{self, CliOverrides, ConfigFile, Inputs};

const CONFIG: &str = include_str!("../../../../sombrero.toml");
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ bench@sombrero";

/// Staging's desired VM, its outputs under `outputs`.
pub fn desired(outputs: &std::path::Path) -> Desired {
    let file = ConfigFile::parse("sombrero.toml", CONFIG).unwrap();
    let env: HashMap<String, String> = [
        ("TF_VAR_ci_ssh_key".to_owned(), KEY.to_owned()),
        (
            "SOMBRERO_OUTPUTS_DIR".to_owned(),
            outputs.display().to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let cli = CliOverrides {
        environment: Some("staging".into()),
        template_id: None,
        lab: None,
    };
    let settings = settings::resolve(Inputs {
        cli: &cli,
        env: &env,
        mise: None,
        file: &file,
    })
    .unwrap();
    let key = settings.ssh_public_key(|_| Ok(String::new())).unwrap();
    Desired::from_settings(&settings, Some(&key), false)
}
