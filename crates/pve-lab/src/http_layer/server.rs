//! Starting and stopping a lab: listener, TLS, connections, shutdown.
//!
//! Why: tests start a lab in-process on `127.0.0.1:0` and `sombrero lab serve` starts one
//! for people; both go through [`Lab::start`], which refuses non-loopback addresses (the
//! project's network rule), sets up TLS and credentials (kept in the state dir when there
//! is one) and serves connections with hyper directly. hyper rather than a framework
//! because the lab routes by the PVE schema, not by code, and because the `reset` fault
//! needs control over the socket: a reset connection is closed with `SO_LINGER 0`, which
//! makes the kernel send a TCP RST, what a crashed proxy looks like to a client.
//!
//! Place in the direction: the top of the HTTP layer. It builds the [`Shared`] state and
//! hands the listener to [`super::connection`]; nothing below imports it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::connection::accept_loop;
use super::shared::Shared;
use crate::auth::{Auth, Credentials, FULL_TOKEN_ID, READONLY_TOKEN_ID, ROOT_USER};
use crate::faults::{FaultSpec, Faults};
use crate::node::{Node, NodeOptions};
use crate::requests::RequestLog;
use crate::tls::{TlsError, TlsMaterial};

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Where to listen; must be a loopback address. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// HTTPS with the lab's self-signed certificate (plain HTTP when false: tests only).
    pub tls: bool,
    /// Keep state, certificate and credentials here across restarts; `None`: in memory.
    pub state_dir: Option<PathBuf>,
    /// Faults to inject (HTTP-level here, task-level in the node).
    pub faults: FaultSpec,
    /// How long a 401 answer is delayed (PVE: about 3 s, against brute force).
    pub auth_failure_delay: Duration,
    /// The largest request body accepted (PVE: 64 KiB); larger ones get 413.
    pub body_limit: usize,
    /// The simulated node (name, task durations, time scale, starting template). Its
    /// `state_dir`, `faults` and `ssl_fingerprint` are set from the fields above.
    pub node: NodeOptions,
}

impl Default for LabOptions {
    /// What `sombrero lab serve` uses: HTTPS on `127.0.0.1:8006`, PVE's 3 s auth delay.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8006)),
            tls: true,
            state_dir: None,
            faults: FaultSpec::default(),
            auth_failure_delay: Duration::from_secs(3),
            body_limit: 64 * 1024,
            node: NodeOptions::default(),
        }
    }
}

impl LabOptions {
    /// For tests: plain HTTP on `127.0.0.1:0`, in memory, 10 ms auth delay, tasks 100x
    /// faster.
    pub fn for_tests() -> Self {
        let mut options = Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            auth_failure_delay: Duration::from_millis(10),
            ..Self::default()
        };
        options.node.time_scale = 0.01;
        options
    }
}

impl LabOptions {
    /// The same options for a cluster of `names` (the first answers the API; see
    /// [`NodeOptions::set_nodes`]). For tests in any crate:
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let options = pve_lab::LabOptions::for_tests().with_nodes(["lloyd", "pve2", "pve3"])?;
    /// let lab = pve_lab::Lab::start(options).await?;
    /// lab.node().set_node_online("pve2", false)?; // pve2 loses power
    /// lab.node().set_node_online("pve2", true)?; // and boots again
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// An empty list, an invalid node name or a name given twice.
    pub fn with_nodes<Name: AsRef<str>>(
        mut self,
        names: impl IntoIterator<Item = Name>,
    ) -> Result<Self, crate::node::NodeNameError> {
        self.node.set_nodes(names)?;
        Ok(self)
    }
}

/// Why a lab could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    #[error(
        "refusing to listen on {0}: the lab only listens on loopback addresses (127.0.0.1, ::1)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {address}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS")]
    Tls(#[from] TlsError),
    #[error("fault 'node-down'")]
    Cluster(#[source] crate::node::ClusterError),
    #[error("cannot use the state dir {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Starts labs.
#[derive(Debug)]
pub struct Lab;

impl Lab {
    /// Starts a lab and returns once it accepts connections.
    ///
    /// # Errors
    /// A non-loopback address, a port in use, an unusable state dir or TLS failure.
    pub async fn start(options: LabOptions) -> Result<LabHandle, LabError> {
        if !options.listen.ip().is_loopback() {
            return Err(LabError::NotLoopback(options.listen));
        }
        let state_error = |path: &PathBuf| {
            let path = path.clone();
            move |source| LabError::StateDir { path, source }
        };
        let credentials = match &options.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(state_error(dir))?;
                Credentials::load_or_generate(dir).map_err(state_error(dir))?
            }
            None => Credentials::generate(),
        };
        let material = match (&options.state_dir, options.tls) {
            (_, false) => None,
            (Some(dir), true) => Some(TlsMaterial::load_or_generate(dir)?),
            (None, true) => Some(TlsMaterial::generate()?),
        };
        let acceptor = match &material {
            Some(material) => Some(tokio_rustls::TlsAcceptor::from(material.server_config()?)),
            None => None,
        };
        let mut node_options = options.node.clone();
        node_options.state_dir.clone_from(&options.state_dir);
        node_options.faults = options.faults.task_faults();
        node_options.ssl_fingerprint = material.as_ref().map(|m| m.fingerprint.clone());
        let node = match &options.state_dir {
            Some(dir) => Node::new(node_options).map_err(state_error(dir))?,
            None => Node::in_memory(node_options),
        };
        node.forget_previous_guests();
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| LabError::Bind {
                    address: options.listen,
                    source,
                })?;
        let address = listener.local_addr().map_err(|source| LabError::Bind {
            address: options.listen,
            source,
        })?;
        node.set_nodes_down(&options.faults.node_down)
            .map_err(LabError::Cluster)?;
        let faults = Arc::new(Faults::new(options.faults.clone()));
        let requests = Arc::new(RequestLog::default());
        let shared = Arc::new(Shared {
            node: node.clone(),
            auth: Auth::new(credentials.clone()),
            faults: Arc::clone(&faults),
            requests: Arc::clone(&requests),
            auth_failure_delay: options.auth_failure_delay,
            body_limit: options.body_limit,
        });
        let (shutdown_sender, shutdown_receiver) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, acceptor, shared, shutdown_receiver));
        let scheme = if options.tls { "https" } else { "http" };
        tracing::info!(%address, scheme, "lab listening");
        Ok(LabHandle {
            address,
            url: format!("{scheme}://{address}/api2/json"),
            credentials,
            fingerprint: material.map(|m| m.fingerprint),
            faults,
            requests,
            node,
            shutdown: shutdown_sender,
            task: Some(task),
        })
    }
}

/// A running lab. Dropping it stops accepting connections; [`LabHandle::shutdown`] also
/// waits for open connections to finish.
#[derive(Debug)]
pub struct LabHandle {
    address: SocketAddr,
    url: String,
    credentials: Credentials,
    fingerprint: Option<String>,
    faults: Arc<Faults>,
    requests: Arc<RequestLog>,
    node: Node,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LabHandle {
    /// The API base URL, ending in `/api2/json`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The socket address the lab listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The full-privilege token as PVE writes it: `root@pam!lab=<secret>`.
    pub fn token(&self) -> String {
        format!(
            "{ROOT_USER}!{FULL_TOKEN_ID}={}",
            self.credentials.full_token_secret
        )
    }

    /// The read-only (`PVEAuditor`) token: `root@pam!readonly=<secret>`.
    pub fn readonly_token(&self) -> String {
        format!(
            "{ROOT_USER}!{READONLY_TOKEN_ID}={}",
            self.credentials.readonly_token_secret
        )
    }

    /// The `Authorization` header value for the full token.
    pub fn authorization(&self) -> String {
        format!("PVEAPIToken={}", self.token())
    }

    /// The `root@pam` password for `POST /access/ticket`.
    pub fn password(&self) -> &str {
        &self.credentials.root_password
    }

    /// The TLS certificate's SHA-256 fingerprint (`AA:BB:...`); `None` for plain HTTP.
    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// The live fault configuration (also reachable at `/lab/faults`).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// How many API requests the lab answered, per method and path (also at
    /// `GET /lab/requests`).
    pub fn requests(&self) -> Arc<RequestLog> {
        Arc::clone(&self.requests)
    }

    /// The simulated node, for tests that inspect state directly.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Stops accepting, lets open connections finish their current request (at most 5 s),
    /// and returns when the server is down.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.node.stop_guests().await;
    }
}

impl Drop for LabHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Real guests never outlive the lab.
        if let Some(guests) = self.node.guests().qemu() {
            guests.kill_all();
        }
    }
}
