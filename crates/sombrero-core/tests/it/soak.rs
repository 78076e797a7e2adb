//! Soak: deploy/destroy cycles across the three environments on one lab under the
//! adversarial fault set of issue 11 (5xx answers, resets, lost answers, lock timeouts,
//! failed tasks, slow tasks, silent agents). Every cycle must end converged (after at most
//! two re-runs), with no duplicate, orphaned or locked VM; the first-invocation
//! convergence rate is printed (docs/reliability.md records it).

use std::time::Duration;

use pve_lab::{FaultSpec, Lab, LabOptions};
use sombrero_core::deploy::{self, DeployEvent, Timeouts};

use crate::deploy::{desired, newest};

const FAULTS: &str = "http5xx=0.2,reset=0.05,lost=0.02,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=";

fn timeouts() -> Timeouts {
    Timeouts {
        agent: Duration::from_secs(2),
        ..Timeouts::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_cycles_under_faults_converge_and_leave_nothing_behind() {
    let cycles: usize = std::env::var("SOMBRERO_SOAK_CYCLES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(50);
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    options.faults = format!("{FAULTS}42").parse::<FaultSpec>().unwrap();
    let lab = Lab::start(options).await.unwrap();
    // The retry policy of `sombrero`, without its delays (SOMBRERO_RETRY_DELAY_MS=0).
    let client = pve::Client::builder(lab.url())
        .token(lab.token().parse().unwrap())
        .retry(pve::RetryPolicy::default().without_delays())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let environments = ["production", "staging", "development"];
    let (mut first_tries, mut converged_first) = (0_u32, 0_u32);
    let mut failures = Vec::new();
    let events = |_: &DeployEvent| {};
    for cycle in 0..cycles {
        let environment = environments[cycle % environments.len()];
        let desired = desired(environment, dir.path());
        for (step, work) in [("deploy", true), ("destroy", false)] {
            let mut attempt = 0;
            loop {
                attempt += 1;
                // One invocation, as `sombrero deploy` / `destroy` runs it.
                let result = if work {
                    match deploy::plan(&client, &desired, &newest()).await {
                        Ok(plan) => deploy::converge::deploy(
                            &client,
                            &desired,
                            &newest(),
                            plan,
                            timeouts(),
                            &events,
                        )
                        .await
                        .map(|_| ()),
                        Err(error) => Err(error),
                    }
                } else {
                    deploy::converge::destroy_converged(&client, &desired, timeouts(), &events)
                        .await
                        .map(|_| ())
                };
                if attempt == 1 {
                    first_tries += 1;
                }
                match result {
                    Ok(()) => {
                        if attempt == 1 {
                            converged_first += 1;
                        }
                        break;
                    }
                    Err(error) => {
                        failures.push(format!(
                            "cycle {cycle} {step} {environment} attempt {attempt}: {error}"
                        ));
                        assert!(
                            attempt < 3,
                            "{step} of {environment} did not converge in 3 runs:\n{}",
                            failures.join("\n")
                        );
                    }
                }
            }
        }
    }
    // Nothing left behind: no VM but the template, none locked.
    let resources = client
        .cluster_resources(Some(pve::ResourceType::Vm))
        .await
        .unwrap();
    let left: Vec<u64> = resources
        .iter()
        .filter(|resource| !resource.template)
        .filter_map(|resource| resource.vmid)
        .collect();
    assert!(left.is_empty(), "VMs left behind: {left:?}");
    let rate = f64::from(converged_first) / f64::from(first_tries);
    let line = format!(
        "soak: {cycles} cycles, {converged_first}/{first_tries} runs converged on their first invocation ({:.1}%)\n{}",
        rate * 100.0,
        failures.join("\n")
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    assert!(rate >= 0.95, "{line}");
}
