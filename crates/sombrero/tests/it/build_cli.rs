//! `sombrero build` and `sombrero templates` where no real guest is needed (issue 13):
//! state-only lab guests are refused before anything is created (exit 2, pointing at
//! `sombrero lab doctor`), and nothing is left behind; `[build]` values are checked with
//! the file and key named; `templates` lists only sombrero's golden templates.

use crate::sandbox::Sandbox;

#[test]
fn build_with_state_only_guests_says_it_needs_a_real_guest() {
    let outcome = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .run(&["build", "--lab"])
        .expect_code(2)
        .stderr_has("the lab's guests are state-only")
        .stderr_has("sombrero lab doctor");
    assert!(outcome.stdout.is_empty(), "{}", outcome.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn build_refuses_state_only_guests_of_a_served_lab_and_creates_nothing() {
    let lab = crate::sandbox::lab_at(1.0).await;
    let sandbox = crate::sandbox::pointed_at_lab(&lab);
    let outcome = tokio::task::spawn_blocking(move || {
        let vms = |sandbox: &Sandbox| {
            sandbox
                .run(&["api", "get", "/cluster/resources", "type=vm", "--json"])
                .expect_code(0)
                .stdout
        };
        let before = vms(&sandbox);
        let outcome = sandbox.run(&["build"]);
        (outcome, before, vms(&sandbox))
    })
    .await
    .expect("runs");
    let (outcome, before, after) = outcome;
    let outcome = outcome.expect_code(2).stderr_has("sombrero lab doctor");
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
    assert_eq!(before, after, "no builder was created");
}

#[test]
fn bad_build_settings_name_the_key() {
    let sandbox = Sandbox::replacing(
        "base_image = \"local:import/noble-server-cloudimg-amd64.qcow2\"",
        "base_image = \"local:iso/noble.iso\"\nbase_image_sha256 = \"abc\"",
    );
    sandbox
        .run(&["config", "show"])
        .expect_code(2)
        .stderr_has("build.base_image")
        .stderr_has("is not an import volume")
        .stderr_has("build.base_image_sha256")
        .stderr_has("is not a SHA-256");
}

#[test]
fn templates_lists_only_golden_templates() {
    // The in-process lab's template 1001 is a seeded stand-in (tags packer-built and
    // ubuntu-24-04, no `golden`): not one of build's.
    let outcome = Sandbox::new()
        .env("SOMBRERO_LAB_TIME_SCALE", "0.01")
        .run(&["templates", "--lab", "--json"])
        .expect_code(0);
    assert_eq!(outcome.stdout.trim(), "[]", "{}", outcome.stderr);
}
