//! What a machine is: its options, its spec, its files, and QEMU's command line.
//!
//! Why apart from the running machines: the command line is where the lab's network rule
//! is enforced (user-mode networking with the runbook's subnet inside QEMU,
//! `restrict=on`, SSH forwarded from 127.0.0.1 only), so it is a pure function with
//! tests of its own.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::disks::DiskError;
use super::image::Image;
use super::qmp::QmpError;

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

pub(crate) fn free_port() -> Result<u16, GuestError> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| GuestError::Io {
            what: "finding a free port on 127.0.0.1".into(),
            source,
        })
}

/// Whether QEMU exited because it could not bind the SSH forward's port (another process
/// took it after [`free_port`] released it), as QEMU says it: `Could not set up host
/// forwarding rule 'tcp:127.0.0.1:PORT-...'`. Such a start is worth another port.
pub(crate) fn forward_port_taken(error: &GuestError) -> bool {
    matches!(error, GuestError::Exited { message, .. }
        if message.contains("Could not set up host forwarding rule"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real QEMU's words for a taken forward port, and for another early exit.
    #[test]
    fn a_taken_forward_port_is_told_apart_from_other_early_exits() {
        let Some(qemu) = super::super::probe::which("qemu-system-x86_64") else {
            crate::testing::skip(
                "a_taken_forward_port_is_told_apart_from_other_early_exits",
                "no qemu-system-x86_64 (apt-get install -t bookworm-backports qemu-system-x86)",
            );
            return;
        };
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = taken.local_addr().expect("address").port();
        let exit = |netdev: String| {
            let output = std::process::Command::new(&qemu)
                .args(["-nodefaults", "-display", "none", "-S", "-netdev", &netdev])
                .output()
                .expect("run qemu");
            assert!(!output.status.success());
            GuestError::Exited {
                vmid: 150,
                message: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        };
        let refused = exit(format!(
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"
        ));
        assert!(forward_port_taken(&refused), "{refused:?}");
        let other = exit("user,id=n0,restrict=maybe".into());
        assert!(!forward_port_taken(&other), "{other:?}");
    }

    fn options(accelerator: Accelerator) -> QemuOptions {
        QemuOptions {
            image: Image {
                dir: "/images/h".into(),
                kernel: "/images/h/vmlinuz".into(),
                initrd: "/images/h/initrd.img".into(),
                disk: "/images/h/disk.qcow2".into(),
            },
            work_dir: "/w".into(),
            accelerator,
            qemu: "qemu-system-x86_64".into(),
        }
    }

    fn spec(mac: Option<&str>) -> MachineSpec {
        MachineSpec {
            vmid: 150,
            memory_mib: 2048,
            cores: 2,
            disk: "/w/disks/local-lvm/vm-150-disk-0.qcow2".into(),
            mac: mac.map(str::to_owned),
            guest_address: Ipv4Addr::new(192, 168, 10, 250),
            seed: Some(SeedFiles {
                user: String::new(),
                network: String::new(),
                meta: String::new(),
                vendor: String::new(),
            }),
        }
    }

    fn value_after<'a>(arguments: &'a [String], flag: &str) -> Vec<&'a str> {
        arguments
            .windows(2)
            .filter(|pair| pair[0] == flag)
            .map(|pair| pair[1].as_str())
            .collect()
    }

    #[test]
    fn the_network_is_the_runbook_subnet_inside_qemu_with_ssh_on_loopback_only() {
        let paths = RunPaths::new(Path::new("/w/run"), 150);
        let arguments = command_line(
            &options(Accelerator::Tcg),
            &spec(Some("BC:24:11:AA:BB:CC")),
            &paths,
            40022,
        );
        assert_eq!(
            value_after(&arguments, "-netdev"),
            [
                "user,id=n0,net=192.168.10.0/24,host=192.168.10.1,dhcpstart=192.168.10.100,\
              restrict=on,hostfwd=tcp:127.0.0.1:40022-192.168.10.250:22"
            ]
        );
        assert_eq!(
            value_after(&arguments, "-device")[3],
            "virtio-net-pci,netdev=n0,mac=bc:24:11:aa:bb:cc"
        );
        // Nothing else reaches the network: no other netdev, no host sockets but unix ones.
        assert_eq!(
            arguments
                .iter()
                .filter(|argument| argument.contains("hostfwd"))
                .count(),
            1
        );
        assert!(
            arguments
                .iter()
                .all(|argument| !argument.contains("0.0.0.0"))
        );
    }

    #[test]
    fn memory_cores_sockets_and_disks_come_from_the_spec() {
        let paths = RunPaths::new(Path::new("/w/run"), 150);
        let arguments = command_line(&options(Accelerator::Tcg), &spec(None), &paths, 1);
        assert_eq!(value_after(&arguments, "-m"), ["2048"]);
        assert_eq!(value_after(&arguments, "-smp"), ["2"]);
        assert_eq!(value_after(&arguments, "-accel"), ["tcg,thread=multi"]);
        assert!(value_after(&arguments, "-cpu").is_empty());
        assert_eq!(
            value_after(&arguments, "-qmp"),
            ["unix:/w/run/150.qmp,server=on,wait=off"]
        );
        let drives = value_after(&arguments, "-drive");
        assert!(drives[0].starts_with("file=/w/disks/local-lvm/vm-150-disk-0.qcow2,format=qcow2"));
        assert!(drives[1].contains("150-cidata.iso") && drives[1].contains("readonly=on"));
        assert!(
            value_after(&arguments, "-netdev").is_empty(),
            "no NIC without net0"
        );
        assert!(
            value_after(&arguments, "-device")
                .contains(&"virtserialport,chardev=qga0,name=org.qemu.guest_agent.0")
        );
    }

    #[test]
    fn kvm_uses_the_host_cpu() {
        let paths = RunPaths::new(Path::new("/w/run"), 150);
        let arguments = command_line(&options(Accelerator::Kvm), &spec(None), &paths, 1);
        assert_eq!(value_after(&arguments, "-accel"), ["kvm"]);
        assert_eq!(value_after(&arguments, "-cpu"), ["host"]);
    }
}
