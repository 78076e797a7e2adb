//! Load benchmark of the lab (issue 3, item 12): requests per second over loopback with
//! 100 VMs, and the process's peak memory.
//!
//! Why a plain binary (`harness = false`) and not criterion: the question is a throughput
//! number under concurrency against a running server, not a micro-benchmark of a function.
//! The baseline is `GET /version` (authentication, routing, validation, envelope, nearly
//! no node work), measured in the same run, so the ratio says what the node's state
//! costs on the realistic mix independently of how fast this machine is today.
//!
//! Run: `cargo bench -p pve-lab --bench load` (optional args: REQUESTS CONCURRENCY).
//! Client and server share the process and its 2 cores, so the numbers are conservative;
//! the RSS is of the whole process (lab + client).

#![expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pve_lab::{Lab, LabOptions};

const VMS: u32 = 100;
const FIRST_VMID: u32 = 200;

/// Peak resident set size of this process in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
        })
        .unwrap_or(0)
}

/// Sends `total` GETs over `concurrency` connections; `path_for(i)` picks the i-th path.
/// Returns requests per second; panics if any answer is not 200.
async fn drive(
    client: &reqwest::Client,
    base: &str,
    authorization: &str,
    total: usize,
    concurrency: usize,
    path_for: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let base = base.to_owned();
        let authorization = authorization.to_owned();
        let next = Arc::clone(&next);
        let path_for = Arc::clone(&path_for);
        workers.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let response = client
                    .get(format!("{base}{}", path_for(index)))
                    .header("Authorization", &authorization)
                    .send()
                    .await
                    .expect("the lab answers");
                let status = response.status();
                let body = response.bytes().await.expect("a body");
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^52"
    )]
    let rate = total as f64 / started.elapsed().as_secs_f64();
    rate
}

async fn create_vms(client: &reqwest::Client, base: &str, authorization: &str) {
    for vmid in FIRST_VMID..FIRST_VMID + VMS {
        let form = [
            ("vmid", vmid.to_string()),
            ("name", format!("bench-{vmid}")),
            ("memory", "2048".to_owned()),
            ("cores", "2".to_owned()),
            ("net0", "virtio,bridge=vmbr0".to_owned()),
            ("scsi0", "local-lvm:8".to_owned()),
            (
                "ipconfig0",
                format!("ip=192.168.10.{}/24,gw=192.168.10.1", vmid - 150),
            ),
        ];
        let response = client
            .post(format!("{base}/nodes/lloyd/qemu"))
            .header("Authorization", authorization)
            .form(&form)
            .send()
            .await
            .expect("create answers");
        assert_eq!(
            response.status(),
            200,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    // Creation tasks run in the background; wait until every VM has a config without a lock.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client
            .get(format!("{base}/cluster/resources?type=vm"))
            .header("Authorization", authorization)
            .send()
            .await
            .expect("resources answer");
        let body: serde_json::Value = response.json().await.expect("JSON");
        let ready = body["data"].as_array().map_or(0, |vms| {
            vms.iter().filter(|vm| vm.get("lock").is_none()).count()
        });
        if ready >= usize::try_from(VMS).unwrap_or(usize::MAX) {
            break;
        }
        assert!(Instant::now() < deadline, "VMs not ready: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests per second of the baseline and of the mix against one lab.
struct Rates {
    baseline: f64,
    mixed: f64,
}

async fn measure(tls: bool, total: usize, concurrency: usize) -> Rates {
    let mut options = LabOptions::for_tests();
    options.tls = tls;
    let lab = Lab::start(options).await.expect("the lab starts");
    // The lab's certificate is self-signed; pinning is tested elsewhere (tests/it/tls.rs).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let base = lab.url().to_owned();
    let authorization = lab.authorization();
    create_vms(&client, &base, &authorization).await;

    let version: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(|_| "/version".to_owned());
    // Warm up connections and caches.
    drive(
        &client,
        &base,
        &authorization,
        1_000,
        concurrency,
        Arc::clone(&version),
    )
    .await;
    let baseline = drive(&client, &base, &authorization, total, concurrency, version).await;
    let mix: Arc<dyn Fn(usize) -> String + Send + Sync> = Arc::new(|index| {
        let vmid = FIRST_VMID + u32::try_from(index % 100).unwrap_or(0);
        match index % 5 {
            0 => format!("/nodes/lloyd/qemu/{vmid}/config"),
            1 => format!("/nodes/lloyd/qemu/{vmid}/status/current"),
            2 => "/nodes/lloyd/qemu".to_owned(),
            3 => "/cluster/resources".to_owned(),
            _ => "/nodes/lloyd/tasks".to_owned(),
        }
    });
    let mixed = drive(&client, &base, &authorization, total, concurrency, mix).await;
    lab.shutdown().await;
    Rates { baseline, mixed }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut arguments = std::env::args()
        .skip(1)
        .filter(|argument| !argument.starts_with('-'));
    let total: usize = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20_000);
    let concurrency: usize = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(16);
    println!(
        "lab load: {VMS} VMs, {total} GETs per run, concurrency {concurrency}, 127.0.0.1, 2 worker threads"
    );
    println!("mix = VM config, VM status, VM list, cluster resources, task list (round robin)");
    for tls in [false, true] {
        let rates = measure(tls, total, concurrency).await;
        let scheme = if tls { "HTTPS" } else { "HTTP " };
        println!(
            "{scheme}  baseline GET /version {:>7.0} req/s   mix {:>7.0} req/s   ratio mix/baseline {:.2}",
            rates.baseline,
            rates.mixed,
            rates.mixed / rates.baseline
        );
    }
    println!(
        "peak RSS {:.1} MiB (VmHWM of the whole process: both labs, 100 VMs each, and the client)",
        kib_to_mib(peak_rss_kib())
    );
}

fn kib_to_mib(kib: u64) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "memory sizes are far below 2^52 KiB"
    )]
    let value = kib as f64 / 1024.0;
    value
}
