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
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use super::disks::{DiskError, DiskStore};
use super::image::Image;
use super::qga::{Agent, AgentError};
use super::qmp::{Qmp, QmpError};

/// How QEMU executes the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accelerator {
    /// Hardware virtualization (only after a real probe said it works).
    Kvm,
    /// QEMU's portable emulator.
    Tcg,
}

impl Accelerator {
    /// `kvm` or `tcg`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }
}

/// How the qemu backend is set up.
#[derive(Debug, Clone)]
pub struct QemuOptions {
    /// The base image (kernel, initrd, disk).
    pub image: Image,
    /// Disks, sockets, seeds, pidfiles and console logs live here.
    pub work_dir: PathBuf,
    /// KVM or TCG (decide with [`super::probe::probe_kvm`]).
    pub accelerator: Accelerator,
    /// The QEMU binary.
    pub qemu: PathBuf,
}

/// The cloud-init files of one start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedFiles {
    pub user: String,
    pub network: String,
    pub meta: String,
    pub vendor: String,
}

/// What to boot.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub vmid: u32,
    pub memory_mib: u64,
    pub cores: u32,
    /// The boot disk's file (from [`QemuGuests::ensure_disk`]).
    pub disk: PathBuf,
    /// net0's MAC; `None`: no network card.
    pub mac: Option<String>,
    /// The address the guest configures on eth0 (the SSH forward's target).
    pub guest_address: Ipv4Addr,
    /// The cloud-init drive's files; `None`: no cloud-init drive.
    pub seed: Option<SeedFiles>,
}

/// Sent when a machine's process ended (powered off, quit, killed or crashed).
#[derive(Debug, Clone, Copy)]
pub struct ExitNotice {
    pub vmid: u32,
    pub pid: u32,
}

/// Why a guest operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuestError {
    #[error("{0} is needed for real guests")]
    MissingTool(&'static str),
    #[error("{tool} failed: {message}")]
    Tool { tool: String, message: String },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    Qmp(#[from] QmpError),
    #[error("QEMU for VM {vmid} exited while starting: {message}")]
    Exited { vmid: u32, message: String },
    #[error("VM {0} not running")]
    NotRunning(u32),
    #[error("the socket path {0} is too long for a unix socket; use a shorter state dir")]
    SocketPath(PathBuf),
}

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

/// The kernel command line of a lab guest.
pub(crate) const KERNEL_COMMAND_LINE: &str =
    "root=LABEL=lab-root rw console=ttyS0 quiet mitigations=off";

/// Files of one machine in the run directory.
#[derive(Debug, Clone)]
pub(crate) struct RunPaths {
    pub qmp: PathBuf,
    pub qga: PathBuf,
    pub pidfile: PathBuf,
    pub console: PathBuf,
    pub stderr: PathBuf,
    pub seed_dir: PathBuf,
    pub seed_iso: PathBuf,
}

impl RunPaths {
    pub fn new(run_dir: &Path, vmid: u32) -> Self {
        Self {
            qmp: run_dir.join(format!("{vmid}.qmp")),
            qga: run_dir.join(format!("{vmid}.qga")),
            pidfile: run_dir.join(format!("{vmid}.pid")),
            console: run_dir.join(format!("{vmid}.console.log")),
            stderr: run_dir.join(format!("{vmid}.stderr")),
            seed_dir: run_dir.join(format!("{vmid}-seed")),
            seed_iso: run_dir.join(format!("{vmid}-cidata.iso")),
        }
    }
}

/// QEMU's arguments for a machine (everything but the binary).
pub(crate) fn command_line(
    options: &QemuOptions,
    spec: &MachineSpec,
    paths: &RunPaths,
    ssh_port: u16,
) -> Vec<String> {
    let path = |path: &Path| path.display().to_string();
    let mut arguments: Vec<String> = vec![
        "-name".into(),
        format!("vm{},process=lab-vm{}", spec.vmid, spec.vmid),
        "-machine".into(),
        "pc".into(),
        "-accel".into(),
        match options.accelerator {
            Accelerator::Kvm => "kvm".into(),
            Accelerator::Tcg => "tcg,thread=multi".into(),
        },
    ];
    if options.accelerator == Accelerator::Kvm {
        arguments.extend(["-cpu".into(), "host".into()]);
    }
    arguments.extend([
        "-m".into(),
        spec.memory_mib.to_string(),
        "-smp".into(),
        spec.cores.max(1).to_string(),
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-pidfile".into(),
        path(&paths.pidfile),
        "-kernel".into(),
        path(&options.image.kernel),
        "-initrd".into(),
        path(&options.image.initrd),
        "-append".into(),
        KERNEL_COMMAND_LINE.into(),
        "-drive".into(),
        format!(
            "file={},format=qcow2,if=virtio,id=disk0,discard=unmap",
            path(&spec.disk)
        ),
        "-device".into(),
        "virtio-rng-pci".into(),
        "-serial".into(),
        format!("file:{}", path(&paths.console)),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", path(&paths.qmp)),
        "-chardev".into(),
        format!(
            "socket,id=qga0,path={},server=on,wait=off",
            path(&paths.qga)
        ),
        "-device".into(),
        "virtio-serial-pci".into(),
        "-device".into(),
        "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".into(),
    ]);
    if spec.seed.is_some() {
        arguments.extend([
            "-drive".into(),
            format!(
                "file={},format=raw,if=virtio,readonly=on,id=cidata",
                path(&paths.seed_iso)
            ),
        ]);
    }
    if let Some(mac) = &spec.mac {
        // The runbook's subnet inside QEMU; no outbound traffic; SSH only through the
        // loopback forward to the guest's own address.
        arguments.extend([
            "-netdev".into(),
            format!(
                "user,id=n0,net=192.168.10.0/24,host=192.168.10.1,dhcpstart=192.168.10.100,\
                 restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-{}:22",
                spec.guest_address
            ),
            "-device".into(),
            format!("virtio-net-pci,netdev=n0,mac={}", mac.to_lowercase()),
        ]);
    }
    arguments
}

fn free_port() -> Result<u16, GuestError> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| GuestError::Io {
            what: "finding a free port on 127.0.0.1".into(),
            source,
        })
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

    /// Makes sure `volid`'s file exists with at least `size` bytes: an overlay on
    /// `parent`'s file (linked clones) or on the base image.
    ///
    /// # Errors
    /// qemu-img or the filesystem failed.
    pub async fn ensure_disk(
        &self,
        volid: &str,
        size: u64,
        parent: Option<&str>,
    ) -> Result<PathBuf, GuestError> {
        let backing = match parent {
            Some(parent) => Box::pin(self.ensure_disk(parent, 0, None)).await?,
            None => self.options.image.disk.clone(),
        };
        Ok(self.disks.ensure(volid, size, &backing).await?)
    }

    /// A full clone of `source` (created from the base image first if it never booted).
    ///
    /// # Errors
    /// qemu-img or the filesystem failed.
    pub async fn copy_disk(
        &self,
        source: &str,
        source_parent: Option<&str>,
        target: &str,
    ) -> Result<(), GuestError> {
        let source = self.ensure_disk(source, 0, source_parent).await?;
        self.disks.copy(&source, target).await?;
        Ok(())
    }

    /// Template conversion of one disk: renamed to its base name, read-only.
    ///
    /// # Errors
    /// The file cannot be renamed.
    pub async fn make_base(&self, old: &str, new: &str) -> Result<(), GuestError> {
        Ok(self.disks.make_base(old, new).await?)
    }

    /// Removes a volume's file.
    ///
    /// # Errors
    /// The file cannot be removed.
    pub async fn remove_disk(&self, volid: &str) -> Result<(), GuestError> {
        Ok(self.disks.remove(volid).await?)
    }

    /// Grows a disk: through QMP `block_resize` when its VM runs (the guest sees the new
    /// size at once), else the file (seen at the next boot).
    ///
    /// # Errors
    /// QMP or qemu-img failed.
    pub async fn resize_disk(&self, vmid: u32, volid: &str, size: u64) -> Result<(), GuestError> {
        if let Some(machine) = self.machine(vmid) {
            let mut qmp = Qmp::connect(&machine.qmp, Duration::from_secs(5)).await?;
            qmp.execute(
                "block_resize",
                Some(json!({"device": "disk0", "size": size})),
            )
            .await?;
            return Ok(());
        }
        let path = self.disks.path(volid);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            self.disks.grow(&path, size).await?;
        }
        Ok(())
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
        let ssh_port = free_port()?;
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
            .args(command_line(&self.options, spec, &paths, ssh_port))
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
