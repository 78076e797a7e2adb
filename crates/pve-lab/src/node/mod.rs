//! The simulated Proxmox VE node: VMs, storages, tasks and guests behind the API.
//!
//! Why: the HTTP layer only speaks the wire format; everything a PVE node *does* lives
//! here, as plain state behind one lock plus background tokio tasks for PVE's workers.
//! The lab may be a cluster of several nodes (decision 110): one state holds every node's
//! VMs (each VM records its node) and volumes (local storages per node, one shared
//! storage); `membership` knows which nodes are up, and `migrate` moves VMs between them.
//! Handlers are grouped by what they touch: `cluster` (version, nodes, resources, nextid),
//! `vm` (list, config reads, status), `update` and `apply` (config writes),
//! `power` (start, stop, reboot, destroy), `resize`, `clone`, `template`, `create`,
//! `cloudinit`, `storage`, `download`, `tasks` (the task machinery)
//! and `task_api` (its endpoints). `persist` saves the state atomically when a state
//! dir is configured; `initial_state` builds a fresh node's state.
//!
//! Which backend a module serves: everything above keeps PVE's bookkeeping for both
//! kinds of guests. `agent::state_only` answers the agent endpoints of state-only guests
//! from the config; `agent::qemu` answers them from a real guest's agent; `qemu_hooks`
//! is what tasks do to real QEMU machines (nothing for state-only guests). The QEMU
//! backend itself is [`crate::qemu`].

mod agent;
mod apply;
mod clone;
mod cloudinit;
mod cluster;
mod config;
mod create;
mod crypt;
mod download;
mod initial_state;
mod locks;
mod membership;
mod migrate;
mod options;
mod params;
mod persist;
mod power;
mod qemu_hooks;
mod resize;
mod state;
mod storage;
mod task_api;
mod tasks;
mod template;
mod update;
mod vm;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

pub use self::membership::ClusterError;
pub use self::options::{
    NodeNameError, NodeOptions, TaskDurations, TaskFaults, validate_node_name,
};
pub(crate) use self::params::{param_bool, param_str, param_u64};
use self::state::{SplitMix, State};
use crate::api::{ApiError, ApiReply, ApiRequest, ApiResult, Method, Reply};

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds() -> u64 {
    unix_millis() / 1000
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// The longest wait the lab ever schedules (a year): keeps absurd factors from
/// overflowing instants.
const LONGEST_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// `base * factor`, never negative, never NaN, at most [`LONGEST_WAIT`].
fn multiply(base: Duration, factor: f64) -> Duration {
    let seconds = base.as_secs_f64() * factor;
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).map_or(LONGEST_WAIT, |duration| duration.min(LONGEST_WAIT))
}

/// Everything the handlers and the background tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub options: NodeOptions,
    state: Mutex<State>,
    store: Option<persist::Store>,
    version: AtomicU64,
    fault_random: Mutex<SplitMix>,
    /// Task-level faults in force; start as `options.faults`, changed by `/lab/faults`.
    task_faults: Mutex<TaskFaults>,
    /// Lock files held by running tasks.
    locks: locks::LockTable,
    /// Which cluster members are up.
    membership: membership::Membership,
}

impl Shared {
    /// Runs `reader` on the state.
    pub fn read<R>(&self, reader: impl FnOnce(&State) -> R) -> R {
        reader(&self.state.lock())
    }

    /// Runs `writer` on the state, then saves it when a state dir is configured.
    pub fn write<R>(&self, writer: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock();
        let result = writer(&mut state);
        let Some(store) = &self.store else {
            return result;
        };
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        let snapshot = serde_json::to_vec_pretty(&*state);
        drop(state);
        match snapshot {
            Ok(bytes) => store.save(version, &bytes),
            Err(error) => tracing::error!(%error, "cannot serialize the lab state"),
        }
        result
    }

    /// Runs `writer` without saving (task log lines; the task's end saves).
    pub fn write_quiet<R>(&self, writer: impl FnOnce(&mut State) -> R) -> R {
        writer(&mut self.state.lock())
    }

    /// A base duration scaled by the time scale (lock timeouts, agent boot delay).
    pub fn scaled(&self, base: Duration) -> Duration {
        multiply(base, self.options.time_scale)
    }

    /// A task's work duration: scaled, and multiplied by the `slow` fault.
    pub fn scaled_work(&self, base: Duration) -> Duration {
        multiply(self.scaled(base), self.task_faults.lock().slow)
    }

    /// Decides, deterministically from the fault seed, whether a new task gets a fault.
    fn draw_task_fault(&self) -> Option<tasks::InjectedFault> {
        let faults = *self.task_faults.lock();
        if faults.lock_timeout <= 0.0 && faults.task_fail <= 0.0 {
            return None;
        }
        let mut random = self.fault_random.lock();
        if random.next_fraction() < faults.lock_timeout {
            return Some(tasks::InjectedFault::LockTimeout);
        }
        if random.next_fraction() < faults.task_fail {
            return Some(tasks::InjectedFault::Fail);
        }
        None
    }

    /// Decides, deterministically from the fault seed, whether a started guest's agent
    /// never comes up.
    pub fn draw_agent_never(&self) -> bool {
        let probability = self.task_faults.lock().agent_never;
        probability > 0.0 && self.fault_random.lock().next_fraction() < probability
    }
}

/// The node's state and the handlers for every implemented endpoint.
#[derive(Debug, Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

impl Default for Node {
    fn default() -> Self {
        Self::in_memory(NodeOptions::default())
    }
}

impl Node {
    /// A node with `options`; with a state dir, the saved state is loaded (or built fresh and
    /// saved on first start).
    ///
    /// # Errors
    /// The state dir cannot be created, read or written, or its state file is corrupt.
    pub fn new(mut options: NodeOptions) -> std::io::Result<Self> {
        let Some(dir) = options.state_dir.clone() else {
            return Ok(Self::in_memory(options));
        };
        let store = persist::Store::open(&dir)?;
        let state = match store.load()? {
            Some(mut state) => {
                tasks::fail_interrupted(&mut state);
                state.adopt_single_node(&options.name);
                let strangers: Vec<String> = state
                    .nodes_in_use()
                    .into_iter()
                    .filter(|node| !options.is_member(node))
                    .collect();
                if options.join_saved_nodes {
                    options.peers.extend(strangers);
                } else if !strangers.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "the saved lab state in {} has VMs or disks on node(s) {}, which are not members of this lab's cluster ({}); start it with all of them in --nodes",
                            dir.display(),
                            strangers.join(", "),
                            options.cluster_nodes().join(","),
                        ),
                    ));
                }
                initial_state::add_missing_nodes(&mut state, &options);
                state
            }
            None => initial_state::fresh(&options),
        };
        let node = Self::build(options, state, Some(store));
        node.shared.write(|_| ());
        Ok(node)
    }

    /// A node that keeps its state in memory only (ignores `options.state_dir`).
    pub fn in_memory(options: NodeOptions) -> Self {
        let state = initial_state::fresh(&options);
        Self::build(options, state, None)
    }

    fn build(options: NodeOptions, mut state: State, store: Option<persist::Store>) -> Self {
        state.has_shared_storage = options.has_shared_storage();
        let fault_random = SplitMix::new(options.faults.seed);
        let task_faults = options.faults;
        Self {
            shared: Arc::new(Shared {
                task_faults: Mutex::new(task_faults),
                options,
                state: Mutex::new(state),
                store,
                version: AtomicU64::new(0),
                fault_random: Mutex::new(fault_random),
                locks: locks::LockTable::default(),
                membership: membership::Membership::default(),
            }),
        }
    }

    /// The task-level faults in force.
    pub fn task_faults(&self) -> TaskFaults {
        *self.shared.task_faults.lock()
    }

    /// Replaces the task-level faults while the lab runs; the fault draws restart from
    /// the new seed, so a drill replays the same way.
    pub fn set_task_faults(&self, faults: TaskFaults) {
        *self.shared.fault_random.lock() = SplitMix::new(faults.seed);
        *self.shared.task_faults.lock() = faults;
    }

    /// The node's name (`lloyd` by default).
    pub fn name(&self) -> &str {
        &self.shared.options.name
    }

    /// Finished tasks as `(type, id, duration)`, oldest first: what the node was busy
    /// with, for benchmarks that compare a client's wall time with it.
    pub fn task_durations(&self) -> Vec<(String, String, Duration)> {
        self.shared.read(|state| {
            state
                .tasks
                .iter()
                .filter_map(|task| {
                    let ended = task.ended_ms?;
                    let millis = ended.saturating_sub(task.started_ms);
                    Some((
                        task.kind.clone(),
                        task.id.clone(),
                        Duration::from_millis(millis),
                    ))
                })
                .collect()
        })
    }

    /// How long after a start the guest agent answers (scaled), as configured.
    pub fn agent_boot_delay(&self) -> Duration {
        self.shared.scaled(self.shared.options.agent_boot_delay)
    }

    /// Answers one validated request.
    ///
    /// # Errors
    /// PVE's error for the request (status, message, per-parameter errors).
    pub async fn handle(&self, request: ApiRequest) -> ApiReply {
        let shared = &self.shared;
        if request.path_params.contains_key("node") {
            let node = request.path("node");
            if !shared.options.is_member(node) {
                return Err(ApiError::internal(format!(
                    "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
                )));
            }
            if !shared.membership.is_online(node) {
                return Err(membership::unreachable());
            }
        }
        if let Some(answer) = agent::qemu::intercept(shared, &request).await {
            return answer.map(Reply::data);
        }
        if request.method != Method::Get && !membership::is_quorate(shared) {
            // Guest agent commands above change no configuration and still work.
            return Err(membership::no_quorum());
        }
        match (request.method, request.template.as_str()) {
            // The two pages whose envelope also carries `total`.
            (Method::Get, "/nodes/{node}/tasks") => task_api::list(shared, &request),
            (Method::Get, "/nodes/{node}/tasks/{upid}/log") => task_api::log(shared, &request),
            _ => data_endpoint(shared, &request).await.map(Reply::data),
        }
    }
}

/// The endpoints whose answer is `data` alone.
async fn data_endpoint(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let template = request.template.as_str();
    match (request.method, template) {
        (Method::Get, "/version") => Ok(cluster::version()),
        (Method::Get, "/access/permissions") => {
            Ok(crate::permissions::effective(&request.identity))
        }
        (Method::Get, "/nodes") => Ok(cluster::nodes(shared)),
        (Method::Get, "/nodes/{node}") => Ok(cluster::node_index()),
        (Method::Get, "/nodes/{node}/status") => Ok(cluster::node_status(shared, request)),
        (Method::Get, "/cluster/status") => Ok(membership::cluster_status(shared)),
        (Method::Get, "/nodes/{node}/network") => Ok(cluster::network(request)),
        (Method::Get, "/cluster/resources") => Ok(cluster::resources(shared, request)),
        (Method::Get, "/cluster/nextid") => cluster::next_id(shared, request),
        (Method::Get, "/nodes/{node}/qemu") => vm::list(shared, request),
        (Method::Post, "/nodes/{node}/qemu") => create::create(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}") => vm::index(shared, request),
        (Method::Delete, "/nodes/{node}/qemu/{vmid}") => power::destroy(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}/config") => vm::config(shared, request),
        (Method::Put, "/nodes/{node}/qemu/{vmid}/config") => update::put(shared, request),
        (Method::Post, "/nodes/{node}/qemu/{vmid}/config") => update::post(shared, request).await,
        (Method::Get, "/nodes/{node}/qemu/{vmid}/pending") => vm::pending(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}/cloudinit") => cloudinit::pending(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}/cloudinit/dump") => {
            cloudinit::dump(shared, request)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/clone") => clone::clone(shared, request),
        (Method::Post, "/nodes/{node}/qemu/{vmid}/template") => template::template(shared, request),
        (Method::Post, "/nodes/{node}/qemu/{vmid}/migrate") => migrate::migrate(shared, request),
        (Method::Put, "/nodes/{node}/qemu/{vmid}/resize") => resize::resize(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}/status") => vm::status_index(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}/status/current") => {
            vm::status_current(shared, request)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/status/start") => power::start(shared, request),
        (Method::Post, "/nodes/{node}/qemu/{vmid}/status/stop") => {
            power::stop(shared, request, false)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/status/shutdown") => {
            power::stop(shared, request, true)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/status/reboot") => power::reboot(shared, request),
        (Method::Get, "/nodes/{node}/qemu/{vmid}/agent") => {
            agent::state_only::index(shared, request)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/agent") => {
            agent::state_only::command(shared, request)
        }
        (Method::Put, "/nodes/{node}/qemu/{vmid}/cloudinit") => {
            cloudinit::regenerate(shared, request)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/agent/ping") => {
            agent::state_only::ping(shared, request)
        }
        (Method::Get, "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces") => {
            agent::state_only::interfaces(shared, request)
        }
        (Method::Post, "/nodes/{node}/qemu/{vmid}/agent/exec") => {
            agent::state_only::exec(shared, request)
        }
        (Method::Get, "/nodes/{node}/qemu/{vmid}/agent/exec-status") => {
            agent::state_only::exec_status(shared, request)
        }
        (Method::Get, "/nodes/{node}/qemu/{vmid}/agent/file-read") => {
            agent::state_only::file_read(shared, request)
        }
        (Method::Get, "/nodes/{node}/tasks/{upid}") => task_api::index(shared, request),
        (Method::Get, "/nodes/{node}/tasks/{upid}/status") => task_api::status(shared, request),
        (Method::Get, "/nodes/{node}/storage") => storage::list(shared, request),
        (Method::Get, "/nodes/{node}/storage/{storage}") => storage::index(shared, request),
        (Method::Get, "/nodes/{node}/storage/{storage}/content") => {
            storage::content(shared, request)
        }
        (Method::Post, "/nodes/{node}/storage/{storage}/download-url") => {
            download::download_url(shared, request)
        }
        (Method::Get, "/nodes/{node}/storage/{storage}/content/{volume}") => {
            storage::volume(shared, request)
        }
        _ => Err(not_implemented(request)),
    }
}

/// PVE's answer for a path or method the lab does not serve.
fn not_implemented(request: &ApiRequest) -> ApiError {
    let method = match request.method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
    };
    let mut path = request.template.clone();
    for (name, value) in &request.path_params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    ApiError::new(501, format!("Method '{method} {path}' not implemented"))
}
