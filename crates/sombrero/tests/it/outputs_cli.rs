//! `sombrero outputs` (issue 15, item 6): every stage's file of the environment together,
//! the missing ones named with the command that writes them, and `--stage` for one file
//! whole (with the runbook's tool names as aliases).

use serde_json::Value;

use crate::configure_cli::outputs_to_a_closed_port;
use crate::sandbox::Sandbox;

#[test]
fn outputs_show_every_stage_and_one_stage_on_request() {
    let sandbox = Sandbox::new();
    outputs_to_a_closed_port(&sandbox);
    let all = sandbox
        .run(&["outputs", "--env", "development", "--json"])
        .expect_code(0);
    let all: Value = serde_json::from_str(&all.stdout).expect("json");
    assert_eq!(all["deploy"]["vm_ip"], "192.168.10.251");
    for stage in ["build", "configure", "verify"] {
        assert!(all[stage].is_null(), "{stage}: {all}");
    }
    let text = sandbox
        .run(&["outputs", "--env", "development"])
        .expect_code(0)
        .stdout;
    assert!(text.contains("stage 2, deploy ("), "{text}");
    assert!(
        text.contains("  vm_ip              192.168.10.251"),
        "{text}"
    );
    assert!(
        text.contains("not written yet: `sombrero configure --env development`"),
        "{text}"
    );
    let one = sandbox
        .run(&[
            "outputs",
            "--env",
            "development",
            "--stage",
            "terraform",
            "--json",
        ])
        .expect_code(0);
    let one: Value = serde_json::from_str(&one.stdout).expect("json");
    assert_eq!(one["vm_id"], "151");
    sandbox
        .run(&["outputs", "--env", "development", "--stage", "configure"])
        .expect_code(2)
        .stderr_has("ansible-results.json does not exist")
        .stderr_has("sombrero configure --env development");
    sandbox
        .run(&["outputs", "--env", "development", "--stage", "packer"])
        .expect_code(2)
        .stderr_has("sombrero build --env development");
}
