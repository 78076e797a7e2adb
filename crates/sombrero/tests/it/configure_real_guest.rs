//! Issue 12's tests on a real lab guest, run inside the real-guest journey of
//! `deploy_real_guest.rs` (one guest shared, so CI boots it once): `sombrero configure`
//! hardens the deployed VM, and the VM itself is asked whether it was: groups, `sshd -T`,
//! the nftables table, Docker with the firewall on (containers reach each other, a
//! published port answers), the health timer, the marker; `ansible-results.json` matches
//! what the guest reports; a second configure changes nothing; a task made to fail names
//! itself and its host and leaves a failed phase in the history; a guest without Python
//! and a host key other than the pinned one are refused with what to look at.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sombrero_core::history::{RunStatus, Store};

use crate::sandbox::Sandbox;

/// Runs `command` on the guest as the inventory says; returns stdout, asserting success.
fn on_guest(ssh: &dyn Fn(&str) -> Command, command: &str) -> String {
    let output = ssh(command).output().expect("ssh runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{command}` failed on the guest: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The environment a sandboxed configure needs beyond the sandbox's own: pyenv's shims
/// find their Python through `PYENV_ROOT` (the sandbox moves `HOME`).
pub fn with_python_tools(sandbox: Sandbox) -> Sandbox {
    match std::env::var("PYENV_ROOT") {
        Ok(root) => sandbox.env("PYENV_ROOT", &root),
        Err(_) => sandbox,
    }
}

/// Configure, check the guest, configure again, then make a task fail.
pub fn configure_and_check(sandbox: &Sandbox, outputs_dir: &Path, ssh: &dyn Fn(&str) -> Command) {
    let first = sandbox
        .run(&["configure", "--env", "development"])
        .expect_code(0)
        .stderr_has("[firewall] Write the firewall rules changed")
        .stderr_has("cloud-init on VM 151");
    assert!(first.stdout.contains("failed=0"), "{}", first.stdout);

    // The guest, asked directly.
    let groups = on_guest(ssh, "id -nG");
    for group in ["docker", "sudo"] {
        assert!(groups.split_whitespace().any(|g| g == group), "{groups}");
    }
    let sshd = on_guest(ssh, "sudo -n sshd -T");
    for line in [
        "passwordauthentication no",
        "permitrootlogin no",
        "maxauthtries 3",
        "allowusers ansible",
    ] {
        assert!(
            sshd.lines().any(|l| l == line),
            "sshd -T lacks {line:?}:\n{sshd}"
        );
    }
    let table = on_guest(ssh, "sudo -n nft list table inet sombrero");
    assert!(
        table.contains("hook input") && table.contains("policy drop"),
        "{table}"
    );
    // Docker's own tables are still there, untouched by sombrero's.
    let docker_nat = on_guest(ssh, "sudo -n nft list table ip nat");
    assert!(docker_nat.contains("DOCKER"), "{docker_nat}");
    // With the firewall on: a container reaches another by name, and a published port
    // answers on the VM's address (DNAT through Docker's rules).
    let web = on_guest(
        ssh,
        "set -e; sudo -n docker load -q -i /var/local/sombrero/images/busybox.tar >/dev/null; \
         sudo -n docker network create jm-test >/dev/null; \
         sudo -n docker run -d --name web --network jm-test -p 8080:80 busybox:lab \
           sh -c 'mkdir -p /www && echo hello-from-web > /www/index.html && httpd -f -p 80 -h /www' >/dev/null; \
         sleep 2; \
         sudo -n docker run --rm --network jm-test busybox:lab wget -qO- http://web/; \
         python3 -c \"import urllib.request; print(urllib.request.urlopen('http://192.168.10.251:8080/', timeout=10).read().decode().strip())\"; \
         sudo -n docker rm -f web >/dev/null; sudo -n docker network rm jm-test >/dev/null",
    );
    assert_eq!(
        web.lines().collect::<Vec<_>>(),
        ["hello-from-web", "hello-from-web"],
        "container to container, then the published port: {web}"
    );
    assert_eq!(
        on_guest(ssh, "systemctl is-active jump-man-health.timer").trim(),
        "active"
    );
    let marker = on_guest(ssh, "cat /etc/jump-man-deployment-complete");
    assert!(marker.contains("development"), "{marker}");
    assert!(marker.contains(env!("CARGO_PKG_VERSION")), "{marker}");

    // ansible-results.json says what the guest says.
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(outputs_dir.join("ansible-results.json")).expect("results"),
    )
    .expect("json");
    assert_eq!(results["deployment_status"], "success");
    assert_eq!(results["docker_status"], "running");
    let reported: Vec<&str> = results["user_groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let id_groups = on_guest(ssh, "id -nG ansible");
    assert_eq!(reported, id_groups.split_whitespace().collect::<Vec<_>>());
    let rules = on_guest(ssh, "sudo -n nft -j list table inet sombrero");
    let rules: Value = serde_json::from_str(&rules).expect("nft json");
    let counted = rules["nftables"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item.get("rule").is_some())
        .count();
    assert!(counted > 3, "{rules}");
    assert_eq!(results["firewall_rules"], counted);
    let services = results["configured_services"].to_string();
    for service in ["docker", "nftables", "ssh"] {
        assert!(services.contains(&format!("\"{service}\"")), "{services}");
    }
    assert!(Path::new(results["log_file"].as_str().expect("log")).is_file());

    // A second run changes nothing.
    let second = sandbox
        .run(&["--json", "configure", "--env", "development"])
        .expect_code(0);
    let again: Value = serde_json::from_str(&second.stdout).expect("json recap");
    assert_eq!(again["recap"]["changed"], 0, "{}", second.stderr);
    assert_eq!(again["recap"]["failed"], 0);

    // A task made to fail: a copy of the tree with one failing task in the marker role.
    let broken = sandbox.path().join("ansible-broken");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible"),
        &broken,
    );
    let tasks = broken.join("roles/marker/tasks/main.yml");
    let mut text = std::fs::read_to_string(&tasks).expect("marker tasks");
    text.push_str(
        "\n- name: Refuse on purpose (test)\n  ansible.builtin.fail:\n    msg: made to fail by the test\n",
    );
    std::fs::write(&tasks, text).expect("write");
    let failed = sandbox
        .command(&["configure", "--env", "development"])
        .env("SOMBRERO_ANSIBLE_DIR", &broken)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("task \"Refuse on purpose (test)\" failed on jump-man (role marker): made to fail by the test"),
        "{stderr}"
    );
    let store =
        Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("history");
    let detail = store.run_detail(None).expect("latest run");
    assert_eq!(detail.run.command, "configure");
    assert_eq!(detail.run.status, RunStatus::Failed);
    let phase = detail
        .phases
        .iter()
        .find(|phase| phase.name == "configure:marker")
        .expect("a marker phase");
    assert_eq!(phase.status, RunStatus::Failed, "{:?}", detail.phases);
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(outputs_dir.join("ansible-results.json")).expect("results"),
    )
    .expect("json");
    assert_eq!(results["deployment_status"], "failed");

    // No Python on the guest: said before Ansible starts, then put back.
    on_guest(ssh, "sudo -n mv /usr/bin/python3 /usr/bin/python3.away");
    let no_python = sandbox.run(&["configure", "--env", "development"]);
    on_guest(ssh, "sudo -n mv /usr/bin/python3.away /usr/bin/python3");
    no_python
        .expect_code(1)
        .stderr_has("VM 151 (jump-man) has no /usr/bin/python3");

    // A host key that is not the pinned one: refused, naming the known_hosts file.
    let known_hosts = outputs_dir.join("known_hosts");
    let pinned = std::fs::read_to_string(&known_hosts).expect("known_hosts");
    let other = sandbox.path().join("other-host-key");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .expect("ssh-keygen");
    assert!(keygen.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    let forged: Vec<String> = pinned
        .lines()
        .map(|line| {
            let host = line.split_whitespace().next().unwrap_or_default();
            format!("{host} {}", other_key.join(" "))
        })
        .collect();
    let forged = forged.join("\n") + "\n";
    std::fs::write(&known_hosts, forged).expect("forge");
    let mismatch = sandbox.run(&["configure", "--env", "development"]);
    std::fs::write(&known_hosts, pinned).expect("restore");
    mismatch
        .expect_code(1)
        .stderr_has("does not match the one pinned in")
        .stderr_has(&known_hosts.display().to_string());
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
