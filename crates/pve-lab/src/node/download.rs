//! `POST /nodes/{node}/storage/{storage}/download-url`, without downloading anything.
//!
//! Why: stage 1 may ask PVE to fetch a cloud image into `local` import content. The lab
//! must never reach the network (the hard rule in DESIGN.md), so the `download` task only
//! takes time and then registers a volume of plausible size; the URL is recorded in the
//! task log and never contacted.

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
    let content = param_str(request, "content").unwrap_or_default().to_owned();
    let filename = param_str(request, "filename")
        .unwrap_or_default()
        .to_owned();
    let url = param_str(request, "url").unwrap_or_default().to_owned();
    let found = definition(&storage).ok_or_else(|| internal(missing_storage(&storage)))?;
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
        id: filename.clone(),
        user: request.identity.upid_user(),
        duration: shared.options.durations.download,
    };
    shared.write(|state| {
        if state.volume(&format!("{storage}:{name}")).is_some() {
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
                    state.put_volume(&storage, &name, volume);
                });
                Ok(())
            },
        );
        Ok(json!(upid))
    })
}
