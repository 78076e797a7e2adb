//! The soak through the binary: deploy/destroy cycles of `sombrero` against one lab under
//! issue 11's fault set, each command re-run until it converges (at most three runs).
//! What only the binary can show: every invocation is one history row, none is left
//! `running`, each failure carries its error, and nothing is left on the cluster. (The
//! 50-cycle figure is `sombrero-core`'s `soak.rs`, which drives the same code faster.)

use std::time::Duration;

use pve_lab::{FaultSpec, Lab, LabOptions};

use crate::sandbox::pointed_at_lab;

const FAULTS: &str = "http5xx=0.2,reset=0.05,lost=0.02,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=7";

#[tokio::test(flavor = "multi_thread")]
async fn cycles_through_the_binary_keep_the_history_whole() {
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    options.faults = FAULTS.parse::<FaultSpec>().expect("faults");
    let lab = Lab::start(options).await.expect("lab starts");
    let sandbox = pointed_at_lab(&lab)
        .env("SOMBRERO_AGENT_WAIT", "2")
        .timeout(Duration::from_secs(120));
    let mut invocations = 0;
    let mut first_time = 0;
    for cycle in 0..9 {
        let environment = ["production", "staging", "development"][cycle % 3];
        for command in ["deploy", "destroy"] {
            for run in 1..=3 {
                invocations += 1;
                let outcome = sandbox.run(&[command, "--env", environment, "--yes"]);
                if outcome.code == Some(0) {
                    if run == 1 {
                        first_time += 1;
                    }
                    break;
                }
                assert_eq!(
                    outcome.code,
                    Some(1),
                    "{command} {environment}: {}",
                    outcome.stderr
                );
                assert!(outcome.stderr.contains("error: "), "{}", outcome.stderr);
                assert!(
                    run < 3,
                    "{command} of {environment} did not converge in 3 runs:\n{}",
                    outcome.stderr
                );
            }
        }
    }
    let history = sandbox
        .run(&["history", "--json", "--limit", "1000"])
        .expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    let runs = history["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), invocations, "one row per invocation: {history}");
    for run in runs {
        match run["status"].as_str() {
            Some("success") => assert!(run["error"].is_null(), "{run}"),
            Some("failed") => assert!(
                run["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{run}"
            ),
            other => panic!("a run left {other:?}: {run}"),
        }
    }
    let client = pve::Client::builder(lab.url())
        .token(lab.token().parse().expect("token"))
        .build()
        .expect("client");
    let left: Vec<u64> = client
        .cluster_resources(Some(pve::ResourceType::Vm))
        .await
        .expect("resources")
        .iter()
        .filter(|resource| !resource.template)
        .filter_map(|resource| resource.vmid)
        .collect();
    assert!(left.is_empty(), "VMs left behind: {left:?}");
    let line = format!(
        "soak (binary): {first_time} of 18 commands converged on their first invocation, {invocations} invocations\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}
