//! What the lab can run: QEMU present, image built, KVM truly working; leftover reaping.
//!
//! Why: `--guests auto` and `sombrero lab doctor` must say which backend a lab gets and
//! why, with the command that fixes each gap. KVM is decided by a real probe, never by
//! the existence of `/dev/kvm`: on some hosts (a paravirtual KVM, `kvm_pvm`) a stock
//! Debian kernel fails early with an emulation error or crawls, so the probe boots the
//! image's kernel briefly and asks QMP whether the guest still runs and whether the kernel
//! got through its boot in time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::image::{Image, ImageStore};
use super::qmp::Qmp;
use super::spec::Accelerator;

/// The QEMU binary name.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// How long the kernel may take to reach user space under KVM before it counts as
/// crawling (a working KVM needs well under a second).
const KVM_PROBE_TIME: Duration = Duration::from_secs(6);

/// The first `name` on `PATH` (plus the sbin directories, where root's tools live).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Kills QEMU processes recorded in `run_dir`'s pidfiles (a previous lab that was killed
/// before it could stop them); only processes whose command line names `run_dir`.
pub fn reap_leftovers(run_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return 0;
    };
    let marker = run_dir.display().to_string();
    let mut reaped = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "pid") {
            continue;
        }
        let pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&command).contains(&marker) {
                let killed = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success());
                if killed {
                    reaped += 1;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    reaped
}

/// Whether KVM works, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmVerdict {
    pub usable: bool,
    pub reason: String,
}

/// Boots `image`'s kernel under KVM for a few seconds and checks that it still runs and
/// got through the kernel's boot.
pub async fn probe_kvm(qemu: &Path, image: &Image, scratch: &Path) -> KvmVerdict {
    let unusable = |reason: String| KvmVerdict {
        usable: false,
        reason,
    };
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return unusable("/dev/kvm is missing or not accessible".into());
    }
    let _ = std::fs::create_dir_all(scratch);
    let qmp_path = scratch.join("kvm-probe.qmp");
    let console = scratch.join("kvm-probe.console");
    let _ = std::fs::remove_file(&qmp_path);
    let _ = std::fs::remove_file(&console);
    let child = tokio::process::Command::new(qemu)
        .args(["-accel", "kvm", "-cpu", "host", "-m", "512", "-nodefaults"])
        .args(["-no-user-config", "-display", "none"])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(&image.initrd)
        .args(["-append", "console=ttyS0 panic=-1"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => return unusable(format!("cannot start {}: {error}", qemu.display())),
    };
    let started = Instant::now();
    let verdict = loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stderr).await;
            }
            let first = stderr
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            break unusable(format!(
                "QEMU exited under KVM ({status}): {}",
                first.trim()
            ));
        }
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        if text.contains("KVM internal error") {
            break unusable("KVM internal error (emulation failure)".into());
        }
        let reached = text.contains("Run /init") || text.contains("Freeing unused kernel");
        if reached || started.elapsed() > KVM_PROBE_TIME {
            let status = match Qmp::connect(&qmp_path, Duration::from_secs(2)).await {
                Ok(mut qmp) => qmp.status().await.unwrap_or_else(|_| "unknown".into()),
                Err(_) => "unreachable".into(),
            };
            if status != "running" {
                break unusable(format!("the guest stopped under KVM (QMP status {status})"));
            }
            if !reached {
                break unusable(format!(
                    "the kernel did not boot within {}s under KVM (it crawls)",
                    KVM_PROBE_TIME.as_secs()
                ));
            }
            break KvmVerdict {
                usable: true,
                reason: format!(
                    "a test boot under KVM reached user space in {:.1}s",
                    started.elapsed().as_secs_f64()
                ),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    verdict
}

/// `--guests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestsRequest {
    /// qemu when QEMU and the image exist, else state.
    Auto,
    State,
    Qemu,
}

/// What a lab would get, and why.
#[derive(Debug, Clone)]
pub struct BackendChoice {
    /// `None`: state-only guests.
    pub qemu: Option<(PathBuf, Image, Accelerator)>,
    /// One line per fact that decided it (found, missing, probe results).
    pub reasons: Vec<String>,
    /// Commands that would enable real guests (or KVM).
    pub fixes: Vec<String>,
}

/// Decides the backend for `request`: checks QEMU, the ISO tool, the image, and probes
/// KVM when the answer is qemu.
pub async fn choose_backend(
    request: GuestsRequest,
    store: &ImageStore,
    scratch: &Path,
) -> BackendChoice {
    let mut reasons = Vec::new();
    let mut fixes = Vec::new();
    if request == GuestsRequest::State {
        reasons.push("--guests state asked for state-only guests".into());
        return BackendChoice {
            qemu: None,
            reasons,
            fixes,
        };
    }
    let qemu = which(QEMU_BINARY);
    if let Some(path) = &qemu {
        reasons.push(format!("{QEMU_BINARY}: {}", path.display()));
    } else {
        reasons.push(format!("{QEMU_BINARY} is not installed"));
        fixes.push(
            "apt-get install -t bookworm-backports qemu-system-x86   \
             (bookworm-backports in the apt sources)"
                .into(),
        );
    }
    if let Some((path, _)) = super::seed_iso::iso_tool() {
        reasons.push(format!("cloud-init seed ISO tool: {}", path.display()));
    } else {
        reasons.push("no ISO tool for the cloud-init seed (xorriso, genisoimage)".into());
        fixes.push("apt-get install xorriso".into());
    }
    let image = store.find();
    if let Some(image) = &image {
        reasons.push(format!("guest image: {}", image.dir.display()));
    } else {
        reasons.push(format!(
            "the guest image is not built (expected {})",
            store.expected().dir.display()
        ));
        fixes.push("sudo sombrero lab image build".into());
    }
    let ready = qemu.is_some() && image.is_some() && super::seed_iso::iso_tool().is_some();
    let (Some(qemu), Some(image), true) = (qemu, image, ready) else {
        reasons.push(match request {
            GuestsRequest::Auto => "auto picks state-only guests".into(),
            _ => "qemu guests are not possible here".into(),
        });
        return BackendChoice {
            qemu: None,
            reasons,
            fixes,
        };
    };
    let verdict = probe_kvm(&qemu, &image, scratch).await;
    let accelerator = if verdict.usable {
        reasons.push(format!("KVM works: {}", verdict.reason));
        Accelerator::Kvm
    } else {
        reasons.push(format!(
            "KVM unusable: {}; guests run under TCG",
            verdict.reason
        ));
        Accelerator::Tcg
    };
    reasons.push(format!(
        "{} picks qemu guests ({})",
        if request == GuestsRequest::Auto {
            "auto"
        } else {
            "--guests qemu"
        },
        accelerator.name()
    ));
    BackendChoice {
        qemu: Some((qemu, image, accelerator)),
        reasons,
        fixes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_reaped_only_when_they_name_the_run_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).expect("mkdir");
        // A leftover "QEMU": its command line names the run dir, like -qmp unix:RUN/...
        // It runs `sleep` through a link inside the run dir, so argv[0] names the dir for
        // its whole life (a `sh -c` wrapper may exec `sleep` and lose its arguments).
        let fake_qemu = run.join("qemu-system-x86_64");
        std::os::unix::fs::symlink(which("sleep").expect("sleep on PATH"), &fake_qemu)
            .expect("symlink");
        let mut leftover = std::process::Command::new(&fake_qemu)
            .arg("30")
            .spawn()
            .expect("spawn");
        // A process that reused some pid: not ours, never killed.
        let mut stranger = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn");
        // posix_spawn returns once the child has dropped our memory, which is before the
        // kernel has set up its new arguments: until then /proc/PID/cmdline reads empty.
        for pid in [leftover.id(), stranger.id()] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .is_empty()
            {
                assert!(Instant::now() < deadline, "{pid} never exec'd");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::fs::write(run.join("150.pid"), format!("{}\n", leftover.id())).expect("pidfile");
        std::fs::write(run.join("151.pid"), format!("{}\n", stranger.id())).expect("pidfile");
        assert_eq!(reap_leftovers(&run), 1);
        let status = leftover.wait().expect("wait");
        assert!(!status.success(), "the leftover was killed");
        assert!(
            stranger.try_wait().expect("try_wait").is_none(),
            "the stranger lives"
        );
        let _ = stranger.kill();
        let _ = stranger.wait();
        assert!(!run.join("150.pid").exists() && !run.join("151.pid").exists());
    }
}
