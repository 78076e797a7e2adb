//! A Docker image archive (the `docker save` layout) of a busybox-static root filesystem.
//!
//! Why: lab guests have no network, so nothing can be pulled; the smoke tests' container
//! comes from a tarball that `docker load` accepts. The layout is written here, byte for
//! byte and reproducibly (fixed times, owners and order): one layer tar holding
//! `bin/busybox` and a symlink per applet, the image config naming that layer's digest,
//! and `manifest.json` tying config, layer and tag together.

use std::fmt::Write as _;

use serde_json::json;
use sha2::{Digest, Sha256};

/// Part of the image recipe hash: bump when the layout changes.
pub const LAYOUT_VERSION: &str = "docker-archive v1: busybox layer, config, manifest.json";

/// The tag the image is loaded as.
pub const IMAGE_TAG: &str = "busybox:lab";

/// A minimal POSIX (ustar) tar writer.
#[derive(Debug, Default)]
pub struct TarBuilder {
    bytes: Vec<u8>,
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let text = text.as_bytes();
    let start = text.len().saturating_sub(width);
    field[..width].copy_from_slice(&text[start..]);
    field[width] = 0;
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, mode: u64, size: u64, kind: u8, link: &str) {
        let mut header = [0_u8; 512];
        let name = name.as_bytes();
        header[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        octal(&mut header[100..108], mode);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], size);
        octal(&mut header[136..148], 0);
        header[148..156].fill(b' ');
        header[156] = kind;
        let link = link.as_bytes();
        header[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[265..269].copy_from_slice(b"root");
        header[297..301].copy_from_slice(b"root");
        let checksum: u64 = header.iter().map(|byte| u64::from(*byte)).sum();
        let mut field = [0_u8; 8];
        octal(&mut field[..7], checksum);
        field[7] = b' ';
        header[148..156].copy_from_slice(&field);
        self.bytes.extend_from_slice(&header);
    }

    /// A directory (`name` ends with `/`).
    pub fn directory(&mut self, name: &str) {
        self.header(name, 0o755, 0, b'5', "");
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, mode: u64, content: &[u8]) {
        self.header(name, mode, content.len() as u64, b'0', "");
        self.bytes.extend_from_slice(content);
        let padding = (512 - content.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0, padding));
    }

    /// A symbolic link.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.header(name, 0o777, 0, b'2', target);
    }

    /// The archive with its end-of-archive blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend(std::iter::repeat_n(0, 1024));
        self.bytes
    }
}

/// The `docker save` archive of an image whose only layer is busybox and its applets.
pub fn busybox_image(busybox: &[u8], applets: &[String]) -> Vec<u8> {
    let mut layer = TarBuilder::new();
    layer.directory("bin/");
    layer.file("bin/busybox", 0o755, busybox);
    let mut applets: Vec<&str> = applets
        .iter()
        .map(|applet| applet.trim())
        .filter(|applet| !applet.is_empty() && *applet != "busybox" && !applet.contains(['/', '.']))
        .collect();
    applets.sort_unstable();
    applets.dedup();
    for applet in applets {
        layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    for directory in ["etc/", "tmp/", "root/"] {
        layer.directory(directory);
    }
    layer.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    let layer = layer.finish();
    let layer_digest = hex::encode(Sha256::digest(&layer));
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "sombrero lab image build"}],
    })
    .to_string();
    let config_digest = hex::encode(Sha256::digest(config.as_bytes()));
    let config_name = format!("{config_digest}.json");
    let layer_name = format!("{layer_digest}/layer.tar");
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [IMAGE_TAG],
        "Layers": [layer_name],
    }])
    .to_string();
    let mut repositories = String::new();
    let (name, tag) = IMAGE_TAG.split_once(':').unwrap_or((IMAGE_TAG, "latest"));
    let _ = write!(
        repositories,
        "{{\"{name}\":{{\"{tag}\":\"{layer_digest}\"}}}}"
    );
    let mut archive = TarBuilder::new();
    archive.directory(&format!("{layer_digest}/"));
    archive.file(&format!("{layer_digest}/VERSION"), 0o644, b"1.0");
    archive.file(&layer_name, 0o644, &layer);
    archive.file(&config_name, 0o644, config.as_bytes());
    archive.file("manifest.json", 0o644, manifest.as_bytes());
    archive.file("repositories", 0o644, repositories.as_bytes());
    archive.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lists `(name, type, size, link)` of a ustar archive, checking every checksum.
    fn entries(archive: &[u8]) -> Vec<(String, u8, usize, String)> {
        let text = |field: &[u8]| {
            String::from_utf8_lossy(field.split(|byte| *byte == 0).next().unwrap_or(&[]))
                .into_owned()
        };
        let number = |field: &[u8]| usize::from_str_radix(text(field).trim(), 8).unwrap_or(0);
        let mut out = Vec::new();
        let mut offset = 0;
        while offset + 512 <= archive.len() && archive[offset..offset + 512] != [0; 512] {
            let header = &archive[offset..offset + 512];
            let mut blank = header.to_vec();
            blank[148..156].fill(b' ');
            let sum: usize = blank.iter().map(|byte| usize::from(*byte)).sum();
            assert_eq!(
                sum,
                number(&header[148..155]),
                "checksum of entry at {offset}"
            );
            let size = number(&header[124..136]);
            out.push((
                text(&header[..100]),
                header[156],
                size,
                text(&header[157..257]),
            ));
            offset += 512 + size.div_ceil(512) * 512;
        }
        out
    }

    #[test]
    fn the_archive_has_docker_saves_layout() {
        let archive = busybox_image(b"\x7fELF fake", &["sh".into(), "echo".into(), "sh".into()]);
        let names: Vec<String> = entries(&archive).into_iter().map(|entry| entry.0).collect();
        assert!(names.iter().any(|name| name == "manifest.json"));
        assert!(names.iter().any(|name| name.ends_with("/layer.tar")));
        assert!(names.iter().any(|name| {
            name.len() == 69
                && name
                    .rsplit_once('.')
                    .is_some_and(|(_, extension)| extension == "json")
        }));
        // Reproducible: the same input gives the same bytes.
        assert_eq!(
            archive,
            busybox_image(b"\x7fELF fake", &["echo".into(), "sh".into()])
        );
    }

    #[test]
    fn the_layer_holds_busybox_and_applet_links() {
        let layer = {
            let mut builder = TarBuilder::new();
            builder.file("bin/busybox", 0o755, &[1; 700]);
            builder.symlink("bin/sh", "busybox");
            builder.finish()
        };
        let listed = entries(&layer);
        assert_eq!(listed[0], ("bin/busybox".into(), b'0', 700, String::new()));
        assert_eq!(listed[1], ("bin/sh".into(), b'2', 0, "busybox".into()));
        assert_eq!(layer.len() % 512, 0);
    }

    #[test]
    fn the_manifest_names_the_layer_whose_digest_the_config_lists() {
        let archive = busybox_image(b"binary", &["sh".into()]);
        let listed = entries(&archive);
        let layer_name = listed
            .iter()
            .find(|entry| entry.0.ends_with("/layer.tar"))
            .map(|entry| entry.0.clone())
            .expect("layer");
        let digest = layer_name.trim_end_matches("/layer.tar");
        let text = String::from_utf8_lossy(&archive);
        assert!(text.contains(&format!("\"Layers\":[\"{layer_name}\"]")));
        assert!(text.contains(&format!("\"diff_ids\":[\"sha256:{digest}\"]")));
        assert!(text.contains("\"RepoTags\":[\"busybox:lab\"]"));
    }
}
