//! The SSH-forward extension endpoint, `GET /lab/vms/{vmid}/ssh`, with state-only guests;
//! the disk files of real guests through clone, template, resize and destroy.
//!
//! Why: sombrero's deploy asks it which 127.0.0.1 port reaches a VM's SSH; a state-only
//! guest has none (`data: null`), an unknown VM is a 404, and it needs a credential like
//! the API. The real-guest answer is checked by the qemu end-to-end test.

use serde_json::Value;

use crate::common::start_with;

async fn get(lab: &pve_lab::LabHandle, path: &str, authorization: Option<String>) -> (u16, Value) {
    let url = format!("{}{path}", lab.url().trim_end_matches("/api2/json"));
    let mut request = reqwest::Client::new().get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_state_only_guest_has_no_ssh_forward() {
    let lab = start_with(|options| options.node.with_template = true).await;
    let (status, body) = get(&lab, "/lab/vms/1001/ssh", Some(lab.authorization())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"data": null}));
    let readonly = format!("PVEAPIToken={}", lab.readonly_token());
    let (status, _) = get(&lab, "/lab/vms/1001/ssh", Some(readonly)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_vms_and_anonymous_callers_are_refused() {
    let lab = start_with(|options| options.node.with_template = true).await;
    let (status, body) = get(&lab, "/lab/vms/4242/ssh", Some(lab.authorization())).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(&lab, "/lab/vms/1001/ssh", None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&lab, "/lab/vms/abc/ssh", Some(lab.authorization())).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn lab_guests_says_state_only_and_names_the_base_image_volume() {
    let lab = start_with(|_| {}).await;
    let (status, body) = get(&lab, "/lab/guests", Some(lab.authorization())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["guests"], "state", "{body}");
    assert_eq!(body["data"]["accelerator"], Value::Null, "{body}");
    let volume = body["data"]["base_image"].as_str().unwrap_or_default();
    assert!(volume.starts_with("local:import/"), "{body}");
    let (status, _) = get(&lab, "/lab/guests", None).await;
    assert_eq!(status, 401, "a credential is needed like the API");
}

const MIB: u64 = 1024 * 1024;

/// Runs `qemu-img` and returns stdout.
fn qemu_img(arguments: &[&str]) -> String {
    let output = std::process::Command::new("qemu-img")
        .args(arguments)
        .output()
        .expect("qemu-img runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn info(path: &std::path::Path) -> Value {
    serde_json::from_str(&qemu_img(&[
        "info",
        "--output=json",
        "-U",
        &path.display().to_string(),
    ]))
    .expect("JSON")
}

/// The disk life of real guests, without booting: template disk on the base image, full
/// clone copy, template conversion (renamed, read-only), linked clone on the base, resize,
/// destroy. Needs only qemu-img.
#[tokio::test]
async fn guest_disks_follow_clone_template_resize_and_destroy() {
    if pve_lab::guest::probe::which("qemu-img").is_none() {
        pve_lab::testing::skip(
            "guest_disks_follow_clone_template_resize_and_destroy",
            "no qemu-img (apt-get install qemu-utils)",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let image_dir = dir.path().join("image");
    std::fs::create_dir_all(&image_dir).expect("mkdir");
    let base = image_dir.join("disk.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &base.display().to_string(),
        "64M",
    ]);
    let guests = pve_lab::guest::QemuGuests::new(pve_lab::guest::QemuOptions {
        image: pve_lab::guest::Image {
            dir: image_dir.clone(),
            kernel: image_dir.join("vmlinuz"),
            initrd: image_dir.join("initrd.img"),
            disk: base.clone(),
        },
        work_dir: dir.path().join("work"),
        accelerator: pve_lab::guest::Accelerator::Tcg,
        qemu: "qemu-system-x86_64".into(),
    })
    .expect("backend");
    // The seeded template's disk: an overlay on the image, at the volume's size.
    let template = guests
        .ensure_disk("local-lvm:base-1001-disk-0", 128 * MIB, None)
        .await
        .expect("template disk");
    let template_info = info(&template);
    assert_eq!(template_info["virtual-size"], 128 * MIB);
    assert_eq!(
        template_info["backing-filename"],
        base.display().to_string()
    );
    // A full clone is a flattened copy.
    guests
        .copy_disk(
            "local-lvm:base-1001-disk-0",
            None,
            "local-lvm:vm-160-disk-0",
        )
        .await
        .expect("full clone");
    let full = dir.path().join("work/disks/local-lvm/vm-160-disk-0.qcow2");
    assert!(
        info(&full).get("backing-filename").is_none(),
        "{}",
        info(&full)
    );
    // Converting VM 160 to a template: renamed to its base name and read-only.
    guests
        .make_base("local-lvm:vm-160-disk-0", "local-lvm:base-160-disk-0")
        .await
        .expect("template conversion");
    let base_160 = dir
        .path()
        .join("work/disks/local-lvm/base-160-disk-0.qcow2");
    assert!(!full.exists());
    assert!(
        std::fs::metadata(&base_160)
            .expect("base")
            .permissions()
            .readonly()
    );
    // A linked clone sits on the new base; a resize grows it; destroy removes it.
    let linked = guests
        .ensure_disk(
            "local-lvm:vm-161-disk-0",
            128 * MIB,
            Some("local-lvm:base-160-disk-0"),
        )
        .await
        .expect("linked clone");
    assert_eq!(
        info(&linked)["backing-filename"],
        base_160.display().to_string()
    );
    guests
        .resize_disk(161, "local-lvm:vm-161-disk-0", 256 * MIB)
        .await
        .expect("resize");
    assert_eq!(info(&linked)["virtual-size"], 256 * MIB);
    guests
        .remove_disk("local-lvm:vm-161-disk-0")
        .await
        .expect("destroy");
    assert!(!linked.exists());
}
