//! Property test of the precedence rule: for any combination of layers that set the
//! template id (flag, environment variable, `.mise.local.toml`, `[environments.NAME]`,
//! `[defaults]`), the highest layer present wins and is reported as the source.

use std::collections::HashMap;
use std::fmt::Write as _;

use proptest::prelude::*;

use super::{CliOverrides, ConfigFile, Inputs, MiseEnv, Source, resolve};

const BASE: &str = r#"
[defaults]
name = "jump-man"
node = "lloyd"
cores = 2
cpu = "host"
memory_mib = 2048
disk_size_gib = 32
disk_slot = "scsi0"
disk_storage = "local-lvm"
bridge = "vmbr0"
ciuser = "ansible"
"#;

proptest! {
    #[test]
    fn the_highest_layer_present_wins(
        flag in proptest::option::of(100_u32..100_000),
        env in proptest::option::of(100_u32..100_000),
        mise in proptest::option::of(100_u32..100_000),
        environment in proptest::option::of(100_u32..100_000),
        defaults in 100_u32..100_000,
    ) {
        let mut text = format!("{BASE}template_id = {defaults}\n\n[environments.staging]\nvmid = 152\nip = \"192.168.10.252/24\"\ngateway = \"192.168.10.1\"\n");
        if let Some(value) = environment {
            writeln!(text, "template_id = {value}").expect("writing to a String");
        }
        let file = ConfigFile::parse("sombrero.toml", text).expect("valid file");
        let mut variables = HashMap::new();
        if let Some(value) = env {
            variables.insert("TEMPLATE_ID".to_owned(), value.to_string());
        }
        let mise_text = mise.map(|value| format!("[env]\nTEMPLATE_ID = {value}\n"));
        let mise_env = mise_text
            .as_deref()
            .map(|text| MiseEnv::parse(".mise.local.toml", text, &variables).expect("valid mise"));
        let cli = CliOverrides { environment: Some("staging".to_owned()), template_id: flag, lab: None };
        let settings = resolve(Inputs { cli: &cli, env: &variables, mise: mise_env.as_ref(), file: &file })
            .expect("resolves");

        let (expected, source) = if let Some(value) = flag {
            (value, "flag --template".to_owned())
        } else if let Some(value) = env {
            (value, "env TEMPLATE_ID".to_owned())
        } else if let Some(value) = mise {
            (value, ".mise.local.toml:env.TEMPLATE_ID".to_owned())
        } else if let Some(value) = environment {
            (value, "sombrero.toml:environments.staging.template_id".to_owned())
        } else {
            (defaults, "sombrero.toml:defaults.template_id".to_owned())
        };
        prop_assert_eq!(settings.vm.template_id.clone().expect("a template id").value, expected);
        prop_assert_eq!(settings.vm.template_id.clone().expect("a template id").source.to_string(), source);
        prop_assert_eq!(settings.environment.source, Source::Flag("--env"));
    }
}
