//! `sombrero configure`: stage 3 on the environment's VM, from stage 2's outputs.
//!
//! Why the checks come first: a missing private key, a missing Ansible or a missing
//! deploy are found before anything connects, each with the one thing to do about it.
//! The run is recorded with one phase per role; `ansible-results.json` is written from
//! what the VM reports, failures included.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sombrero_core::configure::{
    self, AnsibleInstall, AnsibleTree, ConfigureError, ConfigureReport, ConfigureRequest,
    PlaybookVars,
};
use sombrero_core::deploy::{Layout, outputs};
use sombrero_core::history::Run;
use sombrero_core::settings::{Settings, SshKeySetting, env_vars};
use sombrero_core::ssh::{self, KeySearch, PrivateKey, SshTarget};

use super::configure_view::{recap, show_and_record};
use crate::context::Context;
use crate::exit::{BadInput, ExitStatus};
use crate::recording::recorded;

/// How long configure waits for cloud-init by default (`SOMBRERO_CLOUD_INIT_WAIT`).
const CLOUD_INIT_WAIT: Duration = Duration::from_secs(600);

/// sombrero's cache directory (`$XDG_CACHE_HOME/sombrero`, else `~/.cache/sombrero`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("sombrero")
}

/// The private half of the VM's key, searched as docs/configuration.md describes.
///
/// # Errors
/// [`ConfigureError::Key`] naming what was looked at.
pub fn private_key(settings: &Settings) -> Result<PrivateKey, ConfigureError> {
    let vm = &settings.vm;
    let configured = vm
        .ssh_private_key_file
        .as_ref()
        .map(|file| (file.value.as_path(), file.source.to_string()));
    let public_file = match vm.ssh_public_key.as_ref().map(|key| &key.value) {
        Some(SshKeySetting::File { file }) => Some(file.as_path()),
        _ => None,
    };
    let public_key = settings
        .ssh_public_key(|path| std::fs::read_to_string(path))
        .ok();
    let search = KeySearch {
        configured,
        public_file,
        public_key: public_key.as_ref(),
        ssh_dir: std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ssh")),
    };
    Ok(ssh::key::find(&search, ssh::key::agent_keys)?)
}

/// The `ansible-playbook` to use, installing the private one when needed.
///
/// # Errors
/// [`ConfigureError::AnsibleNotInstallable`].
pub async fn ansible(context: &Context) -> Result<AnsibleInstall, ConfigureError> {
    let cache = cache_dir();
    if let Some(found) = configure::ansible::find(&cache) {
        return Ok(found);
    }
    let printer = context.printer.clone();
    printer.info(&format!(
        "no ansible-playbook {}.{}+ on PATH: installing ansible-core {} privately",
        configure::ansible::MIN_VERSION.0,
        configure::ansible::MIN_VERSION.1,
        configure::ansible::PINNED_VERSION
    ));
    configure::ansible::install_private(&cache, &move |line: &str| {
        printer.info(&format!("  {line}"));
    })
    .await
}

fn cloud_init_wait(env: &std::collections::HashMap<String, String>) -> Duration {
    env.get(env_vars::SOMBRERO_CLOUD_INIT_WAIT)
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(CLOUD_INIT_WAIT, Duration::from_secs)
}

/// Everything configure needs, checked before anything connects.
async fn prepare(context: &Context, stamp: &str) -> anyhow::Result<ConfigureRequest> {
    let settings = &context.settings;
    let environment = settings.environment.value.clone();
    let layout = Layout::new(&settings.paths.outputs_dir.value, &environment);
    let outputs = outputs::read(&layout).ok_or_else(|| ConfigureError::NoOutputs {
        environment: environment.clone(),
        path: layout.outputs(),
    })?;
    let key = private_key(settings)?;
    tracing::info!("ssh key: {}", key.describe());
    let ansible = ansible(context).await?;
    tracing::info!("ansible: {}", ansible.describe());
    let project = settings.config_file.parent().unwrap_or(Path::new("."));
    let configured = settings
        .paths
        .ansible_dir
        .as_ref()
        .map(|dir| (dir.value.as_path(), dir.source.to_string()));
    let tree = AnsibleTree::locate(configured, project, &cache_dir())?;
    tracing::info!("playbooks: {} ({:?})", tree.dir.display(), tree.origin);
    let user = outputs.ssh_user.clone();
    let mut allow = settings.vm.ssh_allow_users.value.clone();
    if !allow.contains(&user) {
        allow.insert(0, user.clone());
    }
    let vars = PlaybookVars {
        sombrero_version: env!("CARGO_PKG_VERSION").to_owned(),
        jump_man_user: user,
        ssh_allow_users: allow,
        extra_authorized_keys: settings
            .vm
            .extra_authorized_keys
            .value
            .iter()
            .map(|key| key.as_str().to_owned())
            .collect(),
        ansible_ssh_private_key_file: key.path().map(|path| path.display().to_string()),
    };
    let logs_dir = settings
        .paths
        .outputs_dir
        .value
        .parent()
        .map_or_else(|| PathBuf::from("logs"), |dir| dir.join("logs"));
    Ok(ConfigureRequest {
        target: SshTarget::from_outputs(&outputs, key),
        outputs,
        ansible,
        tree,
        vars,
        layout,
        logs_dir,
        stamp: stamp.to_owned(),
        cloud_init_wait: cloud_init_wait(&crate::resolution::process_env()),
    })
}

/// The refusal of `--lab`'s state-only guests (there is no machine to configure).
pub fn needs_real_guest() -> anyhow::Error {
    BadInput {
        message: "configure needs a real guest, and --lab's guests are state-only (there \
                  is no machine to configure)"
            .to_owned(),
        hint: Some(
            "start a lab with real QEMU guests (`sombrero lab doctor` says whether this \
             machine can): `sombrero lab serve --guests qemu --with-template`, point \
             TF_VAR_pve_api_url at it, then `sombrero deploy` and `sombrero configure`; or \
             rehearse everything with `sombrero up --lab`"
                .to_owned(),
        ),
    }
    .into()
}

/// Stage 3 inside a recorded run: `configure:prepare`, then one phase per step and per
/// Ansible role. `up` runs it inside its own run.
///
/// # Errors
/// No outputs, no key or a bad tree (exit 2); SSH, cloud-init and Ansible failures (exit 1).
pub async fn stage(context: &Context, run: Option<&Run<'_>>) -> anyhow::Result<ConfigureReport> {
    let stamp = sombrero_core::history::clock::id_stamp(sombrero_core::history::clock::now_ms());
    // Recorded too: a run that stops here (no outputs, no key, no Ansible) is history.
    let request = match run {
        Some(run) => {
            run.phase_async("configure:prepare", prepare(context, &stamp))
                .await?
        }
        None => prepare(context, &stamp).await?,
    };
    let request = &request;
    let work = |events: Box<dyn Fn(&_) + Send + Sync>| async move {
        configure::run(request, &*events).await
    };
    Ok(show_and_record(run, &context.printer, ("configure", true), work).await?)
}

/// Runs `sombrero configure`.
///
/// # Errors
/// As [`stage`].
pub async fn run(context: &Context) -> anyhow::Result<ExitStatus> {
    let printer = &context.printer;
    if context.lab().is_some() && !context.lab_has_real_guests() {
        return Err(needs_real_guest());
    }
    let work = async |run: Option<&Run<'_>>| stage(context, run).await;
    let Some(result) = recorded(context, "configure", work).await else {
        return Ok(ExitStatus::Interrupted);
    };
    let report = result?;
    if printer.json_mode() {
        printer.json(&report.results)?;
    } else {
        printer.data(&recap(&report));
    }
    Ok(ExitStatus::Success)
}
