//! Issue 13's tests on real lab guests, run inside the real-guest journey of
//! `deploy_real_guest.rs` (one lab, one built template shared, so CI builds once):
//! `sombrero build` makes template 1001 from the lab's cached cloud image; it is a
//! template with the tags, hardware and metadata; `packer-outputs.json` carries real
//! values (the Docker version is the guest's); the history has the build's phases and the
//! checklist's "Packer Build" line; a second build changes nothing. After the deploy from
//! it, Docker answers over SSH without stage 3. At the end, a provisioning failure leaves
//! a stopped builder named in the error, which `build --replace` removes while it moves
//! the current template aside (kept, tagged superseded).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sombrero_core::history::{RunStatus, Store};

use crate::sandbox::Sandbox;

const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// `sombrero api get PATH --json`'s data.
fn api_get(sandbox: &Sandbox, path: &str) -> Value {
    let outcome = sandbox.run(&["api", "get", path, "--json"]).expect_code(0);
    serde_json::from_str(&outcome.stdout).unwrap_or_else(|error| {
        panic!("`api get {path}` is not JSON ({error}): {}", outcome.stdout)
    })
}

fn tags(config: &Value) -> Vec<String> {
    config["tags"]
        .as_str()
        .unwrap_or_default()
        .split([';', ','])
        .map(str::to_owned)
        .collect()
}

/// Builds template 1001, checks it, its outputs and history, and builds again. Returns
/// `packer-outputs.json` and the build's wall time in seconds.
pub fn build_and_check(sandbox: &Sandbox) -> (Value, f64) {
    let started = Instant::now();
    let built = sandbox
        .run_for(&["build", "--env", "development"], BUILD_TIMEOUT)
        .expect_code(0)
        .stderr_has("the lab's cached guest image local:import/debian-12-genericcloud-amd64.qcow2")
        .stderr_has("[golden_base] Install the base packages changed")
        .stderr_has("[docker] Install the Docker packages changed")
        .stderr_has("Remove the SSH host keys (each clone makes its own) changed");
    let build_seconds = started.elapsed().as_secs_f64();
    assert!(
        built.stdout.contains("built template 1001"),
        "{}",
        built.stdout
    );

    let outputs: Value = serde_json::from_str(
        &std::fs::read_to_string(
            sandbox
                .path()
                .join("deployments/outputs/packer-outputs.json"),
        )
        .expect("packer-outputs.json"),
    )
    .expect("json");
    assert_eq!(outputs["template_id"], "1001");
    assert_eq!(outputs["template_name"], "ubuntu-server-numbat-docker");
    assert_eq!(outputs["packer_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(outputs["builder"], "sombrero");
    assert!(
        outputs["build_time"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{outputs}"
    );
    let docker = outputs["docker_version"]
        .as_str()
        .expect("a Docker version")
        .to_owned();
    assert!(
        docker.chars().next().is_some_and(|c| c.is_ascii_digit()),
        "{docker}"
    );

    let config = api_get(sandbox, "/nodes/lloyd/qemu/1001/config");
    assert_eq!(config["template"], 1, "{config}");
    assert_eq!(config["name"], "ubuntu-server-numbat-docker");
    let found = tags(&config);
    for tag in ["sombrero", "golden", "packer-built", "debian-12"] {
        assert!(found.iter().any(|t| t == tag), "{tag} in {found:?}");
    }
    let stamp = outputs["build"].as_str().expect("build stamp");
    assert!(found.contains(&format!("build-{stamp}")), "{found:?}");
    assert_eq!(config["bios"], "ovmf");
    assert!(
        config["efidisk0"]
            .as_str()
            .unwrap_or_default()
            .contains("efitype=4m")
    );
    assert_eq!(config["scsihw"], "virtio-scsi-pci");
    assert!(
        config["ide2"]
            .as_str()
            .unwrap_or_default()
            .contains("cloudinit")
    );
    assert!(
        config["scsi0"]
            .as_str()
            .unwrap_or_default()
            .contains("cache=writeback")
    );
    assert!(
        config.get("sshkeys").is_none(),
        "no builder key in the template: {config}"
    );
    let description = config["description"].as_str().unwrap_or_default();
    for line in [
        format!("docker-version: {docker}"),
        format!("sombrero-version: {}", env!("CARGO_PKG_VERSION")),
        "base-image: local:import/debian-12-genericcloud-amd64.qcow2".to_owned(),
    ] {
        assert!(description.contains(&line), "{line} in {description}");
    }

    let store =
        Store::open_existing(sandbox.path().join("deployments/sombrero.db")).expect("history");
    let detail = store.run_detail(None).expect("latest run");
    assert_eq!(detail.run.command, "build");
    assert_eq!(detail.run.status, RunStatus::Success);
    for phase in [
        "image",
        "create",
        "boot",
        "provision",
        "generalize",
        "template",
    ] {
        let name = format!("build:{phase}");
        let found = detail.phases.iter().find(|p| p.name == name);
        assert!(
            found.is_some_and(|p| p.status == RunStatus::Success),
            "{name} in {:?}",
            detail.phases
        );
    }
    let checklist = sandbox.run(&["checklist"]).expect_code(0);
    let record =
        std::fs::read_to_string(sandbox.path().join(checklist.stdout.trim())).expect("checklist");
    let line = record
        .lines()
        .find(|line| line.contains("**Packer Build**"))
        .expect("a Packer Build line");
    assert!(!line.contains("N/A"), "{line}");

    // Nothing to do the second time: no builder, no boot.
    let again = sandbox
        .run(&["build", "--env", "development"])
        .expect_code(0);
    assert!(
        again.stdout.contains("is current: nothing to do"),
        "{}",
        again.stdout
    );
    assert!(!again.stderr.contains("builder VM"), "{}", again.stderr);
    (outputs, build_seconds)
}

/// On the VM deployed from the built template, before stage 3: Docker answers.
pub fn check_deployed_before_configure(outputs: &Value, ssh: &dyn Fn(&str) -> Command) {
    let output = ssh("docker --version; cat /etc/sombrero-golden-image; sudo -n sshd -T")
        .output()
        .expect("ssh runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docker = outputs["docker_version"].as_str().unwrap_or_default();
    assert!(text.starts_with("Docker version "), "{text}");
    assert!(text.contains(docker), "{docker} in {text}");
    assert!(text.contains("builder=sombrero"), "{text}");
    // The template's sshd baseline holds before stage 3 hardens anything.
    for line in [
        "passwordauthentication no",
        "permitrootlogin no",
        "clientaliveinterval 300",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} before configure: {text}"
        );
    }
}

/// golden-image.yml run again (plain `ansible-playbook`, the deployed clone as its
/// builder, the pinned `known_hosts`) changes nothing: it is idempotent, and a clone of
/// the template is what it built.
pub fn golden_image_changes_nothing_the_second_time(outputs_dir: &Path) {
    let outputs: Value = serde_json::from_str(
        &std::fs::read_to_string(outputs_dir.join("terraform-outputs.json")).expect("outputs"),
    )
    .expect("json");
    let inventory = &outputs["ansible_inventory"]["all"];
    let mut host = inventory["hosts"]["jump-man"].clone();
    for (name, value) in inventory["vars"].as_object().expect("vars") {
        host[name] = value.clone();
    }
    let file = outputs_dir.join("golden-builders.json");
    let builders = serde_json::json!({
        "all": {"children": {"golden_builders": {"hosts": {"jump-man": host}}}}
    });
    std::fs::write(&file, builders.to_string()).expect("write inventory");
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible");
    let output = Command::new("ansible-playbook")
        .arg("-i")
        .arg(&file)
        .arg(tree.join("playbooks/golden-image.yml"))
        .args(["-e", "golden_image_user=ansible", "-e"])
        .arg(format!("sombrero_version={}", env!("CARGO_PKG_VERSION")))
        .current_dir(&tree)
        .env("ANSIBLE_CONFIG", tree.join("ansible.cfg"))
        .output()
        .expect("ansible-playbook runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let recap = text
        .lines()
        .find(|line| line.starts_with("jump-man ") && line.contains("changed="))
        .expect("a recap line");
    assert!(
        recap.contains("changed=0") && recap.contains("failed=0"),
        "{text}"
    );
}

/// After configure: the golden image's own settings survived and agree with stage 3.
pub fn check_golden_settings(ssh: &dyn Fn(&str) -> Command) {
    let output = ssh("sudo -n sshd -T; apt-config dump | grep -i origins; date +%Z")
        .output()
        .expect("ssh runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for line in [
        "clientaliveinterval 300",
        "x11forwarding no",
        "passwordauthentication no",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in sshd -T");
    }
    let origins: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Origins-Pattern::"))
        .collect();
    assert!(!origins.is_empty(), "{text}");
    assert!(
        origins.iter().all(|l| l.contains("security")),
        "{origins:?}"
    );
    assert_eq!(text.lines().last(), Some("UTC"), "{text}");
}

/// A copy of the repository's tree whose golden-image.yml is `playbook`.
fn tree_with(sandbox: &Sandbox, name: &str, playbook: &str) -> String {
    let dir = sandbox.path().join(name);
    crate::configure_real_guest::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ansible"),
        &dir,
    );
    std::fs::write(dir.join("playbooks/golden-image.yml"), playbook).expect("write");
    dir.display().to_string()
}

/// A provisioning failure keeps the builder; `--replace` removes it and keeps the old
/// template under another id.
pub fn failure_then_replace(sandbox: &Sandbox) {
    let failing = tree_with(
        sandbox,
        "failing-tree",
        "- name: Fail on purpose\n  hosts: golden_builders\n  gather_facts: false\n  tasks:\n    \
         - name: Refuse on purpose (test)\n      ansible.builtin.fail:\n        msg: made to fail by the test\n",
    );
    let failed = sandbox
        .command(&["build", "--env", "development", "--template-id", "1005"])
        .env("SOMBRERO_ANSIBLE_DIR", &failing)
        .timeout(BUILD_TIMEOUT)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "task \"Refuse on purpose (test)\" on builder VM 1005: made to fail by the test"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("the next `sombrero build` removes it"),
        "{stderr}"
    );
    let status = api_get(sandbox, "/nodes/lloyd/qemu/1005/status/current");
    assert_eq!(status["status"], "stopped", "kept, stopped: {status}");
    let config = api_get(sandbox, "/nodes/lloyd/qemu/1005/config");
    assert!(
        tags(&config).iter().any(|t| t == "sombrero-builder"),
        "{config}"
    );

    let trivial = tree_with(
        sandbox,
        "trivial-tree",
        "- name: Provision nothing\n  hosts: golden_builders\n  gather_facts: false\n  tasks:\n    \
         - name: Say so\n      ansible.builtin.debug:\n        msg: trivial golden image (test)\n",
    );
    let old_build = api_get(sandbox, "/nodes/lloyd/qemu/1001/config")["description"].clone();
    let replaced = sandbox
        .command(&["build", "--env", "development", "--replace", "--json"])
        .env("SOMBRERO_ANSIBLE_DIR", &trivial)
        .timeout(BUILD_TIMEOUT)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&replaced.stderr);
    assert_eq!(replaced.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("removing builder VM 1005"), "{stderr}");
    let report: Value = serde_json::from_slice(&replaced.stdout).expect("json report");
    let superseded = report["superseded"]
        .as_u64()
        .expect("the old template's new id");
    let moved = api_get(sandbox, &format!("/nodes/lloyd/qemu/{superseded}/config"));
    assert_eq!(moved["template"], 1);
    assert!(tags(&moved).iter().any(|t| t == "superseded"), "{moved}");
    assert_eq!(
        moved["description"], old_build,
        "the old build's metadata moved with it"
    );
    let current = api_get(sandbox, "/nodes/lloyd/qemu/1001/config");
    assert_ne!(current["description"], old_build);
    let builder = api_get(sandbox, "/cluster/resources");
    let leftovers: Vec<&Value> = builder
        .as_array()
        .into_iter()
        .flatten()
        .filter(|vm| {
            vm["tags"]
                .as_str()
                .unwrap_or_default()
                .contains("sombrero-builder")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let listed = sandbox.run(&["templates", "--json"]).expect_code(0);
    let listed: Value = serde_json::from_str(&listed.stdout).expect("json");
    let ids: Vec<u64> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_u64())
        .collect();
    assert!(ids.contains(&1001) && ids.contains(&superseded), "{listed}");
    let current = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["id"] == 1001)
        .expect("1001");
    assert_eq!(current["environments"], serde_json::json!(["development"]));
}
