//! The cloud-init `NoCloud` seed: an ISO 9660 image with volume label `cidata`.
//!
//! Why: that is what Proxmox attaches as the cloud-init drive for `citype=nocloud`, and
//! what cloud-init's `NoCloud` datasource looks for (any block device labelled `cidata`).
//! The files come from the node's generator (`user-data`, `network-config`, `meta-data`,
//! `vendor-data`), exactly as `GET .../cloudinit/dump` shows them; the ISO is written by
//! `xorriso` (or `genisoimage`), Debian's ISO tools, at every start, like PVE.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::spec::{GuestError, SeedFiles};

/// The ISO tools the lab can use, in order of preference, with their arguments.
const TOOLS: &[(&str, &[&str])] = &[
    ("xorriso", &["-as", "mkisofs"]),
    ("genisoimage", &[]),
    ("mkisofs", &[]),
];

/// The first ISO tool found on `PATH`.
pub(crate) fn iso_tool() -> Option<(PathBuf, &'static [&'static str])> {
    TOOLS
        .iter()
        .find_map(|(name, arguments)| super::probe::which(name).map(|path| (path, *arguments)))
}

/// Writes the seed files into `directory` and the ISO to `iso`.
///
/// # Errors
/// No ISO tool, the files cannot be written, or the tool fails.
pub(crate) async fn write(
    files: &SeedFiles,
    directory: &Path,
    iso: &Path,
) -> Result<(), GuestError> {
    let (tool, arguments) = iso_tool().ok_or(GuestError::MissingTool(
        "xorriso (apt-get install xorriso) or genisoimage",
    ))?;
    let io = |source| GuestError::Io {
        what: format!("writing the cloud-init seed in {}", directory.display()),
        source,
    };
    if directory.exists() {
        tokio::fs::remove_dir_all(directory).await.map_err(io)?;
    }
    tokio::fs::create_dir_all(directory).await.map_err(io)?;
    for (name, content) in [
        ("user-data", &files.user),
        ("network-config", &files.network),
        ("meta-data", &files.meta),
        ("vendor-data", &files.vendor),
    ] {
        tokio::fs::write(directory.join(name), content)
            .await
            .map_err(io)?;
    }
    let output = tokio::process::Command::new(&tool)
        .args(arguments)
        .args(["-quiet", "-volid", "cidata", "-joliet", "-rock", "-output"])
        .arg(iso)
        .arg(directory)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| GuestError::Io {
            what: format!("running {}", tool.display()),
            source,
        })?;
    if !output.status.success() {
        return Err(GuestError::Tool {
            tool: tool.display().to_string(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}
