//! Benchmark: the time to place a new VM with `node = "auto"` (issue 16, goal <= 50 ms
//! including the API reads) on a 3-node and a simulated 32-node cluster. Reproduce with
//! `cargo bench -p sombrero --bench placement`.
//!
//! What is timed is the whole decision as `plan` and `deploy` make it
//! (`placement::settle`): `GET /cluster/resources` (nodes, storages, every VM), the
//! template's config, and the rule over all of it. The lab runs in-process over plain
//! HTTP on 127.0.0.1, each cluster with four VMs per node besides template 1001 on the
//! shared storage, so `/cluster/resources` is as long as a real cluster's. The baseline,
//! measured in the same run against the same lab, is the cheapest request there is
//! (`GET /version`): the ratio says how many round trips' worth a decision costs. The
//! rule alone (`placement::choose`, no I/O) is timed on the 32-node cluster as well.
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

use std::time::{Duration, Instant};

use pve_lab::{Lab, LabOptions};
use sombrero_core::deploy::placement::{self, Cluster, Purpose, Request, TemplateSite};
use sombrero_core::deploy::{Desired, TemplateRequest};
use sombrero_core::settings::NodeChoice;

const ROUNDS: usize = 41;
const VMS_PER_NODE: u64 = 4;
const GOAL: Duration = Duration::from_millis(50);

#[path = "support/desired.rs"]
mod support;

fn median(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

struct Measured {
    nodes: usize,
    vms: usize,
    decision: (Duration, Duration, Duration),
    version: (Duration, Duration, Duration),
    chosen: String,
}

async fn measure(nodes: usize) -> Measured {
    let names: Vec<String> = std::iter::once("lloyd".to_owned())
        .chain((2..=nodes).map(|n| format!("pve{n}")))
        .collect();
    let mut options = LabOptions::for_tests().with_nodes(&names).unwrap();
    options.node.with_template = true;
    options.node.time_scale = 0.0;
    let lab = Lab::start(options).await.unwrap();
    let client = pve::Client::builder(lab.url())
        .token(lab.token().parse().unwrap())
        .build()
        .unwrap();
    // Four small VMs on every node, so the cluster's lists are realistic.
    let mut vmid = 2000;
    for name in &names {
        for _ in 0..VMS_PER_NODE {
            vmid += 1;
            let config = pve::ConfigUpdate::new()
                .set("name", format!("vm{vmid}"))
                .set("memory", "1024");
            client
                .create_vm_and_wait(
                    name,
                    vmid,
                    config,
                    Duration::from_secs(30),
                    &pve::no_progress,
                )
                .await
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut base: Desired = support::desired(&dir.path().join("outputs"));
    base.placement = NodeChoice::Auto;
    "shared".clone_into(&mut base.disk_storage);
    let request = TemplateRequest::Explicit {
        id: 1001,
        chosen_by: "bench".to_owned(),
    };
    let mut decisions = Vec::with_capacity(ROUNDS);
    let mut versions = Vec::with_capacity(ROUNDS);
    let mut chosen = String::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        client.version().await.unwrap();
        versions.push(started.elapsed());
        let mut desired = base.clone();
        let started = Instant::now();
        let placed = placement::settle(&client, &mut desired, &request, Purpose::Create)
            .await
            .unwrap();
        decisions.push(started.elapsed());
        chosen = placed.node;
    }
    let vms = Cluster::read(&client).await.unwrap().vms.len();
    Measured {
        nodes,
        vms,
        decision: median(decisions),
        version: median(versions),
        chosen,
    }
}

/// The rule alone on a synthetic 32-node cluster with 100 VMs per node.
fn rule_alone() -> (Duration, Duration, Duration) {
    let mut cluster = Cluster::default();
    for n in 0..32_u64 {
        let name = format!("pve{n}");
        cluster.nodes.push(placement::NodeFacts {
            name: name.clone(),
            online: n % 7 != 3,
            maxmem: 256 << 30,
            mem: (n * 5 + 40) << 30,
        });
        for (storage, shared) in [("local-lvm", false), ("shared", true)] {
            cluster.storages.push(placement::StorageFacts {
                node: name.clone(),
                storage: storage.to_owned(),
                shared,
                images: true,
                available: true,
            });
        }
        for v in 0..100 {
            cluster.vms.push(placement::VmFacts::new(
                10_000 + n * 100 + v,
                name.clone(),
                false,
            ));
        }
    }
    let site = TemplateSite {
        vmid: 1001,
        node: "pve0".to_owned(),
        storages: vec!["shared".to_owned()],
    };
    let request = Request {
        choice: &NodeChoice::Auto,
        memory_mib: 2048,
        template: Some(&site),
        disk_storage: Some("shared"),
    };
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let placed = placement::choose(&cluster, &request).unwrap();
        times.push(started.elapsed());
        assert_eq!(placed.node, "pve0");
    }
    median(times)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!("placement of a new VM with node = \"auto\" ({ROUNDS} rounds, median/best/max)");
    let mut over = false;
    for nodes in [3, 32] {
        let m = measure(nodes).await;
        let (median, best, max) = m.decision;
        let (v_median, ..) = m.version;
        println!(
            "{:>2} nodes, {:>3} VMs: decision {:.2} / {:.2} / {:.2} ms (chose {}); \
             GET /version {:.2} ms; ratio {:.1}x",
            m.nodes,
            m.vms,
            ms(median),
            ms(best),
            ms(max),
            m.chosen,
            ms(v_median),
            median.as_secs_f64() / v_median.as_secs_f64()
        );
        over |= median > GOAL;
    }
    let (median, best, max) = rule_alone();
    println!(
        "rule alone, 32 nodes, 3200 VMs: {:.3} / {:.3} / {:.3} ms",
        ms(median),
        ms(best),
        ms(max)
    );
    println!("goal: <= {} ms per decision", GOAL.as_millis());
    if over {
        println!("OVER THE GOAL");
        std::process::exit(1);
    }
}
