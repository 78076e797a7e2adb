//! `destroy` through the binary on a terminal: it asks, and "n" changes nothing (its
//! fallback from a failed shutdown to stop is tested in sombrero-core's `deploy_destroy`).

/// Runs `sombrero ARGS` on a pseudo-terminal (`script`, util-linux) answering `answer`;
/// `None` when `script` is not installed.
fn on_a_terminal(
    sandbox: &crate::sandbox::Sandbox,
    args: &str,
    answer: &str,
) -> Option<(Option<i32>, String)> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    Command::new("script").arg("--version").output().ok()?;
    let sombrero = assert_cmd::cargo::cargo_bin!("sombrero");
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", sombrero.display()),
            "/dev/null",
        ])
        .current_dir(sandbox.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sandbox.path())
        .env("SOMBRERO_LAB_TIME_SCALE", "0.02")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(answer.as_bytes()).expect("answer");
    drop(stdin);
    let output = child.wait_with_output().expect("script ends");
    Some((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

#[test]
fn on_a_terminal_destroy_asks_and_no_changes_nothing() {
    let sandbox = crate::sandbox::Sandbox::new().env("SOMBRERO_LAB_TIME_SCALE", "0.02");
    sandbox
        .run(&["deploy", "--lab", "--env", "staging", "--yes"])
        .expect_code(0);
    let Some((code, transcript)) = on_a_terminal(&sandbox, "destroy --lab --env staging", "n\n")
    else {
        pve_lab::testing::skip(
            "on_a_terminal_destroy_asks_and_no_changes_nothing",
            "`script` (util-linux) is not installed; no pseudo-terminal",
        );
        return;
    };
    assert!(
        transcript
            .contains("Destroy VM 152 (jump-man, running) of environment staging on lloyd? [y/N]"),
        "{transcript}"
    );
    assert!(
        transcript.contains("cancelled; nothing was changed"),
        "{transcript}"
    );
    assert_eq!(code, Some(1), "{transcript}");
    let status = sandbox
        .run(&["status", "--lab", "--env", "staging", "--json"])
        .expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["exists"], true, "{status}");

    let (code, transcript) = on_a_terminal(&sandbox, "destroy --lab --env staging", "y\n")
        .expect("script was there a moment ago");
    assert_eq!(code, Some(0), "{transcript}");
    assert!(transcript.contains("Destroyed VM 152"), "{transcript}");
    let status = sandbox
        .run(&["status", "--lab", "--env", "staging", "--json"])
        .expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["exists"], false, "{status}");
}
