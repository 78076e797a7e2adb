//! Building the guest base image: `sombrero lab image build`.
//!
//! Why: the recipe is a shell script of Debian tools (`lab/build-image.sh`, compiled into
//! the binary so the recipe hash and the build always agree). This driver checks the
//! prerequisites with a fix for each, runs the script's two phases, builds the Docker
//! image archive between them, and publishes the image atomically (a complete image
//! directory appears only at the end, with its manifest). Progress goes to a callback;
//! the full log to `<cache>/<hash>.work/build.log`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::image::{Image, ImageStore, RECIPE, recipe_hash};

/// What the build reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildEvent {
    /// A step started (`debootstrap bookworm ...`).
    Step(String),
    /// A detail of the current step (counts, sizes).
    Detail(String),
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub image: Image,
    /// False when the cache already held this recipe's image.
    pub built: bool,
    pub elapsed: Duration,
}

/// Why the image could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("building the lab image needs root (debootstrap and chroot); run it with sudo")]
    NotRoot,
    #[error("{tool} is missing; install it with: {fix}")]
    MissingTool {
        tool: &'static str,
        fix: &'static str,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the recipe's {phase} phase failed ({status}); see {log}")]
    Script {
        phase: &'static str,
        status: String,
        log: PathBuf,
    },
    #[error("busybox-static was not unpacked to {0}")]
    NoBusybox(PathBuf),
}

/// Tools the recipe runs, each with the command that installs it.
pub const BUILD_TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "apt-get install debootstrap"),
    (
        "qemu-img",
        "apt-get install -t bookworm-backports qemu-utils",
    ),
    ("mkfs.ext4", "apt-get install e2fsprogs"),
    ("dpkg-scanpackages", "apt-get install dpkg-dev"),
    ("chroot", "apt-get install coreutils"),
    ("python3", "apt-get install python3"),
];

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// Builds this recipe's image into `store`, or reuses it when it is already there (and
/// `force` is false).
///
/// # Errors
/// Missing prerequisites (with the fix), a failing recipe phase (with the log's path).
pub async fn build(
    store: &ImageStore,
    force: bool,
    mut progress: impl FnMut(BuildEvent),
) -> Result<BuildOutcome, BuildError> {
    let started = Instant::now();
    if !force && let Some(image) = store.find() {
        return Ok(BuildOutcome {
            image,
            built: false,
            elapsed: started.elapsed(),
        });
    }
    if !is_root() {
        return Err(BuildError::NotRoot);
    }
    for (tool, fix) in BUILD_TOOLS {
        if super::probe::which(tool).is_none() {
            return Err(BuildError::MissingTool { tool, fix });
        }
    }
    let hash = recipe_hash();
    let work = store.root().join(format!("{hash}.work"));
    let staging = store.root().join(format!("{hash}.tmp"));
    let recipe = work.join("recipe");
    tokio::fs::create_dir_all(&recipe)
        .await
        .map_err(io(format!("creating {}", recipe.display())))?;
    for (name, content) in RECIPE {
        let path = recipe.join(name);
        tokio::fs::write(&path, content)
            .await
            .map_err(io(format!("writing {}", path.display())))?;
    }
    let log = work.join("build.log");
    let mut log_file = tokio::fs::File::create(&log)
        .await
        .map_err(io(format!("creating {}", log.display())))?;
    let script = recipe.join("build-image.sh");
    run_phase(
        &script,
        &["rootfs".as_ref(), work.as_os_str()],
        &log,
        &mut log_file,
        "rootfs",
        &mut progress,
    )
    .await?;
    progress(BuildEvent::Step(format!(
        "Docker image archive {} (busybox-static, for docker load)",
        super::docker_archive::IMAGE_TAG
    )));
    let archive_path = write_docker_archive(&work).await?;
    progress(BuildEvent::Detail(format!(
        "{} at /{}",
        human(file_size(&archive_path)),
        archive_path
            .strip_prefix(work.join("rootfs"))
            .unwrap_or(&archive_path)
            .display()
    )));
    let _ = tokio::fs::remove_dir_all(&staging).await;
    run_phase(
        &script,
        &["disk".as_ref(), work.as_os_str(), staging.as_os_str()],
        &log,
        &mut log_file,
        "disk",
        &mut progress,
    )
    .await?;
    let elapsed = started.elapsed();
    let manifest = serde_json::json!({
        "recipe": hash,
        "built_unix": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        "build_seconds": elapsed.as_secs(),
        "docker_image": super::docker_archive::IMAGE_TAG,
        "docker_archive": "/var/local/sombrero/images/busybox.tar",
        "apt_repository": "/var/local/sombrero-apt",
        "uv": work.join("rootfs/usr/local/bin/uv").is_file(),
        "mise": work.join("rootfs/usr/local/bin/mise").is_file(),
    });
    let manifest_path = staging.join("manifest.json");
    tokio::fs::write(&manifest_path, format!("{manifest:#}\n"))
        .await
        .map_err(io(format!("writing {}", manifest_path.display())))?;
    let target = store.expected().dir;
    let _ = tokio::fs::remove_dir_all(&target).await;
    tokio::fs::rename(&staging, &target)
        .await
        .map_err(io(format!("publishing {}", target.display())))?;
    // Keep only the recipe and the log: the tree and the downloads are in the image now.
    for part in ["rootfs", "tools", "busybox"] {
        let _ = tokio::fs::remove_dir_all(work.join(part)).await;
    }
    Ok(BuildOutcome {
        image: store.expected(),
        built: true,
        elapsed,
    })
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

fn human(bytes: u64) -> String {
    let tenths = bytes.saturating_mul(10) / 1_048_576;
    format!("{}.{} MiB", tenths / 10, tenths % 10)
}

async fn run_phase(
    script: &Path,
    arguments: &[&std::ffi::OsStr],
    log: &Path,
    log_file: &mut tokio::fs::File,
    phase: &'static str,
    progress: &mut impl FnMut(BuildEvent),
) -> Result<(), BuildError> {
    let mut child = tokio::process::Command::new("bash")
        .arg(script)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("running bash"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    for stream in [
        stdout.map(|out| Box::new(out) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        stderr.map(|err| Box::new(err) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let sender = sender.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = sender.send(line);
            }
        });
    }
    drop(sender);
    while let Some(line) = receiver.recv().await {
        let _ = log_file.write_all(format!("{line}\n").as_bytes()).await;
        if let Some(step) = line.strip_prefix("==> ") {
            progress(BuildEvent::Step(step.to_owned()));
        } else if let Some(detail) = line.strip_prefix("    ") {
            progress(BuildEvent::Detail(detail.to_owned()));
        }
    }
    let status = child.wait().await.map_err(io("waiting for the recipe"))?;
    let _ = log_file.flush().await;
    if !status.success() {
        return Err(BuildError::Script {
            phase,
            status: status.to_string(),
            log: log.to_path_buf(),
        });
    }
    Ok(())
}

/// Writes the busybox image archive into the root tree; returns its path.
async fn write_docker_archive(work: &Path) -> Result<PathBuf, BuildError> {
    let busybox = work.join("busybox/bin/busybox");
    let binary = tokio::fs::read(&busybox)
        .await
        .map_err(|_| BuildError::NoBusybox(busybox.clone()))?;
    let listed = tokio::process::Command::new(&busybox)
        .arg("--list")
        .output()
        .await
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let mut applets: Vec<String> = listed.lines().map(str::to_owned).collect();
    if applets.is_empty() {
        applets = [
            "sh", "echo", "cat", "ls", "sleep", "true", "false", "env", "id", "wget",
        ]
        .map(str::to_owned)
        .to_vec();
    }
    let archive = super::docker_archive::busybox_image(&binary, &applets);
    let directory = work.join("rootfs/var/local/sombrero/images");
    tokio::fs::create_dir_all(&directory)
        .await
        .map_err(io(format!("creating {}", directory.display())))?;
    let path = directory.join("busybox.tar");
    tokio::fs::write(&path, archive)
        .await
        .map_err(io(format!("writing {}", path.display())))?;
    Ok(path)
}
