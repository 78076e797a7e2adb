//! Tests of the settings `sombrero configure` (stage 3) reads: `ssh_private_key_file`,
//! `ssh_allow_users`, `extra_authorized_keys` and `paths.ansible_dir`: their sources,
//! per-environment overrides, defaults and the errors of bad entries.

use std::path::Path;

use super::document::{ConfigFile, PATHS_KEYS, VM_KEYS, closest_key};
use super::source::Source;
use super::tests::{Case, KEY, SHIPPED, file_source};

/// A second real ed25519 public key (its private half was discarded).
const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBK8dxWEhe4Pxrf4odN58Sl6ZcOhe1MZX6Ff3fdiNX+7 ops@example";
/// The runbook's placeholder: well-formed at a glance, but not a key.
const PLACEHOLDER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI-example-key ops@example";

/// `[defaults]` of the shipped file with `lines` added after `ciuser`.
fn with_defaults(lines: &str) -> Case {
    Case::new().replace(
        "ciuser = \"ansible\"\n",
        &format!("ciuser = \"ansible\"\n{lines}\n"),
    )
}

/// The 1-based line and column where `needle` starts in `text`.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("needle in text");
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |index| index + 1) + 1;
    (line, column)
}

#[test]
fn the_new_settings_default_to_empty_and_unset() {
    let settings = Case::new().ok();
    let vm = &settings.vm;
    assert!(vm.ssh_private_key_file.is_none());
    assert!(vm.ssh_allow_users.value.is_empty());
    assert_eq!(vm.ssh_allow_users.source, Source::Default);
    assert!(vm.extra_authorized_keys.value.is_empty());
    assert_eq!(vm.extra_authorized_keys.source, Source::Default);
    assert!(settings.paths.ansible_dir.is_none());
    let json = serde_json::to_value(&settings).expect("json");
    assert_eq!(json["vm"]["ssh_private_key_file"], serde_json::Value::Null);
    assert_eq!(
        json["vm"]["ssh_allow_users"],
        serde_json::json!({ "value": [], "source": "default" })
    );
    assert_eq!(
        json["vm"]["extra_authorized_keys"],
        serde_json::json!({ "value": [], "source": "default" })
    );
    assert_eq!(json["paths"]["ansible_dir"], serde_json::Value::Null);
}

#[test]
fn private_key_file_from_the_file_mise_and_env_like_the_public_one() {
    let case = with_defaults("ssh_private_key_file = \"keys/jump-man-key\"");
    let key = case.ok().vm.ssh_private_key_file.expect("set in the file");
    assert_eq!(key.value, Path::new("conf/keys/jump-man-key"));
    assert_eq!(key.source, file_source("defaults.ssh_private_key_file"));

    let home =
        with_defaults("ssh_private_key_file = \"~/.ssh/jump-man-key\"").env("HOME", "/home/op");
    let key = home.ok().vm.ssh_private_key_file.expect("set in the file");
    assert_eq!(key.value, Path::new("/home/op/.ssh/jump-man-key"));

    let mise = case.mise("SOMBRERO_SSH_PRIVATE_KEY_FILE = \"m/id\"");
    let key = mise.ok().vm.ssh_private_key_file.expect("set in mise");
    assert_eq!(key.value, Path::new("conf/m/id"));
    assert_eq!(
        key.source.to_string(),
        "conf/.mise.local.toml:env.SOMBRERO_SSH_PRIVATE_KEY_FILE"
    );

    // The environment wins over both files; a relative path is the working directory's.
    let env = mise.env("SOMBRERO_SSH_PRIVATE_KEY_FILE", "e/id");
    let key = env
        .ok()
        .vm
        .ssh_private_key_file
        .expect("set in the environment");
    assert_eq!(key.value, Path::new("e/id"));
    assert_eq!(
        key.source,
        Source::Env("SOMBRERO_SSH_PRIVATE_KEY_FILE".into())
    );

    // Only the path is resolved: a file that does not exist is configure's business.
    let missing = Case::new().env("SOMBRERO_SSH_PRIVATE_KEY_FILE", "/nonexistent/id");
    assert!(missing.ok().vm.ssh_private_key_file.is_some());
}

#[test]
fn a_public_key_or_empty_path_as_the_private_key_is_refused() {
    let error = with_defaults("ssh_private_key_file = \"~/.ssh/id_ed25519.pub\"").error();
    assert!(
        error.contains(
            "defaults.ssh_private_key_file: \"~/.ssh/id_ed25519.pub\" is a public key file"
        ),
        "{error}"
    );
    let error = with_defaults("ssh_private_key_file = \" \"").error();
    assert!(
        error.contains("defaults.ssh_private_key_file: the private key file's path is empty"),
        "{error}"
    );
    let error = Case::new()
        .env("SOMBRERO_SSH_PRIVATE_KEY_FILE", "id.pub")
        .error();
    assert!(
        error.starts_with("environment variable SOMBRERO_SSH_PRIVATE_KEY_FILE: \"id.pub\""),
        "{error}"
    );
}

#[test]
fn allow_users_and_extra_keys_resolve_from_the_file() {
    let settings = with_defaults(&format!(
        "ssh_allow_users = [\"ansible\", \"_svc\", \"ops-1\"]\nextra_authorized_keys = [\"{KEY}\", \"{OTHER_KEY}\"]"
    ))
    .ok();
    let vm = &settings.vm;
    assert_eq!(vm.ssh_allow_users.value, ["ansible", "_svc", "ops-1"]);
    assert_eq!(
        vm.ssh_allow_users.source,
        file_source("defaults.ssh_allow_users")
    );
    let keys: Vec<&str> = vm
        .extra_authorized_keys
        .value
        .iter()
        .map(super::SshPublicKey::as_str)
        .collect();
    assert_eq!(keys, [KEY, OTHER_KEY]);
    assert_eq!(
        vm.extra_authorized_keys.source,
        file_source("defaults.extra_authorized_keys")
    );
    let json = serde_json::to_value(&settings).expect("json");
    assert_eq!(
        json["vm"]["extra_authorized_keys"]["value"],
        serde_json::json!([KEY, OTHER_KEY])
    );
    assert_eq!(
        json["vm"]["ssh_allow_users"]["source"],
        "conf/sombrero.toml:defaults.ssh_allow_users"
    );
}

#[test]
fn an_environment_overrides_the_defaults_key_by_key() {
    let staging = "[environments.staging]\n";
    let case = with_defaults(&format!(
        "ssh_private_key_file = \"keys/default\"\nssh_allow_users = [\"ansible\"]\nextra_authorized_keys = [\"{KEY}\"]"
    ))
    .replace(
        staging,
        &format!(
            "{staging}ssh_private_key_file = \"keys/staging\"\nssh_allow_users = [\"ops\", \"deploy\"]\nextra_authorized_keys = []\n"
        ),
    );
    let production = case.ok().vm;
    assert_eq!(
        production.ssh_private_key_file.map(|key| key.value),
        Some("conf/keys/default".into())
    );
    assert_eq!(production.ssh_allow_users.value, ["ansible"]);
    assert_eq!(production.extra_authorized_keys.value.len(), 1);

    let vm = case.env("ENV", "staging").ok().vm;
    let key = vm.ssh_private_key_file.expect("set for staging");
    assert_eq!(key.value, Path::new("conf/keys/staging"));
    assert_eq!(
        key.source,
        file_source("environments.staging.ssh_private_key_file")
    );
    assert_eq!(vm.ssh_allow_users.value, ["ops", "deploy"]);
    assert_eq!(
        vm.ssh_allow_users.source,
        file_source("environments.staging.ssh_allow_users")
    );
    // An empty list set on purpose overrides the defaults' list.
    assert!(vm.extra_authorized_keys.value.is_empty());
    assert_eq!(
        vm.extra_authorized_keys.source,
        file_source("environments.staging.extra_authorized_keys")
    );
}

#[test]
fn a_bad_user_name_names_the_key_the_value_and_its_line() {
    let case = with_defaults("ssh_allow_users = [\"ansible\", \"Bad User\"]");
    let (line, column) = position_of(&case.file, "\"Bad User\"");
    assert_eq!(
        case.error(),
        format!(
            "conf/sombrero.toml:{line}:{column}: defaults.ssh_allow_users: \"Bad User\" is not a \
             user name (a lowercase letter or _, then lowercase letters, digits, _ or -; at \
             most 32)"
        )
    );
    let longest = format!("a{}", "b".repeat(31));
    assert!(
        with_defaults(&format!("ssh_allow_users = [\"{longest}\"]"))
            .run()
            .is_ok()
    );
    for bad in [
        format!("{longest}c"),
        "1ops".to_owned(),
        "-ops".to_owned(),
        String::new(),
    ] {
        let error = with_defaults(&format!("ssh_allow_users = [\"{bad}\"]")).error();
        assert!(
            error.contains(&format!(
                "defaults.ssh_allow_users: {bad:?} is not a user name"
            )),
            "{error}"
        );
    }
    // In an environment's table the error names that table's key.
    let error = Case::new()
        .replace(
            "[environments.staging]\n",
            "[environments.staging]\nssh_allow_users = [\"root!\"]\n",
        )
        .error();
    assert!(
        error.contains("environments.staging.ssh_allow_users: \"root!\" is not a user name"),
        "{error}"
    );
}

#[test]
fn a_bad_key_line_names_the_key_the_entry_and_its_line() {
    let case = with_defaults(&format!(
        "extra_authorized_keys = [\n  \"{KEY}\",\n  \"{PLACEHOLDER}\",\n]"
    ));
    let (line, column) = position_of(&case.file, &format!("\"{PLACEHOLDER}\""));
    let error = case.error();
    assert!(
        error.starts_with(&format!(
            "conf/sombrero.toml:{line}:{column}: defaults.extra_authorized_keys: entry 2 \
             (\"{PLACEHOLDER}\") is not an SSH public key: the key data is not valid base64"
        )),
        "{error}"
    );

    let error = with_defaults("extra_authorized_keys = [\"ssh-dss AAAA ops@x\"]").error();
    assert!(
        error.contains("entry 1 (\"ssh-dss AAAA ops@x\") is not an SSH public key: unknown SSH key type \"ssh-dss\""),
        "{error}"
    );
    // Two keys in one entry would silently lose the second: refused.
    let error = with_defaults(&format!(
        "extra_authorized_keys = [\"\"\"\n{KEY}\n{OTHER_KEY}\n\"\"\"]"
    ))
    .error();
    assert!(error.contains("has several lines"), "{error}");
    // A private key pasted by mistake is refused and never echoed.
    let error = with_defaults(
        "extra_authorized_keys = [\"-----BEGIN OPENSSH PRIVATE KEY-----b3BlbnNzaC1rZXktdjE=\"]",
    )
    .error();
    assert!(
        error.contains("entry 1 (not shown) is not an SSH public key: this is a private key"),
        "{error}"
    );
    assert!(!error.contains("b3BlbnNzaC1rZXktdjE"), "{error}");
    // A long line keeps its type and comment, with the middle cut.
    let long = format!("ssh-rsa {} ops@long", "A".repeat(300));
    let error = with_defaults(&format!("extra_authorized_keys = [\"{long}\"]")).error();
    assert!(
        error.contains("(\"ssh-rsa AAAA")
            && error.contains("A...A")
            && error.contains("AAAA ops@long\")"),
        "{error}"
    );
    assert!(!error.contains(&"A".repeat(100)), "{error}");
}

#[test]
fn ansible_dir_from_the_file_mise_and_env() {
    let case = Case::new().replace("[paths]\n", "[paths]\nansible_dir = \"site/ansible\"\n");
    let dir = case.ok().paths.ansible_dir.expect("set in the file");
    assert_eq!(dir.value, Path::new("conf/site/ansible"));
    assert_eq!(dir.source, file_source("paths.ansible_dir"));

    let mise = case.mise("SOMBRERO_ANSIBLE_DIR = \"m/ansible\"");
    let dir = mise.ok().paths.ansible_dir.expect("set in mise");
    assert_eq!(dir.value, Path::new("conf/m/ansible"));
    assert_eq!(
        dir.source.to_string(),
        "conf/.mise.local.toml:env.SOMBRERO_ANSIBLE_DIR"
    );

    let env = mise.env("SOMBRERO_ANSIBLE_DIR", "/srv/ansible");
    let dir = env.ok().paths.ansible_dir.expect("set in the environment");
    assert_eq!(dir.value, Path::new("/srv/ansible"));
    assert_eq!(dir.source, Source::Env("SOMBRERO_ANSIBLE_DIR".into()));
}

#[test]
fn misspelt_new_keys_get_suggestions() {
    assert_eq!(
        closest_key("ssh_allow_user", VM_KEYS).as_deref(),
        Some("ssh_allow_users")
    );
    assert_eq!(
        closest_key("extra_authorised_keys", VM_KEYS).as_deref(),
        Some("extra_authorized_keys")
    );
    assert_eq!(
        closest_key("ssh_private_key", VM_KEYS).as_deref(),
        Some("ssh_private_key_file")
    );
    assert_eq!(
        closest_key("ansible", PATHS_KEYS).as_deref(),
        Some("ansible_dir")
    );
    let text = "[paths]\nansible_path = \"a\"\n[defaults]\nallow_users = [\"ops\"]\n";
    let error = ConfigFile::parse("s.toml", text).expect_err("unknown keys");
    let message = error.to_string();
    assert!(
        message.contains(
            "s.toml:2:1: paths.ansible_path: unknown key `ansible_path` (did you mean `ansible_dir`?)"
        ),
        "{message}"
    );
    assert!(
        message.contains(
            "s.toml:4:1: defaults.allow_users: unknown key `allow_users` (did you mean `ssh_allow_users`?)"
        ),
        "{message}"
    );
    // The shipped file (with its commented examples) still parses.
    ConfigFile::parse("sombrero.toml", SHIPPED).expect("shipped file is valid");
}
