//! Team-wide locks (issue 16, item 5): two operators on different machines (here: two
//! project directories with separate homes, so their machine-local lock files never
//! meet) share a `PostgreSQL` history; a second writer of the same environment is
//! refused naming the first (operator, host, command, since), and when the first is
//! killed its lock is released by the server and taken over, with a warning, by the next
//! run: no manual clean-up.

use std::time::{Duration, Instant};

use crate::postgres::{fresh_database, query, server};
use crate::sandbox::{Outcome, Sandbox, lab_at, pointed_at_lab};

/// Waits until a writer holds a lock in the database.
fn wait_for_a_holder(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let held = query(
            url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'sombrero_locks'",
        )[0][0]
            .as_deref()
            == Some("1")
            && query(url, "SELECT count(*) FROM sombrero_locks")[0][0].as_deref() != Some("0");
        if held {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no writer took a lock within 30 s");
}

fn machine(lab: &pve_lab::LabHandle, url: &str) -> Sandbox {
    pointed_at_lab(lab).env("SOMBRERO_HISTORY", url)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_machines_contend_for_one_environment_and_a_killed_holder_is_released() {
    let Some(server) = server("two_machines_contend_for_one_environment") else {
        return;
    };
    let url = fresh_database(&server, "locks");
    // Slow tasks: the first deploy must still be running when it is killed.
    let lab = lab_at(2.0).await;
    let first = machine(&lab, &url);
    let second = machine(&lab, &url);
    let mut deploying = first.spawn(&["deploy", "--yes"]);
    let pid = deploying.id();
    wait_for_a_holder(&url);

    let refused = second.run(&["destroy", "--yes"]).expect_code(1);
    assert!(
        refused.stderr.contains(&format!(
            "error: environment production is locked by sombrero deploy (pid {pid} on host "
        )),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(" since 20"), "{}", refused.stderr);
    second
        .run(&["up", "--yes"])
        .expect_code(1)
        .stderr_has("is locked by sombrero deploy");
    // Another environment of the same cluster is not blocked.
    let staging = second.run(&["plan", "--env", "staging"]);
    assert!(!staging.stderr.contains("locked by"), "{}", staging.stderr);

    // The holder dies without releasing: the server ends its session, and so its lock.
    assert!(
        deploying.try_wait().expect("wait").is_none(),
        "the first deploy is still running"
    );
    deploying.kill().expect("kill the first deploy");
    let _ = deploying.wait();
    // The next run gets the lock at once and says whose it took over. (What it finds of
    // the killed deploy's half-made VM is the reliability issue's business, not the
    // lock's: it may fail on it.)
    let taken: Outcome = second.run(&["deploy", "--yes"]);
    assert!(!taken.stderr.contains("is locked by"), "{}", taken.stderr);
    assert!(
        taken.stderr.contains(&format!(
            "warning: took over the lock of environment production from sombrero deploy (pid {pid}"
        )),
        "{}",
        taken.stderr
    );
    // Released cleanly when that run ended: no holder is left.
    assert_eq!(
        query(&url, "SELECT count(*) FROM sombrero_locks")[0][0].as_deref(),
        Some("0")
    );
    // Both machines' runs are in the team's history.
    let history = second.run(&["history", "--json"]).expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let commands: Vec<&str> = history["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["command"].as_str().unwrap())
        .collect();
    assert!(
        commands
            .iter()
            .filter(|command| **command == "deploy")
            .count()
            >= 2,
        "{commands:?}"
    );
}
