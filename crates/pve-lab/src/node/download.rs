//! `POST /nodes/{node}/storage/{storage}/download-url`, without downloading anything.
//!
//! Why: stage 1 may ask PVE to fetch a cloud image into `local` import content. The lab
//! must never reach the network (the hard rule in DESIGN.md), so the `download` task only
//! takes time and then registers a volume of plausible size; the URL is recorded in the
//! task log and never contacted. What it "downloads" is the lab's own content: with QEMU
//! guests the cached guest base image (which a volume without a file boots anyway), with
//! state-only guests nothing (zero bytes). A `checksum` is verified against that content
//! the way PVE verifies it, so a wrong checksum fails the task with PVE's message.

use std::sync::Arc;

use serde_json::json;

use super::params::internal;
use super::state::Volume;
use super::storage::{definition, missing_storage};
use super::tasks::{self, TaskContext, TaskSpec};
use super::{Shared, param_str};
use crate::api::{ApiRequest, ApiResult};

const MIB: u64 = 1024 * 1024;

/// Allowed extensions per content type, and the size a "downloaded" file gets.
fn rules(content: &str) -> Option<(&'static [&'static str], u64)> {
    match content {
        "iso" => Some((&[".iso", ".img"], 650 * MIB)),
        "vztmpl" => Some((&[".tar.gz", ".tar.xz", ".tar.zst"], 120 * MIB)),
        "import" => Some((&[".qcow2", ".raw", ".vmdk", ".ova", ".img"], 3 * 1024 * MIB)),
        _ => None,
    }
}

/// Starts a `download` task that registers `STORAGE:CONTENT/FILENAME` when it ends.
pub(crate) fn download_url(shared: &Arc<Shared>, request: &ApiRequest) -> ApiResult {
    let storage = request.path("storage").to_owned();
    let node = request.path("node").to_owned();
    let content = param_str(request, "content").unwrap_or_default().to_owned();
    let filename = param_str(request, "filename")
        .unwrap_or_default()
        .to_owned();
    let url = param_str(request, "url").unwrap_or_default().to_owned();
    let checksum = expected_checksum(request)?;
    let found = shared
        .read(|state| definition(state, &storage))
        .ok_or_else(|| internal(missing_storage(&storage)))?;
    if !found.content.split(',').any(|kind| kind == content) {
        return Err(internal(format!(
            "storage '{storage}' is not configured for content-type '{content}'"
        )));
    }
    let (extensions, size) =
        rules(&content).ok_or_else(|| internal(format!("unsupported content type '{content}'")))?;
    let valid_name =
        !filename.contains('/') && extensions.iter().any(|ext| filename.ends_with(ext));
    if !valid_name {
        return Err(internal("invalid filename or wrong extension".to_owned()));
    }
    let name = format!("{content}/{filename}");
    let directory = match content.as_str() {
        "iso" => "template/iso",
        "vztmpl" => "template/cache",
        _ => "import",
    };
    let path = format!("/var/lib/vz/{directory}/{filename}");
    let spec = TaskSpec {
        kind: "download",
        node: node.clone(),
        id: filename.clone(),
        user: request.identity.upid_user(),
        duration: shared.options.durations.download,
    };
    shared.write(|state| {
        if state.volume(&node, &format!("{storage}:{name}")).is_some() {
            return Err(internal(format!(
                "refusing to override existing file '{path}'"
            )));
        }
        let upid = tasks::spawn(
            shared,
            state,
            spec,
            move |context: TaskContext| async move {
                context.log(format!("downloading {url} to {path}"));
                context.log("(pve-lab: simulated, no network access)");
                context.work().await?;
                if let Some(expected) = checksum {
                    let got = content_sha256(&context.shared).await;
                    context.log(format!("calculating checksum of '{path}'..."));
                    if got != expected {
                        return Err(format!(
                            "checksum mismatch: got '{got}' != expect '{expected}'"
                        ));
                    }
                    context.log("checksum verified");
                }
                context.log(format!("download of '{url}' to '{path}' finished"));
                context.shared.write(|state| {
                    let format = filename.rsplit('.').next().unwrap_or("raw").to_owned();
                    let volume = Volume {
                        size,
                        format,
                        content: content.clone(),
                        vmid: None,
                        parent: None,
                        ctime: super::unix_seconds(),
                    };
                    state.put_volume(&node, &storage, &name, volume);
                });
                Ok(())
            },
        );
        Ok(json!(upid))
    })
}

/// The expected SHA-256 of a download, lowercased; other algorithms are refused (the lab
/// computes SHA-256 only) and a checksum without its algorithm is a parameter error, as
/// the schema's `requires` makes it on PVE.
fn expected_checksum(request: &ApiRequest) -> Result<Option<String>, crate::api::ApiError> {
    let checksum = param_str(request, "checksum");
    let algorithm = param_str(request, "checksum-algorithm");
    match (checksum, algorithm) {
        (None, None) => Ok(None),
        (Some(checksum), Some("sha256")) => Ok(Some(checksum.trim().to_ascii_lowercase())),
        (Some(_), Some(other)) => Err(internal(format!(
            "pve-lab computes sha256 checksums only, not '{other}'"
        ))),
        (Some(_), None) => Err(crate::api::ApiError::param(
            "checksum-algorithm",
            "parameter is required when 'checksum' is set",
        )),
        (None, Some(_)) => Err(crate::api::ApiError::param(
            "checksum",
            "parameter is required when 'checksum-algorithm' is set",
        )),
    }
}

/// The SHA-256 of what the lab "downloads": the cached base image with QEMU guests, zero
/// bytes with state-only guests.
async fn content_sha256(shared: &Arc<Shared>) -> String {
    use sha2::{Digest, Sha256};
    let Some(guests) = shared.options.guests.qemu() else {
        return hex::encode(Sha256::digest([]));
    };
    let disk = guests.image().disk.clone();
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        match std::fs::File::open(&disk) {
            Ok(mut file) => {
                if std::io::copy(&mut file, &mut hasher).is_err() {
                    return format!("unreadable {}", disk.display());
                }
                hex::encode(hasher.finalize())
            }
            Err(error) => format!("unreadable {}: {error}", disk.display()),
        }
    })
    .await
    .unwrap_or_default()
}
