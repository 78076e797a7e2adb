//! Stage 2's clear errors through the binary: each is a message naming what and where, a
//! `hint:` line with the fix and exit code 1 (the same errors as values are tested in
//! sombrero-core's `deploy_errors`).

/// Through the binary (`--lab`): each error is a message naming what and where, a `hint:`
/// line with the fix, exit code 1, and nothing on stdout.
#[test]
fn the_binary_prints_message_and_hint_and_exits_one() {
    use crate::sandbox::Sandbox;
    use std::time::Duration;
    let template = Sandbox::new().env("SOMBRERO_LAB_TIME_SCALE", "0.02");
    let outcome = template
        .run(&["plan", "--lab", "--env", "staging", "--template", "4242"])
        .expect_code(1)
        .stderr_has("template 4242 does not exist on node lloyd")
        .stderr_has("hint: build one with `sombrero build`");
    assert!(outcome.stdout.is_empty(), "{}", outcome.stdout);
    // A broken stage-1 handoff is bad input naming the file, not a silent fallback (read
    // when no template id is set on purpose: decision 062).
    let discovering =
        Sandbox::replacing("template_id = 1001\n", "").env("SOMBRERO_LAB_TIME_SCALE", "0.02");
    std::fs::create_dir_all(discovering.path().join("deployments/outputs")).unwrap();
    discovering.write(
        "deployments/outputs/packer-outputs.json",
        r#"{"template_id": "latest"}"#,
    );
    discovering
        .run(&["plan", "--lab", "--env", "staging"])
        .expect_code(2)
        .stderr_has("packer-outputs.json is not a usable stage-1 handoff")
        .stderr_has("hint: fix or delete it");
    Sandbox::replacing("bridge = \"vmbr0\"", "bridge = \"vmbr9\"")
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        .run(&["plan", "--lab", "--env", "staging"])
        .expect_code(1)
        .stderr_has("bridge vmbr9 does not exist on node lloyd")
        .stderr_has("hint: set bridge in sombrero.toml to one of: vmbr0");
    Sandbox::replacing(
        "disk_storage = \"local-lvm\"",
        "disk_storage = \"ceph-pool\"",
    )
    .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
    .run(&["plan", "--lab", "--env", "staging"])
    .expect_code(1)
    .stderr_has("storage ceph-pool")
    .stderr_has("hint: set disk_storage in sombrero.toml to one of:");
    // Production deployed; then the configuration moves production to another address
    // and gives staging production's old one, which VM 150 still has.
    let clash = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        .timeout(Duration::from_secs(120));
    clash
        .run(&["deploy", "--lab", "--env", "production", "--yes"])
        .expect_code(0);
    let moved = crate::sandbox::SHIPPED_CONFIG
        .replacen(
            "ip = \"192.168.10.250/24\"",
            "ip = \"192.168.10.249/24\"",
            1,
        )
        .replacen(
            "ip = \"192.168.10.252/24\"",
            "ip = \"192.168.10.250/24\"",
            1,
        );
    clash.write("sombrero.toml", &moved);
    clash
        .run(&["plan", "--lab", "--env", "staging"])
        .expect_code(1)
        .stderr_has("address 192.168.10.250 is already used by VM 150")
        .stderr_has("hint: give this environment another ip");
}

/// Through the binary against `lab serve` (HTTPS): a pinned fingerprint that is not the
/// server's is exit 1 with the TLS message and the hint, and nothing is sent past TLS.
#[test]
fn the_binary_names_a_tls_fingerprint_mismatch() {
    use crate::lab_serve::{serve, terminate};
    use crate::sandbox::{SSH_KEY, Sandbox};
    let (child, ready) = serve(&["--with-template"]);
    let url = ready["url"].as_str().expect("url");
    assert!(url.starts_with("https://"), "{url}");
    let wrong = vec!["00"; 32].join(":");
    assert_ne!(ready["fingerprint"].as_str(), Some(wrong.as_str()));
    Sandbox::new()
        .env("TF_VAR_pve_api_url", url)
        .env(
            "TF_VAR_pve_api_token",
            ready["token"].as_str().expect("token"),
        )
        .env("SOMBRERO_PVE_FINGERPRINT", &wrong)
        .env("TF_VAR_ci_ssh_key", SSH_KEY)
        .run(&["plan", "--env", "staging"])
        .expect_code(1)
        .stderr_has("error: no secure connection to https://127.0.0.1:")
        .stderr_has(&format!(
            "fingerprint {} is not the pinned {wrong}",
            ready["fingerprint"].as_str().expect("fingerprint")
        ))
        .stderr_has("hint: the node's certificate changed, or this is not your node: compare the pinned fingerprint");
    terminate(child);
}
