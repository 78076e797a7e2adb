//! Running QEMU machines: start, stop, ACPI shutdown, disk growth, the SSH forward.
//!
//! Why: a real guest is a `qemu-system-x86_64` process the lab owns. Every process is a
//! child of the lab, started with `kill_on_drop`, and
//! leaves a pidfile in the run directory; a waiter task notices its exit (a guest that
//! powers itself off is stopped, as PVE's qmeventd notices) and cleans up. Dropping the
//! backend or [`QemuGuests::stop_all`] kills what is left, and a backend created on a work
//! dir with leftover pidfiles (a lab that was killed) reaps those processes first, so QEMU
//! never outlives the lab.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use super::disks::DiskStore;
use super::image::Image;
use super::qga::{Agent, AgentError};
use super::qmp::Qmp;
use super::spec::{
    Accelerator, ExitNotice, GuestError, MachineSpec, QemuOptions, RunPaths, command_line,
    forward_port_taken, free_port,
};

/// One running QEMU process.
#[derive(Debug)]
struct Machine {
    pid: u32,
    /// When QEMU was spawned (the guest's own boot time counts from here).
    spawned: Instant,
    ssh: SocketAddr,
    qmp: PathBuf,
    qga: PathBuf,
    /// The agent channel takes one client at a time.
    agent_lock: tokio::sync::Mutex<()>,
    /// Dropping or firing it kills the process.
    kill: Mutex<Option<oneshot::Sender<()>>>,
    exited: watch::Receiver<bool>,
}

/// The qemu guest backend.
#[derive(Debug)]
pub struct QemuGuests {
    options: QemuOptions,
    disks: DiskStore,
    run_dir: PathBuf,
    machines: Arc<Mutex<HashMap<u32, Arc<Machine>>>>,
}

impl QemuGuests {
    /// A backend working in `options.work_dir`; QEMU processes a previous lab left there
    /// are killed first.
    ///
    /// # Errors
    /// The work dir cannot be created.
    pub fn new(options: QemuOptions) -> Result<Self, GuestError> {
        let run_dir = options.work_dir.join("run");
        std::fs::create_dir_all(&run_dir).map_err(|source| GuestError::Io {
            what: format!("creating {}", run_dir.display()),
            source,
        })?;
        let reaped = super::probe::reap_leftovers(&run_dir);
        if reaped > 0 {
            tracing::warn!(reaped, "killed QEMU processes a previous lab left running");
        }
        let probe = RunPaths::new(&run_dir, 999_999_999).seed_iso;
        if probe.as_os_str().len() > 100 {
            return Err(GuestError::SocketPath(probe));
        }
        Ok(Self {
            disks: DiskStore::new(options.work_dir.join("disks")),
            options,
            run_dir,
            machines: Arc::default(),
        })
    }

    /// The accelerator guests run with.
    pub fn accelerator(&self) -> Accelerator {
        self.options.accelerator
    }

    /// The base image.
    pub fn image(&self) -> &Image {
        &self.options.image
    }

    /// The console log of a VM (the guest's serial output), for diagnosis.
    pub fn console_log(&self, vmid: u32) -> PathBuf {
        RunPaths::new(&self.run_dir, vmid).console
    }

    pub(crate) fn machine_qmp(&self, vmid: u32) -> Option<PathBuf> {
        self.machine(vmid).map(|machine| machine.qmp.clone())
    }

    pub(crate) fn disk_store(&self) -> &DiskStore {
        &self.disks
    }

    fn machine(&self, vmid: u32) -> Option<Arc<Machine>> {
        self.machines.lock().get(&vmid).cloned()
    }

    /// Whether a QEMU process runs for `vmid`.
    pub fn is_running(&self, vmid: u32) -> bool {
        self.machines.lock().contains_key(&vmid)
    }

    /// The 127.0.0.1 address that forwards to the guest's SSH port.
    pub fn ssh_forward(&self, vmid: u32) -> Option<SocketAddr> {
        self.machine(vmid).map(|machine| machine.ssh)
    }

    /// When the VM's QEMU process was spawned (for boot-time measurements).
    pub fn spawned(&self, vmid: u32) -> Option<Instant> {
        self.machine(vmid).map(|machine| machine.spawned)
    }

    /// The pid of the VM's QEMU process.
    pub fn pid(&self, vmid: u32) -> Option<u32> {
        self.machine(vmid).map(|machine| machine.pid)
    }

    /// Starts QEMU and returns its pid once QMP reports the guest running; `on_exit` is
    /// called when the process ends.
    ///
    /// # Errors
    /// Seed, spawn or QMP failures; QEMU exiting during the start (its stderr is in the
    /// message).
    pub async fn start(
        &self,
        spec: &MachineSpec,
        on_exit: Box<dyn FnOnce(ExitNotice) + Send>,
    ) -> Result<u32, GuestError> {
        let paths = RunPaths::new(&self.run_dir, spec.vmid);
        for stale in [&paths.qmp, &paths.qga, &paths.pidfile] {
            let _ = std::fs::remove_file(stale);
        }
        if let Some(seed) = &spec.seed {
            super::seed_iso::write(seed, &paths.seed_dir, &paths.seed_iso).await?;
        }
        // The forward's port is chosen free, then released for QEMU to bind: another
        // process can take it in between. QEMU then exits naming the forwarding rule, and
        // the start is tried again on another port.
        let mut attempt = 0;
        let (mut child, pid, spawned, ssh_port, qmp) = loop {
            attempt += 1;
            let ssh_port = free_port()?;
            match self.launch(spec, &paths, ssh_port).await {
                Ok((child, pid, spawned, qmp)) => break (child, pid, spawned, ssh_port, qmp),
                Err(error) if attempt < 3 && forward_port_taken(&error) => {
                    tracing::warn!(
                        vmid = spec.vmid,
                        ssh_port,
                        "SSH forward port taken; retrying"
                    );
                }
                Err(error) => return Err(error),
            }
        };
        let mut qmp = qmp;
        let status = qmp.status().await?;
        drop(qmp);
        if status != "running" {
            let _ = child.start_kill();
            return Err(GuestError::Exited {
                vmid: spec.vmid,
                message: format!("the guest is {status}, not running"),
            });
        }
        let (kill_sender, kill_receiver) = oneshot::channel();
        let (exited_sender, exited) = watch::channel(false);
        let machine = Arc::new(Machine {
            pid,
            spawned,
            ssh: SocketAddr::from((Ipv4Addr::LOCALHOST, ssh_port)),
            qmp: paths.qmp.clone(),
            qga: paths.qga.clone(),
            agent_lock: tokio::sync::Mutex::new(()),
            kill: Mutex::new(Some(kill_sender)),
            exited,
        });
        self.machines.lock().insert(spec.vmid, Arc::clone(&machine));
        let machines = Arc::clone(&self.machines);
        let vmid = spec.vmid;
        tokio::spawn(async move {
            tokio::select! {
                _ = child.wait() => {}
                _ = kill_receiver => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
            {
                let mut machines = machines.lock();
                if machines
                    .get(&vmid)
                    .is_some_and(|machine| machine.pid == pid)
                {
                    machines.remove(&vmid);
                }
            }
            for file in [&paths.qmp, &paths.qga, &paths.pidfile] {
                let _ = std::fs::remove_file(file);
            }
            let _ = exited_sender.send(true);
            tracing::debug!(vmid, pid, "QEMU exited");
            on_exit(ExitNotice { vmid, pid });
        });
        tracing::info!(vmid, pid, %machine.ssh, accelerator = self.options.accelerator.name(), "guest started");
        Ok(pid)
    }

    /// Spawns QEMU with the SSH forward on `ssh_port` and connects to its QMP socket.
    async fn launch(
        &self,
        spec: &MachineSpec,
        paths: &RunPaths,
        ssh_port: u16,
    ) -> Result<(tokio::process::Child, u32, Instant, Qmp), GuestError> {
        let stderr = std::fs::File::create(&paths.stderr).map_err(|source| GuestError::Io {
            what: format!("creating {}", paths.stderr.display()),
            source,
        })?;
        // With util-linux's setpriv, QEMU also dies with the thread that started it,
        // even when the lab is killed with SIGKILL (setpriv execs QEMU: same pid).
        let mut command = match super::probe::which("setpriv") {
            Some(setpriv) => {
                let mut command = tokio::process::Command::new(setpriv);
                command
                    .args(["--pdeathsig", "KILL"])
                    .arg(&self.options.qemu);
                command
            }
            None => tokio::process::Command::new(&self.options.qemu),
        };
        let mut child = command
            .args(command_line(&self.options, spec, paths, ssh_port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| GuestError::Io {
                what: format!("starting {}", self.options.qemu.display()),
                source,
            })?;
        let spawned = Instant::now();
        let pid = child.id().unwrap_or(0);
        let exited_early = |status: std::process::ExitStatus| GuestError::Exited {
            vmid: spec.vmid,
            message: format!(
                "{status}: {}",
                std::fs::read_to_string(&paths.stderr)
                    .unwrap_or_default()
                    .trim()
            ),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let qmp = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(exited_early(status));
            }
            match Qmp::connect(&paths.qmp, Duration::from_secs(5)).await {
                Ok(qmp) => break qmp,
                Err(error) if Instant::now() > deadline => return Err(error.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        Ok((child, pid, spawned, qmp))
    }

    /// Waits until the machine's process has exited, at most `timeout`; true if it did.
    async fn wait_exit(machine: &Machine, timeout: Duration) -> bool {
        let mut exited = machine.exited.clone();
        tokio::time::timeout(timeout, exited.wait_for(|done| *done))
            .await
            .is_ok()
    }

    /// PVE's `stop`: QMP `quit`, killed if QEMU does not go within 5 s.
    ///
    /// # Errors
    /// None in practice: a QEMU that does not answer is killed.
    pub async fn stop(&self, vmid: u32) -> Result<(), GuestError> {
        let Some(machine) = self.machine(vmid) else {
            return Ok(());
        };
        if let Ok(mut qmp) = Qmp::connect(&machine.qmp, Duration::from_secs(2)).await {
            let _ = qmp.execute("quit", None).await;
        }
        if !Self::wait_exit(&machine, Duration::from_secs(5)).await {
            Self::kill(&machine);
            Self::wait_exit(&machine, Duration::from_secs(5)).await;
        }
        Ok(())
    }

    /// PVE's `shutdown`: an ACPI power button press (QMP `system_powerdown`), then waits
    /// for the guest to power off. Returns false if it did not within `timeout`.
    ///
    /// # Errors
    /// QMP failed.
    pub async fn shutdown(&self, vmid: u32, timeout: Duration) -> Result<bool, GuestError> {
        let Some(machine) = self.machine(vmid) else {
            return Ok(true);
        };
        let mut qmp = Qmp::connect(&machine.qmp, Duration::from_secs(5)).await?;
        qmp.execute("system_powerdown", None).await?;
        drop(qmp);
        Ok(Self::wait_exit(&machine, timeout).await)
    }

    fn kill(machine: &Machine) {
        if let Some(sender) = machine.kill.lock().take() {
            let _ = sender.send(());
        }
    }

    /// Kills every machine and waits (at most 10 s) until they are gone.
    pub async fn stop_all(&self) {
        let machines: Vec<Arc<Machine>> = self.machines.lock().values().cloned().collect();
        for machine in &machines {
            Self::kill(machine);
        }
        for machine in &machines {
            Self::wait_exit(machine, Duration::from_secs(10)).await;
        }
    }

    /// Whether the guest has opened the agent's virtio port (QMP `query-chardev`'s
    /// `frontend-open`): a closed port means no agent runs, answered at once instead of
    /// after the sync timeout. When QMP cannot tell, the sync decides.
    async fn agent_port_open(machine: &Machine) -> bool {
        let Ok(mut qmp) = Qmp::connect(&machine.qmp, Duration::from_secs(2)).await else {
            return true;
        };
        let Ok(devices) = qmp.execute("query-chardev", None).await else {
            return true;
        };
        devices
            .as_array()
            .and_then(|devices| {
                devices
                    .iter()
                    .find(|device| device.get("label").and_then(Value::as_str) == Some("qga0"))
            })
            .and_then(|device| device.get("frontend-open").and_then(Value::as_bool))
            .unwrap_or(true)
    }

    /// Runs one guest-agent command (after a `guest-sync-delimited`).
    ///
    /// # Errors
    /// [`AgentError::NotRunning`] when the VM or its agent is not up; the agent's error.
    pub async fn agent(
        &self,
        vmid: u32,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, AgentError> {
        let machine = self.machine(vmid).ok_or(AgentError::NotRunning)?;
        let _guard = machine.agent_lock.lock().await;
        if !Self::agent_port_open(&machine).await {
            return Err(AgentError::NotRunning);
        }
        let mut agent = Agent::connect(
            &machine.qga,
            Duration::from_secs(3),
            Duration::from_secs(30),
        )
        .await?;
        agent.execute(command, arguments).await
    }
}

impl QemuGuests {
    /// Kills one machine without waiting, like a host losing power (its exit notice
    /// follows when the process is gone).
    pub fn power_off(&self, vmid: u32) {
        if let Some(machine) = self.machine(vmid) {
            Self::kill(&machine);
        }
    }

    /// Kills every machine without waiting (for `Drop` paths).
    pub fn kill_all(&self) {
        for machine in self.machines.lock().values() {
            Self::kill(machine);
        }
    }
}

impl Drop for QemuGuests {
    fn drop(&mut self) {
        self.kill_all();
    }
}
