//! `diagnose --bundle FILE`: one tar.gz with what a colleague needs to look at a broken
//! jump host without access to it: the findings, cloud-init's logs and status, journal
//! excerpts, the VM's recent Proxmox task logs, the stage outputs and the resolved
//! configuration. Every file passes through [`Redactor`] first, so the API token, the
//! password and anything shaped like a credential never reach the archive.

use std::path::{Path, PathBuf};

use pve::Client;
use pve::endpoints::TaskFilter;
use regex::Regex;

use super::{Diagnosis, Guest};

/// Replaces secrets (given, and credential-shaped text) with `[redacted]`.
#[derive(Debug)]
pub struct Redactor {
    secrets: Vec<String>,
    patterns: Vec<Regex>,
}

impl Redactor {
    /// `secrets`: the values to remove wherever they appear (token secret, password).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let secrets = secrets
            .into_iter()
            .filter(|secret| secret.len() >= 4)
            .collect();
        let patterns = [
            // `PVEAPIToken=user@realm!id=SECRET`, `Authorization: ...` headers.
            r"(PVEAPIToken[= ])[^\s'\x22]+",
            r"(?i)(authorization:\s*)\S+",
            // `password=...`, `"password": "..."`, `token: ...` and the like.
            r#"(?i)((?:password|passwd|secret|api_token|pve_api_token)["']?\s*[:=]\s*["']?)[^\s"',}]+"#,
            // The secret of a `user@realm!tokenid=UUID` token.
            r"([A-Za-z0-9._-]+@[A-Za-z0-9.-]+![A-Za-z0-9._-]+=)[0-9a-fA-F-]{8,}",
        ]
        .iter()
        .filter_map(|pattern| Regex::new(pattern).ok())
        .collect();
        Self { secrets, patterns }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            text = text.replace(secret.as_str(), "[redacted]");
        }
        for pattern in &self.patterns {
            text = pattern.replace_all(&text, "${1}[redacted]").into_owned();
        }
        text
    }
}

/// What goes into the bundle besides what is collected from the VM.
#[derive(Debug)]
pub struct BundleInput<'a> {
    pub diagnosis: &'a Diagnosis,
    /// The environment's outputs directory (every file in it is included).
    pub outputs_dir: PathBuf,
    /// The resolved configuration, as `config show --json` prints it.
    pub configuration: String,
    pub node: String,
}

/// The files the bundle holds: `(name in the archive, content)`.
pub async fn collect(
    client: Option<&Client>,
    guest: &mut Guest<'_>,
    input: &BundleInput<'_>,
) -> Vec<(String, String)> {
    let mut files = vec![
        (
            "findings.json".to_owned(),
            serde_json::to_string_pretty(input.diagnosis).unwrap_or_default(),
        ),
        ("configuration.json".to_owned(), input.configuration.clone()),
    ];
    if let Ok(entries) = std::fs::read_dir(&input.outputs_dir) {
        let mut names: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        names.sort();
        for path in names.into_iter().filter(|path| path.is_file()) {
            if let (Some(name), Ok(text)) = (path.file_name(), std::fs::read_to_string(&path)) {
                files.push((format!("outputs/{}", name.to_string_lossy()), text));
            }
        }
    }
    for (name, path) in [
        ("guest/cloud-init.log", "/var/log/cloud-init.log"),
        (
            "guest/cloud-init-output.log",
            "/var/log/cloud-init-output.log",
        ),
    ] {
        if let Some(text) = guest.read_file(path).await {
            files.push((name.to_owned(), text));
        }
    }
    for (name, script) in [
        (
            "guest/cloud-init-status.txt",
            "cloud-init status --long 2>&1",
        ),
        (
            "guest/journal.txt",
            "journalctl -b --no-pager -n 400 -o short-iso 2>&1",
        ),
        (
            "guest/journal-docker.txt",
            "journalctl -b -u docker --no-pager -n 200 -o short-iso 2>&1",
        ),
        (
            "guest/journal-ssh.txt",
            "journalctl -b -u ssh --no-pager -n 200 -o short-iso 2>&1",
        ),
        (
            "guest/failed-units.txt",
            "systemctl list-units --state=failed --no-pager 2>&1",
        ),
        ("guest/nft-ruleset.txt", "nft -a list ruleset 2>&1"),
    ] {
        if let Some(output) = guest.run(script).await {
            files.push((name.to_owned(), output.stdout + &output.stderr));
        }
    }
    if let Some(client) = client {
        files.extend(task_logs(client, &input.node, u64::from(input.diagnosis.vm_id)).await);
    }
    files
}

/// The VM's last ten Proxmox tasks, each with its log.
async fn task_logs(client: &Client, node: &str, vmid: u64) -> Vec<(String, String)> {
    let filter = TaskFilter {
        vmid: Some(vmid),
        limit: Some(10),
        ..TaskFilter::default()
    };
    let Ok(tasks) = client.tasks(node, &filter).await else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for (index, task) in tasks.iter().enumerate() {
        let Ok(lines) = client.task_log_tail(&task.upid, 500).await else {
            continue;
        };
        let mut text = format!(
            "{}\nstatus: {}\n\n",
            task.upid,
            task.status.as_deref().unwrap_or("running")
        );
        for line in lines {
            text.push_str(&line.text);
            text.push('\n');
        }
        files.push((format!("tasks/{index:02}-{}.log", task.task_type), text));
    }
    files
}

/// Writes `files`, redacted, as a tar.gz at `path` (through a temporary file, so a
/// failure leaves no partial archive).
///
/// # Errors
/// The archive cannot be written.
pub fn write(path: &Path, files: &[(String, String)], redactor: &Redactor) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(dir)?;
    {
        let encoder =
            flate2::write::GzEncoder::new(temporary.as_file(), flate2::Compression::default());
        let mut archive = tar::Builder::new(encoder);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        for (name, content) in files {
            let content = redactor.redact(content);
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o600);
            header.set_mtime(stamp);
            header.set_cksum();
            archive.append_data(
                &mut header,
                format!("sombrero-diagnose/{name}"),
                content.as_bytes(),
            )?;
        }
        archive.into_inner()?.finish()?;
    }
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_credential_shaped_text_are_redacted() {
        let redactor = Redactor::new(["s3cr3t-password".to_owned()]);
        let text = "login with s3cr3t-password\n\
                    TF_VAR_pve_api_token=root@pam!lab=0b6f1f4e-1d2c-4b8a-9a55-7e0f3d2c1b11\n\
                    Authorization: PVEAPIToken=root@pam!lab=abc\n\
                    {\"password\": \"hunter22\"}\n\
                    kept: root@pam!lab (the token id)\n";
        let redacted = redactor.redact(text);
        for secret in ["s3cr3t-password", "0b6f1f4e", "hunter22", "=abc"] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
        assert!(
            redacted.contains("kept: root@pam!lab (the token id)"),
            "{redacted}"
        );
    }

    #[test]
    fn the_archive_holds_every_file_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bundle.tar.gz");
        let files = vec![
            (
                "a.txt".to_owned(),
                "token root@pam!x=12345678-aaaa".to_owned(),
            ),
            ("guest/b.log".to_owned(), "plain".to_owned()),
        ];
        write(&path, &files, &Redactor::new(Vec::new())).expect("written");
        let archive = std::fs::File::open(&path).expect("open");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).expect("read");
            seen.push((entry.path().expect("path").display().to_string(), text));
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "sombrero-diagnose/a.txt");
        assert!(!seen[0].1.contains("12345678"), "{}", seen[0].1);
        assert_eq!(seen[1].1, "plain");
    }
}
