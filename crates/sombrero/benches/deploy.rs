//! Benchmark: how close a deploy gets to the time Proxmox itself is busy (issue 5, goal
//! wall / busy <= 1.05), and how many API requests it makes. Reproduce with
//! `cargo bench -p sombrero --bench deploy`.
//!
//! Why this ratio: a deploy mostly waits (clone, resize, start, guest agent boot). The
//! lab records how long each task really ran (`Node::task_durations`, milliseconds) and
//! knows its agent boot delay, so `wall / busy` is the client's own overhead:
//! polling latency, requests, and anything done serially that need not be. The lab runs
//! in-process over plain HTTP on 127.0.0.1; each round deploys a fresh environment from
//! `plan` to written outputs, then destroys it (not timed). The same numbers are then
//! computed for a client polling every fixed second (what Terraform's bpg provider does),
//! from the same critical path: each wait ends at the first whole second after the
//! server-side work is done.
#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

use std::time::{Duration, Instant};

use pve_lab::{Lab, LabOptions};
use sombrero_core::deploy::{self, DeployEvent, Timeouts};

const ROUNDS: usize = 3;

#[path = "support/desired.rs"]
mod support;
use support::desired;

/// When a fixed-interval poller notices work that ends `done` after dispatch.
fn fixed_poll(done: Duration, interval: Duration) -> Duration {
    let polls = (done.as_secs_f64() / interval.as_secs_f64()).floor() + 1.0;
    interval.mul_f64(polls)
}

struct Round {
    wall: Duration,
    requests: u64,
    writes: u64,
}

async fn round(time_scale: f64) -> (Round, Vec<Duration>) {
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    options.node.time_scale = time_scale;
    let lab = Lab::start(options).await.unwrap();
    let client = pve::Client::builder(lab.url())
        .token(lab.token().parse().unwrap())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desired = desired(&dir.path().join("outputs"));
    let request = deploy::TemplateRequest::Explicit {
        id: 1001,
        chosen_by: "bench".into(),
    };
    let events = |_: &DeployEvent| {};
    let started = Instant::now();
    let plan = deploy::plan(&client, &desired, &request).await.unwrap();
    deploy::apply(&client, &desired, plan, Timeouts::default(), &events)
        .await
        .unwrap();
    let wall = started.elapsed();
    let metrics = client.metrics();
    // The critical path on the server: every task of the deploy (clone, resize, start;
    // the config update is synchronous), then the agent's boot delay after the start.
    let mut busy_parts: Vec<Duration> = lab
        .node()
        .task_durations()
        .into_iter()
        .map(|(_, _, duration)| duration)
        .collect();
    busy_parts.push(lab.node().agent_boot_delay());
    lab.shutdown().await;
    (
        Round {
            wall,
            requests: metrics.total(),
            writes: metrics.writes(),
        },
        busy_parts,
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:<12} {:>9} {:>9} {:>7} {:>9} {:>7} {:>14} {:>12}",
        "time scale", "busy", "wall", "ratio", "requests", "writes", "1 s polling", "ratio 1 s"
    );
    for time_scale in [1.0, 0.1] {
        let mut walls = Vec::new();
        let mut last = None;
        for _ in 0..ROUNDS {
            let (measured, parts) = runtime.block_on(round(time_scale));
            walls.push(measured.wall);
            last = Some((measured, parts));
        }
        let (measured, parts) = last.unwrap();
        walls.sort();
        let median = walls[walls.len() / 2];
        let busy: Duration = parts.iter().sum();
        let fixed: Duration = parts
            .iter()
            .map(|part| fixed_poll(*part, Duration::from_secs(1)))
            .sum();
        let overhead = median.saturating_sub(busy);
        let fixed_wall = fixed + overhead;
        println!(
            "{:<12} {:>8.2}s {:>8.2}s {:>7.3} {:>9} {:>7} {:>13.2}s {:>12.3}",
            time_scale,
            busy.as_secs_f64(),
            median.as_secs_f64(),
            median.as_secs_f64() / busy.as_secs_f64(),
            measured.requests,
            measured.writes,
            fixed_wall.as_secs_f64(),
            fixed_wall.as_secs_f64() / busy.as_secs_f64(),
        );
    }
}
