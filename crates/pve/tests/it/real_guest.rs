//! End to end with a real guest: the lab boots Debian under QEMU, configured by cloud-init
//! from the settings a deploy writes, and we SSH in through the loopback forward.
//!
//! Why: state-only guests prove the API calls, not that a VM comes up with the right
//! address, user, key and hostname. This runs wherever QEMU and the lab image exist
//! (`sudo sombrero lab image build`) and is skipped with a printed reason elsewhere.
//! It also measures the benchmark of issue 7: time from the deploy's first call to SSH
//! ready, divided by the guest's own boot (QEMU spawned to sshd answering).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pve::endpoints::CloneOptions;
use pve::types::config::ConfigUpdate;
use pve_lab::guest::{Guests, GuestsRequest, ImageStore, QemuGuests, QemuOptions, choose_backend};

use crate::common::{TEMPLATE, client, lab, node};

const VMID: u64 = 150;

/// Runs `ssh` as a deploy's user would: pinned host key, no prompts.
fn ssh(dir: &Path, port: u16, command: &str) -> std::io::Result<std::process::Output> {
    Command::new("ssh")
        .arg("-i")
        .arg(dir.join("id"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            dir.join("known_hosts").display()
        ))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"])
        .args(["-p", &port.to_string(), "ansible@127.0.0.1", command])
        .output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_guest_comes_up_as_deploy_configured_it() {
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::default_location();
    let choice = choose_backend(GuestsRequest::Qemu, &store, &work.path().join("probe")).await;
    let Some((qemu, image, accelerator)) = choice.qemu else {
        pve_lab::testing::skip(
            "a_real_guest_comes_up_as_deploy_configured_it",
            &format!(
                "{} (fix: {})",
                choice.reasons.join("; "),
                choice.fixes.join(" && ")
            ),
        );
        return;
    };
    if pve_lab::guest::probe::which("ssh").is_none() {
        pve_lab::testing::skip(
            "a_real_guest_comes_up_as_deploy_configured_it",
            "no OpenSSH client (apt-get install openssh-client)",
        );
        return;
    }
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "deploy@test", "-f"])
        .arg(work.path().join("id"))
        .status()
        .unwrap();
    assert!(keygen.success());
    let public_key = std::fs::read_to_string(work.path().join("id.pub")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(image.manifest()).unwrap()).unwrap();
    let guests = Arc::new(
        QemuGuests::new(QemuOptions {
            image,
            work_dir: work.path().join("guests"),
            accelerator,
            qemu,
        })
        .unwrap(),
    );
    let lab = lab(|options| options.node.set_guests(Guests::Qemu(Arc::clone(&guests)))).await;
    let client = client(&lab);
    let node = node(&lab);

    // What deploy does: clone, configure cloud-init, start, wait for the agent's address.
    let deploy_started = Instant::now();
    let clone = CloneOptions {
        newid: VMID,
        name: Some("jump-man".into()),
        ..CloneOptions::default()
    };
    client
        .clone_vm_and_wait(
            &node,
            TEMPLATE,
            &clone,
            Duration::from_secs(120),
            &pve::no_progress,
        )
        .await
        .unwrap();
    let update = ConfigUpdate::new()
        .set("ciuser", "ansible")
        .sshkeys([public_key.trim()])
        .ipconfig(0, &"ip=192.168.10.250/24,gw=192.168.10.1".parse().unwrap())
        .set("nameserver", "192.168.10.1");
    client.vm_config_set(&node, VMID, update).await.unwrap();
    client
        .start_vm_and_wait(&node, VMID, Duration::from_secs(120), &pve::no_progress)
        .await
        .unwrap();
    let vmid = u32::try_from(VMID).unwrap();
    let spawned = guests.spawned(vmid).expect("QEMU runs");
    let address = client
        .wait_agent_address(&node, VMID, Duration::from_secs(300), &pve::no_progress)
        .await
        .unwrap();
    assert_eq!(address.to_string(), "192.168.10.250");
    let agent_up = Instant::now();

    // The host key through the agent, pinned in known_hosts; the port from the extension.
    let forward = reqwest_free_forward(&lab, VMID).await;
    let host_key = loop {
        let read = client
            .agent_file_read(&node, VMID, "/etc/ssh/ssh_host_ed25519_key.pub")
            .await;
        match read {
            Ok(file) if file.content.starts_with("ssh-ed25519 ") => break file.content,
            _ if spawned.elapsed() < Duration::from_secs(300) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => panic!("no host key: {other:?}"),
        }
    };
    let key = host_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(
        work.path().join("known_hosts"),
        format!("[127.0.0.1]:{forward} {key}\n"),
    )
    .unwrap();
    let ssh_ready = loop {
        let output = ssh(work.path(), forward, "true").unwrap();
        if output.status.success() {
            break Instant::now();
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(300),
            "no SSH: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    let output = ssh(
        work.path(),
        forward,
        "hostname; ip -4 -o addr show dev eth0; ip route show default; cloud-init status --wait",
    )
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first().copied(), Some("jump-man"), "{text}");
    assert!(text.contains("inet 192.168.10.250/24"), "{text}");
    assert!(text.contains("default via 192.168.10.1 dev eth0"), "{text}");
    assert!(text.contains("status: done"), "{text}");

    // The agent endpoints talk to the real guest agent: ping, and exec + exec-status
    // running a command inside the guest (nothing faked in qemu mode).
    client.agent_ping(&node, VMID).await.unwrap();
    let pid = client
        .agent_exec(
            &node,
            VMID,
            &["/bin/sh", "-c", "cat /etc/hostname; exit 3"],
            None,
        )
        .await
        .unwrap();
    let status = loop {
        let status = client.agent_exec_status(&node, VMID, pid).await.unwrap();
        if status.exited {
            break status;
        }
        assert!(
            spawned.elapsed() < Duration::from_secs(300),
            "exec never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.exitcode, Some(3), "{status:?}");
    assert_eq!(status.out_data.as_deref(), Some("jump-man\n"), "{status:?}");

    // The golden-image packages are staged for an offline install: apt resolves every one
    // (and its dependencies) from the image's local repository alone. A simulation, so the
    // test stays cheap (a real install takes minutes under TCG).
    let staged = staged_packages();
    let output = ssh(
        work.path(),
        forward,
        &format!(
            "apt-get install -s -q -o Debug::NoLocking=1 {} && test -s {DOCKER_ARCHIVE} && echo archive-ok",
            staged.join(" ")
        ),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "offline install of {staged:?} does not resolve: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for package in &staged {
        assert!(
            text.contains(&format!("Inst {package} "))
                || text.contains(&format!("{package} is already")),
            "{package} is not installable offline: {text}"
        );
    }
    assert!(
        text.trim_end().ends_with("archive-ok"),
        "no Docker archive: {text}"
    );

    // uv and mise run offline when the build could stage them (the manifest says which).
    for (tool, command) in [
        ("uv", "uv --version"),
        ("mise", "MISE_OFFLINE=1 mise --version"),
    ] {
        if manifest[tool] != true {
            eprintln!("{tool}: absent in this image (the build could not fetch it)");
            continue;
        }
        let output = ssh(work.path(), forward, command).unwrap();
        let version = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !version.trim().is_empty(),
            "{tool}: {version}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let boot = ssh_ready.duration_since(spawned).as_secs_f64();
    let deploy = ssh_ready.duration_since(deploy_started).as_secs_f64();
    eprintln!(
        "real guest ({}): deploy start -> SSH ready {deploy:.1} s, QEMU spawned -> SSH ready \
         {boot:.1} s, ratio {:.3}; agent address after {:.1} s",
        accelerator.name(),
        deploy / boot,
        agent_up.duration_since(spawned).as_secs_f64()
    );

    // Shutdown by ACPI; the lab leaves no QEMU behind.
    client
        .shutdown_vm_and_wait(
            &node,
            VMID,
            Duration::from_secs(60),
            Duration::from_secs(120),
            &pve::no_progress,
        )
        .await
        .unwrap();
    assert!(!guests.is_running(vmid));

    // QEMU never outlives the lab: a running guest is gone once the lab is shut down.
    client
        .start_vm_and_wait(&node, VMID, Duration::from_secs(120), &pve::no_progress)
        .await
        .unwrap();
    let pid = guests.pid(vmid).expect("QEMU runs again");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    lab.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        assert!(Instant::now() < deadline, "QEMU {pid} outlived the lab");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!guests.is_running(vmid));
}

/// Where the image keeps the `docker load` archive.
const DOCKER_ARCHIVE: &str = "/var/local/sombrero/images/busybox.tar";

/// The packages the recipe stages (lab/packages-staged.txt, as compiled into the lab).
fn staged_packages() -> Vec<String> {
    let (_, text) = pve_lab::guest::image::RECIPE
        .iter()
        .find(|(name, _)| *name == "packages-staged.txt")
        .expect("the recipe lists staged packages");
    let packages: Vec<String> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        packages.iter().any(|package| package == "docker.io"),
        "{packages:?}"
    );
    packages
}

/// Whether `pid` is a zombie (killed, not yet reaped by its parent).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

/// The SSH forward's port, from `GET /lab/vms/{vmid}/ssh` over plain HTTP.
async fn reqwest_free_forward(lab: &pve_lab::LabHandle, vmid: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(lab.address()).await.unwrap();
    let request = format!(
        "GET /lab/vms/{vmid}/ssh HTTP/1.1\r\nHost: lab\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        lab.authorization()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(value["data"]["host"], "127.0.0.1", "{value}");
    u16::try_from(value["data"]["port"].as_u64().unwrap()).unwrap()
}
