//! The invocation context: everything a command works with, built once by the dispatcher
//! before the command runs.
//!
//! Why: every command needs the same things (resolved settings, the printer, a Proxmox
//! client, the history store and the run it records, the in-process lab of `--lab`, and
//! soon the environment lock). Assembling them inside each command let settings be
//! resolved twice and `--lab` rewrite them afterwards; here they are assembled in one
//! order, once: start the lab (if asked), resolve with the lab as the highest layer, print
//! the resolution warnings. Parts a command may not need (the client, the history
//! database) are made on first use, so `config show` works without an API URL and reading
//! commands never create a database; made once, they are shared by the whole command.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use pve::Client;
use pve_lab::LabHandle;
use sombrero_core::history::{
    self, CommandScope, HistoryLocation, MetricsFilter, Run, RunStart, Store, clock,
};
use sombrero_core::lock::{FileLocks, HeldLock, Holder, LockBackend, LockScope, PostgresLocks};
use sombrero_core::settings::{Settings, SettingsErrors, env_vars};

use crate::cli::GlobalArgs;
use crate::lab_mode::{LabGuests, NoRealGuests};
use crate::printer::Printer;
use crate::resolution::{self, Overrides};

/// The context of a command that works on an environment (everything but `completions`,
/// `lab`, `validate` and the history readers).
#[derive(Debug)]
pub struct Context {
    pub printer: Printer,
    pub settings: Settings,
    timeouts: sombrero_core::deploy::Timeouts,
    /// The environment's lock, for a command that writes; released with the context.
    #[expect(dead_code, reason = "held, not read: dropping it releases the lock")]
    lock: Option<Box<dyn HeldLock>>,
    /// The in-process lab of `--lab`; it runs as long as the context lives. Declared
    /// after the lock so the lock is released first.
    lab: Option<LabHandle>,
    /// The lab runs real QEMU guests (only `up --lab` asks for them).
    lab_real: bool,
    /// Why the lab's guests are state-only although real ones were asked for.
    no_real_guests: Option<NoRealGuests>,
    /// What the settings were resolved from, for resolving another environment the same
    /// way (`destroy --all`).
    global: GlobalArgs,
    overrides: Overrides,
    client: OnceLock<Client>,
    history: OnceLock<Option<Store>>,
}

/// What a command does to its environment, which decides whether it takes the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only (`plan`, `status`, `outputs`, `config show`): never locks, never waits.
    Read,
    /// Writes (`deploy`, `destroy`, `adopt`): takes the environment's lock first, as the
    /// named command.
    Write(&'static str),
}

impl Context {
    /// Starts the lab for `--lab` (state-only guests), then resolves the settings (the
    /// lab as the highest layer) and prints their warnings. `template` is the command's
    /// `--template`. Call inside the runtime (the lab runs on it).
    ///
    /// # Errors
    /// Configuration problems (exit 2); a lab that does not start.
    pub async fn build(
        global: &GlobalArgs,
        printer: &Printer,
        template: Option<u32>,
        access: Access,
    ) -> anyhow::Result<Self> {
        Self::build_with(global, printer, template, access, LabGuests::StateOnly).await
    }

    /// [`Context::build`] with the lab's guests chosen (`up --lab` asks for real ones).
    ///
    /// # Errors
    /// As [`Context::build`].
    pub async fn build_with(
        global: &GlobalArgs,
        printer: &Printer,
        template: Option<u32>,
        access: Access,
        guests: LabGuests,
    ) -> anyhow::Result<Self> {
        let env = resolution::process_env();
        let mut overrides = Overrides {
            template,
            lab: None,
        };
        let mut lab = None;
        let mut lock = None;
        let (mut lab_real, mut no_real_guests) = (false, None);
        if global.lab {
            // Resolved without the lab only to find where the lab lives (node name and
            // state directory); the settings the command sees come from the next call.
            let located = resolution::resolve(global, overrides.clone(), &env)?;
            // A writer locks before its lab starts: a refused run must not load (and
            // save) the state another run's lab is changing.
            if let Access::Write(command) = access {
                let state = crate::lab_mode::state_dir(&located);
                lock = take_lock(&located, Some(&state), command, &env, printer)?;
            }
            let started = crate::lab_mode::start(&located, &env, guests, printer).await?;
            printer.info(&format!(
                "lab: in-process Proxmox VE API at {} (node {}, {} guests)",
                started.handle.url(),
                located.vm.node.value,
                if started.real {
                    "real QEMU"
                } else {
                    "state-only"
                }
            ));
            overrides.lab = Some(started.layer);
            lab = Some(started.handle);
            lab_real = started.real;
            no_real_guests = started.no_real_guests;
        }
        let settings = resolution::resolve(global, overrides.clone(), &env)?;
        for warning in &settings.warnings {
            printer.warn(warning);
        }
        if let (Access::Write(command), false) = (access, global.lab) {
            lock = take_lock(&settings, None, command, &env, printer)?;
        }
        let timeouts = sombrero_core::deploy::Timeouts::default()
            .with_agent_wait(env.get(env_vars::SOMBRERO_AGENT_WAIT).map(String::as_str));
        Ok(Self {
            printer: printer.clone(),
            settings,
            timeouts,
            lock,
            lab,
            lab_real,
            no_real_guests,
            global: global.clone(),
            overrides,
            client: OnceLock::new(),
            history: OnceLock::new(),
        })
    }

    /// The deadlines of stage 2's waits (`SOMBRERO_AGENT_WAIT` shortens the agent's).
    pub fn timeouts(&self) -> sombrero_core::deploy::Timeouts {
        self.timeouts
    }

    /// The in-process lab, when the command runs with `--lab`.
    pub fn lab(&self) -> Option<&LabHandle> {
        self.lab.as_ref()
    }

    /// Whether the in-process lab runs real QEMU guests.
    pub fn lab_has_real_guests(&self) -> bool {
        self.lab_real
    }

    /// Why the in-process lab's guests are state-only although real ones were asked for.
    pub fn no_real_guests(&self) -> Option<&NoRealGuests> {
        self.no_real_guests.as_ref()
    }

    /// The settings of another environment, resolved exactly as this command's were
    /// (same flags, files and lab); its warnings are the ones already printed.
    ///
    /// # Errors
    /// Configuration problems of that environment (exit 2).
    pub fn settings_of(&self, environment: &str) -> anyhow::Result<Settings> {
        let mut global = self.global.clone();
        global.env = Some(environment.to_owned());
        let env = resolution::process_env();
        Ok(resolution::resolve(&global, self.overrides.clone(), &env)?)
    }

    /// Takes `settings`' environment's lock for `command` (another environment than the
    /// context's own, whose lock the context already holds).
    ///
    /// # Errors
    /// Another run holds it (exit 1), or the lock directory cannot be written.
    pub fn lock_environment(
        &self,
        settings: &Settings,
        command: &str,
    ) -> anyhow::Result<Option<Box<dyn HeldLock>>> {
        let env = resolution::process_env();
        let state = self
            .lab
            .as_ref()
            .map(|_| crate::lab_mode::state_dir(settings));
        take_lock(settings, state.as_deref(), command, &env, &self.printer)
    }

    /// The Proxmox client for the resolved API settings, made on first use.
    ///
    /// # Errors
    /// No API URL or credentials (exit 2); client setup errors (a CA file that cannot be
    /// read, ...).
    pub fn client(&self) -> anyhow::Result<&Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = client_from_settings(&self.settings)?;
        Ok(self.client.get_or_init(|| client))
    }

    /// The history store, opened on first use; `None` (with a warning, once) when it
    /// cannot be opened: a run that cannot be recorded still runs.
    pub fn history(&self) -> Option<&Store> {
        self.history
            .get_or_init(|| {
                let location = &self.settings.paths.history.value;
                let project = self.settings.config_file.parent().unwrap_or(Path::new(""));
                let opened = match location {
                    HistoryLocation::File(path) => Store::open_in_project(path, project),
                    HistoryLocation::Postgres(_) => Store::open_location(location),
                };
                opened
                    .inspect_err(|error| {
                        self.printer.warn(&format!(
                            "the run is not recorded: cannot open the history at {location}: \
                             {error}"
                        ));
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Starts recording `command` for the selected environment (`None`, with a warning,
    /// when the history is unavailable).
    pub fn start_run(&self, command: &str) -> Option<Run<'_>> {
        let mut start = RunStart::new(
            command,
            &self.settings.environment.value,
            env!("CARGO_PKG_VERSION"),
        );
        start.vm_id = Some(i64::from(self.settings.vm.vmid.value));
        start.working_directory = self.settings.config_file.parent().map(ToOwned::to_owned);
        self.start_run_as(&start)
    }

    /// Starts recording a run described by `start` (commands that record no VM id).
    pub fn start_run_as(&self, start: &RunStart) -> Option<Run<'_>> {
        match self.history()?.start_run(start) {
            Ok(run) => Some(run),
            Err(error) => {
                self.printer
                    .warn(&format!("the run is not recorded: {error}"));
                None
            }
        }
    }
}

/// Where this machine's locks are: `$XDG_STATE_HOME/sombrero/locks`, else
/// `$HOME/.local/state/sombrero/locks`, else under the temporary directory.
fn lock_directory(env: &std::collections::HashMap<String, String>) -> PathBuf {
    let nonempty = |name: &str| env.get(name).filter(|value| !value.is_empty());
    let state = nonempty("XDG_STATE_HOME").map_or_else(
        || {
            nonempty("HOME").map_or_else(
                || std::env::temp_dir().join("sombrero-state"),
                |home| PathBuf::from(home).join(".local/state"),
            )
        },
        PathBuf::from,
    );
    state.join("sombrero").join("locks")
}

/// Takes the environment's lock for `command`, saying so when it takes over the lock of
/// a run that was killed. No API URL means no lock: the command fails before its first
/// request anyway. The in-process lab is identified by its state directory (its URL's
/// port changes with every run).
///
/// # Errors
/// [`sombrero_core::lock::LockError`]: another run holds the lock (exit 1), or the lock
/// directory cannot be written.
fn take_lock(
    settings: &Settings,
    lab_state: Option<&std::path::Path>,
    command: &str,
    env: &std::collections::HashMap<String, String>,
    printer: &Printer,
) -> anyhow::Result<Option<Box<dyn HeldLock>>> {
    let endpoint = match (lab_state, &settings.api.url) {
        // Absolute, not canonical: the directory may not exist before the lab's first
        // start, and the key must be the same before and after.
        (Some(state), _) => format!(
            "lab:{}",
            std::path::absolute(state)
                .unwrap_or_else(|_| state.to_owned())
                .display()
        ),
        (None, Some(url)) => url.value.to_string(),
        (None, None) => return Ok(None),
    };
    let scope = LockScope {
        endpoint,
        environment: settings.environment.value.clone(),
    };
    // With a team history in PostgreSQL the lock is the team's (every machine sharing
    // the database contends); otherwise it is this machine's.
    let holder = Holder::this_process(command);
    let acquired = match &settings.paths.history.value {
        HistoryLocation::Postgres(url) => {
            PostgresLocks::new(url.clone()).acquire(&scope, &holder)?
        }
        HistoryLocation::File(_) => FileLocks::new(lock_directory(env)).acquire(&scope, &holder)?,
    };
    if let Some(previous) = acquired.took_over {
        printer.warn(&format!(
            "took over the lock of environment {} from {previous}, whose process is gone",
            scope.environment
        ));
    }
    Ok(Some(acquired.lock))
}

/// A client from resolved settings: URL, token (or user and password), TLS trust.
///
/// # Errors
/// [`sombrero_core::settings::SettingsError`] when the URL or credentials are missing
/// (exit 2); client setup errors.
fn client_from_settings(settings: &Settings) -> anyhow::Result<Client> {
    let api = &settings.api;
    let mut builder = Client::builder(settings.require_api_url()?.as_str());
    // A token wins; user and password (ticket login) only when no token is set.
    builder = if let (None, Some(user), Some(password)) = (&api.token, &api.username, &api.password)
    {
        builder.password(&user.value, password.value.clone())
    } else {
        builder.token(settings.require_api_token()?.clone())
    };
    // An insecure TLS mode is announced by the client itself (a tracing warning).
    Ok(builder.tls(settings.tls_mode()).build()?)
}

/// The context of `history`, `metrics`, `report`, `checklist` and `issue add`: they read
/// (or append to) the history and work without a configuration file.
#[derive(Debug)]
pub struct HistoryContext {
    pub printer: Printer,
    pub global: GlobalArgs,
    /// The history: the resolved `paths.history` when a configuration file exists, else
    /// `SOMBRERO_HISTORY`, else the default.
    pub location: HistoryLocation,
}

impl HistoryContext {
    /// Finds the history database.
    ///
    /// # Errors
    /// Configuration problems in an existing configuration file (exit 2).
    pub fn build(global: &GlobalArgs, printer: &Printer) -> anyhow::Result<Self> {
        let env = resolution::process_env();
        let location = if resolution::config_path(global, &env).exists() {
            let settings = resolution::resolve(global, Overrides::default(), &env)?;
            for warning in &settings.warnings {
                printer.warn(warning);
            }
            settings.paths.history.value
        } else {
            match env
                .get(env_vars::SOMBRERO_HISTORY)
                .filter(|value| !value.is_empty())
            {
                // The message never repeats the value: it may carry a password.
                Some(raw) => {
                    HistoryLocation::parse(raw, |raw| PathBuf::from(raw)).map_err(|message| {
                        anyhow::Error::new(crate::exit::BadInput {
                        message: format!(
                            "environment variable {}: {message}",
                            env_vars::SOMBRERO_HISTORY
                        ),
                        hint: Some(
                            "docs/configuration.md, \"History in PostgreSQL\", shows the URL's form"
                                .to_owned(),
                        ),
                    })
                    })?
                }
                None => HistoryLocation::File(history::default_path()),
            }
        };
        Ok(Self {
            printer: printer.clone(),
            global: global.clone(),
            location,
        })
    }

    /// Opens the history for reading (an empty one if the file does not exist yet).
    ///
    /// # Errors
    /// A [`history::HistoryError`] naming the path.
    pub fn open_for_reading(&self) -> anyhow::Result<Store> {
        Ok(match &self.location {
            HistoryLocation::File(path) => Store::open_existing(path)?,
            HistoryLocation::Postgres(_) => Store::open_location(&self.location)?,
        })
    }

    /// Opens the history for writing (`history import`): a file is created if missing.
    ///
    /// # Errors
    /// A [`history::HistoryError`] naming the location.
    pub fn open_for_writing(&self) -> anyhow::Result<Store> {
        Ok(Store::open_location(&self.location)?)
    }

    /// The metrics filter from `--env`, `--since` and `--command` (none: the pipeline's
    /// runs; `all`: every command's).
    ///
    /// # Errors
    /// [`history::HistoryError::BadTime`] for an unreadable `--since`.
    pub fn filter(
        &self,
        since: Option<&str>,
        command: Option<&str>,
    ) -> anyhow::Result<MetricsFilter> {
        let since_ms = since
            .map(|text| clock::parse_since(text, clock::now_ms()))
            .transpose()?;
        Ok(MetricsFilter {
            environment: self.global.env.clone(),
            since_ms,
            commands: CommandScope::from_flag(command),
        })
    }
}

/// `validate`'s context: the resolution itself is what it reports on.
#[derive(Debug)]
pub struct ValidationContext {
    pub printer: Printer,
    /// The settings, or every problem found (including pipeline values nothing sets).
    pub resolved: Result<Settings, SettingsErrors>,
}

impl ValidationContext {
    /// Resolves for validation, printing the warnings of a successful resolution.
    pub fn build(global: &GlobalArgs, printer: &Printer) -> Self {
        let env = resolution::process_env();
        let resolved = resolution::resolve_for_validation(global, &env);
        if let Ok(settings) = &resolved {
            for warning in &settings.warnings {
                printer.warn(warning);
            }
        }
        Self {
            printer: printer.clone(),
            resolved,
        }
    }
}

/// The runtime every context command runs on (the in-process lab runs on it too).
///
/// # Errors
/// The runtime cannot start.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
