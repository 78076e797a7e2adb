//! Before anything is created: what holds the template id, which builders an earlier
//! build left behind, and where the cloud image comes from.
//!
//! Why this is strict: the template id is shared by every environment, so build only ever
//! replaces what it recognises as its own (a template tagged `sombrero` and `golden`, or a
//! builder tagged `sombrero-builder`); anything else in the slot is refused. A builder is
//! tagged from its creation, so a build killed half-way is recognised and removed by the
//! next run instead of piling up VMs.

use pve::{Client, ClusterResource, ResourceType, VmConfig};

use super::error::BuildError;
use super::{BUILDER_TAG, BuildRequest, GOLDEN_TAG, Note};
use crate::deploy::MANAGED_TAG;
use crate::settings::build::split_volume;

/// The tags of a resource or config (`;`, `,` or space separated).
pub(crate) fn tags_of(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split([';', ',', ' '])
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a VM with these tags is one of build's templates.
pub(crate) fn is_golden(tags: &[String], template: bool) -> bool {
    template && tags.iter().any(|t| t == MANAGED_TAG) && tags.iter().any(|t| t == GOLDEN_TAG)
}

/// What holds the template id.
#[derive(Debug)]
pub(crate) enum Slot {
    Free,
    /// A golden template sombrero built.
    Golden(Box<VmConfig>),
}

/// What `GET /lab/guests` says (only a lab answers it).
#[derive(Debug, Clone)]
pub(crate) struct LabGuests {
    pub real: bool,
    pub base_image: Option<String>,
}

/// The lab's guests, `None` against a real Proxmox VE (which answers an error).
pub(crate) async fn lab_guests(client: &Client) -> Option<LabGuests> {
    let request = pve::Request::server_root(pve::Method::Get, "/lab/guests".to_owned())
        .with_retry(pve::RetryRule::NeverSentOnly);
    let data = client.execute(&request).await.ok()?;
    let kind = data.get("guests")?.as_str()?;
    Some(LabGuests {
        real: kind == "qemu",
        base_image: data
            .get("base_image")
            .and_then(|value| value.as_str())
            .map(ToOwned::to_owned),
    })
}

/// Every VM of the cluster.
pub(crate) async fn vms(client: &Client) -> Result<Vec<ClusterResource>, BuildError> {
    client
        .cluster_resources(Some(ResourceType::Vm))
        .await
        .map_err(|error| BuildError::api("listing the cluster's VMs", error))
}

/// Removes every builder an earlier build left (stopped first); returns their ids.
pub(crate) async fn remove_builders(
    client: &Client,
    request: &BuildRequest,
    resources: &[ClusterResource],
    say: Note<'_>,
) -> Result<Vec<u32>, BuildError> {
    let mut removed = Vec::new();
    let quiet = |_: &pve::WaitEvent| {};
    for resource in resources {
        let tags = tags_of(resource.tags.as_deref());
        let (Some(vmid), Some(node)) = (resource.vmid, resource.node.as_deref()) else {
            continue;
        };
        if !tags.iter().any(|tag| tag == BUILDER_TAG) {
            continue;
        }
        say(&format!(
            "removing builder VM {vmid} ({}) left by an earlier build",
            resource.name.as_deref().unwrap_or("unnamed")
        ));
        if resource.status.as_deref() != Some("stopped") {
            client
                .stop_vm_and_wait(node, vmid, request.timeouts.power, &quiet)
                .await
                .map_err(|error| BuildError::api(format!("stopping builder VM {vmid}"), error))?;
        }
        client
            .delete_vm_and_wait(node, vmid, request.timeouts.clone, &quiet)
            .await
            .map_err(|error| BuildError::api(format!("removing builder VM {vmid}"), error))?;
        removed.push(u32::try_from(vmid).unwrap_or(u32::MAX));
    }
    Ok(removed)
}

/// What holds `template_id` on `node` (builders were removed before this is asked).
///
/// # Errors
/// [`BuildError::SlotTaken`] for anything that is not a sombrero golden template.
pub(crate) async fn inspect(
    client: &Client,
    node: &str,
    template_id: u32,
) -> Result<Slot, BuildError> {
    let id = u64::from(template_id);
    let found = vms(client).await?.into_iter().find(|r| r.vmid == Some(id));
    let Some(resource) = found else {
        return Ok(Slot::Free);
    };
    let tags = tags_of(resource.tags.as_deref());
    let found_on = resource.node.as_deref().unwrap_or_default();
    if found_on == node && is_golden(&tags, resource.template) {
        let config = client
            .vm_config(found_on, id)
            .await
            .map_err(|error| BuildError::api(format!("reading template {id}"), error))?;
        return Ok(Slot::Golden(Box::new(config)));
    }
    Err(BuildError::SlotTaken {
        vmid: template_id,
        name: format!(
            "{}{}",
            resource.name.as_deref().unwrap_or("unnamed"),
            if found_on == node {
                String::new()
            } else {
                format!(", on node {found_on}")
            }
        ),
    })
}

/// What the base image is and where the node may fetch it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageSpec<'a> {
    pub node: &'a str,
    pub base_image: &'a str,
    pub base_image_url: Option<&'a str>,
    pub base_image_sha256: Option<&'a str>,
}

impl<'a> ImageSpec<'a> {
    pub(crate) fn of(request: &'a BuildRequest) -> Self {
        Self {
            node: &request.node,
            base_image: &request.base_image,
            base_image_url: request.base_image_url.as_deref(),
            base_image_sha256: request.base_image_sha256.as_deref(),
        }
    }
}

/// The cloud image volume the builder imports, and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct BaseImage {
    pub volume: String,
    pub how: String,
}

/// Finds the base image in storage, stands the lab's cached image in for it, or has the
/// node download it (with the configured checksum).
///
/// # Errors
/// [`BuildError::BaseImageMissing`] (no URL), [`BuildError::DownloadFailed`] (including a
/// checksum mismatch), API errors.
pub(crate) async fn base_image(
    client: &Client,
    request: &ImageSpec<'_>,
    lab: Option<&LabGuests>,
    say: Note<'_>,
) -> Result<BaseImage, BuildError> {
    let wanted = request.base_image;
    let (storage, file) = split_volume(wanted).unwrap_or(("local", ""));
    let content = client
        .storage_content(request.node, storage, Some("import"))
        .await
        .map_err(|error| BuildError::api(format!("listing {storage}'s import content"), error))?;
    if content.iter().any(|item| item.volid == wanted) {
        return Ok(BaseImage {
            volume: wanted.to_owned(),
            how: format!("found in storage {storage}"),
        });
    }
    if let Some(volume) = lab.and_then(|lab| lab.base_image.clone()) {
        say(&format!(
            "the lab's cached guest image {volume} stands in for {wanted} (nothing downloaded)"
        ));
        return Ok(BaseImage {
            volume,
            how: "the lab's cached guest image".to_owned(),
        });
    }
    let Some(url) = request.base_image_url else {
        return Err(BuildError::BaseImageMissing {
            volume: wanted.to_owned(),
            storage: storage.to_owned(),
            setting: "build.base_image_url",
        });
    };
    say(&format!(
        "node {} downloads {url} into {wanted}{}",
        request.node,
        if request.base_image_sha256.is_some() {
            " (SHA-256 checked by the node)"
        } else {
            " (no build.base_image_sha256: not checked)"
        }
    ));
    let download = pve::endpoints::DownloadUrl {
        content: "import".to_owned(),
        filename: file.to_owned(),
        url: url.to_owned(),
        sha256: request.base_image_sha256.map(ToOwned::to_owned),
    };
    let failed = |message: String| BuildError::DownloadFailed {
        url: url.to_owned(),
        volume: wanted.to_owned(),
        message,
    };
    let upid = client
        .download_url(request.node, storage, &download)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let quiet = |_: &pve::WaitEvent| {};
    client
        .wait_task(&upid, super::DOWNLOAD_TIMEOUT, &quiet)
        .await
        .map_err(|error| failed(error.to_string()))?;
    Ok(BaseImage {
        volume: wanted.to_owned(),
        how: format!("downloaded from {url}"),
    })
}

#[cfg(test)]
mod tests {
    use super::{ImageSpec, LabGuests, Slot, base_image, inspect, is_golden, lab_guests, tags_of};
    use crate::build::BuildError;

    /// A state-only lab: its "download" is zero bytes, whose SHA-256 is well known.
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    async fn lab(with_template: bool) -> (pve_lab::LabHandle, pve::Client) {
        let mut options = pve_lab::LabOptions::for_tests();
        options.node.with_template = with_template;
        let lab = pve_lab::Lab::start(options).await.expect("lab starts");
        let client = pve::Client::builder(lab.url())
            .token(lab.token().parse().expect("token"))
            .build()
            .expect("client");
        (lab, client)
    }

    fn spec<'a>(volume: &'a str, url: Option<&'a str>, sha: Option<&'a str>) -> ImageSpec<'a> {
        ImageSpec {
            node: "lloyd",
            base_image: volume,
            base_image_url: url,
            base_image_sha256: sha,
        }
    }

    /// The lab's seeded template 1001 (tags packer-built and ubuntu-24-04) is not one of
    /// build's: refused with exit 1, naming it; a free id is free.
    #[tokio::test]
    async fn a_template_id_held_by_anything_else_is_refused() {
        let (_lab, client) = lab(true).await;
        let error = inspect(&client, "lloyd", 1001).await.expect_err("taken");
        assert!(
            matches!(error, BuildError::SlotTaken { vmid: 1001, .. }),
            "{error}"
        );
        assert!(!error.is_bad_input(), "exit 1");
        assert!(
            error
                .to_string()
                .contains("is not a sombrero golden template"),
            "{error}"
        );
        assert!(
            error
                .hint()
                .is_some_and(|hint| hint.contains("--template-id"))
        );
        assert!(matches!(
            inspect(&client, "lloyd", 4242).await,
            Ok(Slot::Free)
        ));
    }

    #[tokio::test]
    async fn a_missing_base_image_is_downloaded_checked_or_refused() {
        let (_lab, client) = lab(false).await;
        let quiet = |_: &str| {};
        let guests = lab_guests(&client).await.expect("the lab answers");
        assert!(!guests.real, "state-only guests");
        // Present in the lab's storage: used as it is.
        let present = guests.base_image.clone().expect("a base image volume");
        let found = base_image(&client, &spec(&present, None, None), None, &quiet)
            .await
            .expect("found");
        assert_eq!(found.volume, present);
        assert!(
            found.how.contains("found in storage local"),
            "{}",
            found.how
        );
        // Missing, no URL: exit 2, naming the setting.
        let missing = "local:import/noble-server-cloudimg-amd64.qcow2";
        let error = base_image(&client, &spec(missing, None, None), None, &quiet)
            .await
            .expect_err("missing");
        assert!(
            matches!(error, BuildError::BaseImageMissing { .. }),
            "{error}"
        );
        assert!(error.is_bad_input());
        assert!(
            error.to_string().contains("build.base_image_url"),
            "{error}"
        );
        // A wrong checksum fails the node's download, and nothing is registered.
        let url = Some("https://cloud-images.example.invalid/noble.img");
        let wrong = "0".repeat(64);
        let error = base_image(&client, &spec(missing, url, Some(&wrong)), None, &quiet)
            .await
            .expect_err("checksum mismatch");
        assert!(error.to_string().contains("checksum mismatch"), "{error}");
        assert!(error.hint().is_some_and(|hint| hint.contains("SHA256SUMS")));
        // The right one downloads it; the next build finds it in storage.
        let got = base_image(
            &client,
            &spec(missing, url, Some(EMPTY_SHA256)),
            None,
            &quiet,
        )
        .await
        .expect("downloaded");
        assert!(got.how.starts_with("downloaded from"), "{}", got.how);
        let again = base_image(&client, &spec(missing, None, None), None, &quiet)
            .await
            .expect("now present");
        assert!(again.how.contains("found in storage"), "{}", again.how);
        // With real lab guests the lab's own image stands in for a missing one.
        let stand_in = LabGuests {
            real: true,
            base_image: Some(present.clone()),
        };
        let other = "local:import/other.qcow2";
        let used = base_image(&client, &spec(other, None, None), Some(&stand_in), &quiet)
            .await
            .expect("stand-in");
        assert_eq!(used.volume, present);
    }

    #[test]
    fn golden_means_a_template_tagged_sombrero_and_golden() {
        let tags = tags_of(Some("golden;packer-built;sombrero"));
        assert!(is_golden(&tags, true));
        assert!(!is_golden(&tags, false), "a VM is not a template");
        assert!(!is_golden(
            &tags_of(Some("packer-built;ubuntu-24-04")),
            true
        ));
        assert!(!is_golden(&tags_of(Some("golden")), true));
        assert_eq!(tags_of(Some("a, b c;d")), ["a", "b", "c", "d"]);
        assert!(tags_of(None).is_empty());
    }
}
