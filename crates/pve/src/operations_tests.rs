//! Clone retries and task waits against scripted answers: the cases the lab cannot force
//! on demand (a lost answer followed by "already exists", "no such task" right after
//! dispatch).

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::client::Client;
use crate::endpoints::CloneOptions;
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::test_server::{Reply, http, serve};
use crate::types::{ExitStatus, Upid};
use crate::wait::{WaitEvent, no_progress};

const UPID: &str = "UPID:pve1:00001234:00ABCDEF:6745A1B2:qmclone:9000:root@pam!lab:";
const EXISTS: &str = "500 unable to create VM 150: config file already exists";

fn client(base: &str) -> Client {
    Client::builder(base)
        .token("root@pam!lab=secret".parse().unwrap())
        .retry(RetryPolicy::default().without_delays())
        .build()
        .unwrap()
}

fn options() -> CloneOptions {
    CloneOptions {
        newid: 150,
        name: Some("jump-01".into()),
        ..CloneOptions::default()
    }
}

/// Clones template 9000 on pve1 to VM 150 with [`options`], waiting at most 5 s.
async fn clone_template(base: &str) -> Result<crate::types::VmConfig, Error> {
    client(base)
        .clone_vm_and_wait(
            "pve1",
            9000,
            &options(),
            Duration::from_secs(5),
            &no_progress,
        )
        .await
}

fn data(value: &str) -> Reply {
    http("200 OK", &format!(r#"{{"data":{value}}}"#))
}

#[tokio::test]
async fn already_exists_after_a_lost_answer_is_success_when_the_vm_is_ours() {
    // PVE 9 writes the target as a bare `lock: clone` file while the clone runs and the
    // real config (with the name) only at its end: recognise the VM after that.
    let script = serve(vec![
        Reply::Hangup,
        http(EXISTS, r#"{"data":null}"#),
        data(r#"{"lock":"clone","digest":"1"}"#),
        data(r#"{"lock":"clone","digest":"1"}"#),
        data(r#"{"name":"jump-01","digest":"abc"}"#),
    ])
    .await;
    let config = clone_template(&script.base).await.unwrap();
    assert_eq!(config.lock(), None);
    assert_eq!(config.name().as_deref(), Some("jump-01"));
    // 2 dispatches, 3 reads until the clone lock is gone, 1 final read.
    assert_eq!(script.connections.load(Ordering::SeqCst), 6);
    let requests = script.requests.lock().await;
    assert!(requests[0].starts_with("POST /api2/json/nodes/pve1/qemu/9000/clone"));
    assert!(requests[1].starts_with("POST /api2/json/nodes/pve1/qemu/9000/clone"));
    assert!(requests[2].starts_with("GET /api2/json/nodes/pve1/qemu/150/config"));
}

#[tokio::test]
async fn already_exists_then_vanished_means_the_earlier_clone_failed_and_is_sent_again() {
    let script = serve(vec![
        Reply::Hangup,
        http(EXISTS, r#"{"data":null}"#),
        data(r#"{"lock":"clone"}"#),
        http(
            "500 Configuration file 'nodes/pve1/qemu-server/150.conf' does not exist",
            r#"{"data":null}"#,
        ),
        data(&format!(r#""{UPID}""#)),
        data(&format!(
            r#"{{"upid":"{UPID}","status":"stopped","exitstatus":"OK"}}"#
        )),
        data(r#"{"name":"jump-01","digest":"abc"}"#),
    ])
    .await;
    let config = clone_template(&script.base).await.unwrap();
    assert_eq!(config.name().as_deref(), Some("jump-01"));
    let requests = script.requests.lock().await;
    let posts = requests
        .iter()
        .filter(|request| request.starts_with("POST /api2/json/nodes/pve1/qemu/9000/clone"))
        .count();
    assert_eq!(posts, 3, "{requests:#?}");
}

#[tokio::test]
async fn already_exists_after_a_lost_answer_is_a_conflict_when_the_vm_is_not_ours() {
    let script = serve(vec![
        Reply::Hangup,
        http(EXISTS, r#"{"data":null}"#),
        data(r#"{"name":"someone-else"}"#),
    ])
    .await;
    let error = clone_template(&script.base).await.unwrap_err();
    assert!(
        matches!(error, Error::Conflict { vmid: 150, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn already_exists_on_the_first_attempt_is_an_error() {
    let script = serve(vec![http(EXISTS, r#"{"data":null}"#)]).await;
    let error = clone_template(&script.base).await.unwrap_err();
    assert!(error.is_already_exists(), "{error}");
    assert_eq!(script.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn task_wait_tolerates_no_such_task_and_accepts_warnings() {
    let script = serve(vec![
        http(
            "400 Parameter verification failed.",
            r#"{"data":null,"errors":{"upid":"no such task"}}"#,
        ),
        data(&format!(r#"{{"upid":"{UPID}","status":"running"}}"#)),
        data(&format!(
            r#"{{"upid":"{UPID}","status":"stopped","exitstatus":"WARNINGS: 2"}}"#
        )),
    ])
    .await;
    let events = Mutex::new(Vec::new());
    let progress = |event: &WaitEvent| events.lock().unwrap().push(event.clone());
    let upid: Upid = UPID.parse().unwrap();
    let status = client(&script.base)
        .wait_task(&upid, Duration::from_secs(5), &progress)
        .await
        .unwrap();
    assert_eq!(status.exit(), Some(&ExitStatus::Warnings(2)));
    let events = events.into_inner().unwrap();
    assert!(
        matches!(events[0], WaitEvent::TaskNotVisibleYet { .. }),
        "{events:?}"
    );
    assert!(
        matches!(events[1], WaitEvent::TaskRunning { .. }),
        "{events:?}"
    );
    let requests = script.requests.lock().await;
    assert!(
        requests[0].starts_with(&format!("GET /api2/json/nodes/pve1/tasks/{UPID}/status")),
        "{}",
        requests[0]
    );
}

#[tokio::test]
async fn a_failed_task_returns_its_last_log_lines() {
    let failure =
        "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout";
    let script = serve(vec![
        data(&format!(r#"{{"upid":"{UPID}","status":"stopped","exitstatus":"{failure}"}}"#)),
        data(&format!(r#"[{{"n":1,"t":"create full clone of drive scsi0"}},{{"n":2,"t":"TASK ERROR: {failure}"}}]"#)),
    ])
    .await;
    let upid: Upid = UPID.parse().unwrap();
    let error = client(&script.base)
        .wait_task(&upid, Duration::from_secs(5), &no_progress)
        .await
        .unwrap_err();
    assert!(error.is_lock_timeout(), "{error}");
    let Error::TaskFailed(task) = error else {
        panic!("not a task failure")
    };
    assert_eq!(task.log_tail.len(), 2);
    assert!(task.log_tail[1].text.starts_with("TASK ERROR:"));
}

#[tokio::test]
async fn waits_end_at_their_deadline() {
    let script = serve(vec![data(&format!(
        r#"{{"upid":"{UPID}","status":"running"}}"#
    ))])
    .await;
    let upid: Upid = UPID.parse().unwrap();
    let error = client(&script.base)
        .wait_task(&upid, Duration::from_millis(300), &no_progress)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Deadline { .. }), "{error}");
    // Adaptive polling: a handful of polls in 300 ms, not one every few milliseconds.
    assert!(script.connections.load(Ordering::SeqCst) <= 6);
}

const NET0_CONFIG: &str =
    r#"{"name":"jump-01","net0":"virtio=BC:24:11:2A:3B:4C,bridge=vmbr0","digest":"d"}"#;

#[tokio::test]
async fn agent_wait_treats_not_running_and_timeouts_as_not_yet_and_skips_docker() {
    let interfaces = r#"{"result":[
        {"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[{"ip-address":"127.0.0.1","ip-address-type":"ipv4","prefix":8}]},
        {"name":"docker0","hardware-address":"02:42:ac:11:00:01","ip-addresses":[{"ip-address":"172.17.0.1","ip-address-type":"ipv4","prefix":16}]},
        {"name":"eth0","hardware-address":"bc:24:11:2a:3b:4c","ip-addresses":[{"ip-address":"192.168.10.20","ip-address-type":"ipv4","prefix":24}]}]}"#;
    let script = serve(vec![
        data(NET0_CONFIG),
        http("500 QEMU guest agent is not running", r#"{"data":null}"#),
        http(
            "500 VM 150 qmp command 'guest-network-get-interfaces' failed - got timeout",
            r#"{"data":null}"#,
        ),
        data(&interfaces.replace('\n', "")),
    ])
    .await;
    let events = Mutex::new(Vec::new());
    let progress = |event: &WaitEvent| events.lock().unwrap().push(event.clone());
    let address = client(&script.base)
        .wait_agent_address("pve1", 150, Duration::from_secs(5), &progress)
        .await
        .unwrap();
    assert_eq!(
        address,
        "192.168.10.20".parse::<std::net::IpAddr>().unwrap()
    );
    let not_ready = events
        .into_inner()
        .unwrap()
        .into_iter()
        .filter(|event| matches!(event, WaitEvent::AgentNotReady { .. }))
        .count();
    // "not running" is a definite answer (a wait event); the agent timeout is a transient
    // 500 the transport already repeats.
    assert_eq!(not_ready, 1);
    assert_eq!(script.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn agent_wait_ends_at_once_on_403() {
    let script = serve(vec![
        data(NET0_CONFIG),
        http(
            "403 Permission check failed (/vms/150, VM.GuestAgent.Audit)",
            r#"{"data":null}"#,
        ),
    ])
    .await;
    let started = std::time::Instant::now();
    let error = client(&script.base)
        .wait_agent_address("pve1", 150, Duration::from_secs(30), &no_progress)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn already_exists_inside_the_task_after_a_lost_answer_is_success_when_the_vm_is_ours() {
    let failure = "unable to create VM 150: config file already exists";
    let script = serve(vec![
        Reply::Hangup,
        data(&format!(r#""{UPID}""#)),
        data(&format!(
            r#"{{"upid":"{UPID}","status":"stopped","exitstatus":"{failure}"}}"#
        )),
        data(&format!(r#"[{{"n":1,"t":"TASK ERROR: {failure}"}}]"#)),
        data(r#"{"lock":"clone"}"#),
        data(r#"{"name":"jump-01","digest":"abc"}"#),
    ])
    .await;
    let config = clone_template(&script.base).await.unwrap();
    assert_eq!(config.name().as_deref(), Some("jump-01"));
}

#[tokio::test]
async fn a_delete_whose_answer_a_proxy_lost_is_success_once_the_vm_is_gone() {
    let gone = "500 Configuration file 'nodes/pve1/qemu-server/150.conf' does not exist";
    let script = serve(vec![
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        // PVE started the purge, the proxy in front answered 502; the retry finds no VM.
        http("502 Bad Gateway", ""),
        http(gone, r#"{"data":null}"#),
        http(gone, r#"{"data":null}"#),
    ])
    .await;
    let deleted = client(&script.base)
        .delete_vm_and_wait("pve1", 150, Duration::from_secs(5), &no_progress)
        .await
        .unwrap();
    assert!(deleted);
    let requests = script.requests.lock().await;
    assert!(requests[1].starts_with("DELETE /api2/json/nodes/pve1/qemu/150"));
    assert!(requests[2].starts_with("DELETE /api2/json/nodes/pve1/qemu/150"));
    assert!(requests[3].starts_with("GET /api2/json/nodes/pve1/qemu/150/config"));
}

#[tokio::test]
async fn a_delete_refused_on_the_first_answer_is_an_error() {
    let script = serve(vec![
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        http("500 VM 150 is running - destroy failed", r#"{"data":null}"#),
    ])
    .await;
    let error = client(&script.base)
        .delete_vm_and_wait("pve1", 150, Duration::from_secs(5), &no_progress)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("is running"), "{error}");
    assert_eq!(script.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_retried_delete_refused_for_another_reason_fails_at_once() {
    let script = serve(vec![
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        http("502 Bad Gateway", ""),
        http("500 VM 150 is running - destroy failed", r#"{"data":null}"#),
    ])
    .await;
    let error = client(&script.base)
        .delete_vm_and_wait("pve1", 150, Duration::from_secs(30), &no_progress)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("is running"), "{error}");
    // No polling for a VM that is not going away: the config read, the 502, the refusal.
    assert_eq!(script.connections.load(Ordering::SeqCst), 3);
}

/// A reset before PVE read the DELETE (the lab's `reset` fault): the VM stays; the delete
/// is sent again at once instead of waiting out the deadline for a VM that is not going.
#[tokio::test]
async fn a_delete_lost_before_it_arrived_is_sent_again() {
    let script = serve(vec![
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        Reply::Hangup,
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        data(&format!(r#""{UPID}""#)),
        data(&format!(
            r#"{{"upid":"{UPID}","status":"stopped","exitstatus":"OK"}}"#
        )),
    ])
    .await;
    let deleted = client(&script.base)
        .delete_vm_and_wait("pve1", 150, Duration::from_secs(60), &no_progress)
        .await
        .unwrap();
    assert!(deleted);
    let requests = script.requests.lock().await;
    // The config read that found the VM still there, then the delete sent again.
    assert!(
        requests[2].starts_with("GET /api2/json/nodes/pve1/qemu/150/config"),
        "{requests:?}"
    );
    assert!(
        requests[3].starts_with("DELETE /api2/json/nodes/pve1/qemu/150"),
        "{requests:?}"
    );
    assert_eq!(script.connections.load(Ordering::SeqCst), 5);
}

/// The first delete did start (its lock holds): the second is refused as locked, and the
/// wait goes on until the VM is gone.
#[tokio::test]
async fn a_delete_already_running_is_waited_for_not_failed() {
    let gone = "500 Configuration file 'nodes/pve1/qemu-server/150.conf' does not exist";
    let script = serve(vec![
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        Reply::Hangup,
        data(r#"{"name":"jump-01","digest":"abc","lock":"destroyed"}"#),
        http("500 VM is locked (destroyed)", r#"{"data":null}"#),
        http(gone, r#"{"data":null}"#),
    ])
    .await;
    let deleted = client(&script.base)
        .delete_vm_and_wait("pve1", 150, Duration::from_secs(30), &no_progress)
        .await
        .unwrap();
    assert!(deleted);
}

/// PVE takes the config lock inside the delete task: a second delete while the first runs
/// gets a task that fails on the lock. That is the first delete at work: wait on.
#[tokio::test]
async fn a_second_delete_failing_on_the_lock_waits_for_the_first() {
    let gone = "500 Configuration file 'nodes/pve1/qemu-server/150.conf' does not exist";
    let script = serve(vec![
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        Reply::Hangup,
        data(r#"{"name":"jump-01","digest":"abc"}"#),
        data(&format!(r#""{UPID}""#)),
        data(&format!(
            r#"{{"upid":"{UPID}","status":"stopped","exitstatus":"can't lock file '/var/lock/qemu-server/lock-150.conf' - got timeout"}}"#
        )),
        http(gone, r#"{"data":null}"#),
    ])
    .await;
    let deleted = client(&script.base)
        .delete_vm_and_wait("pve1", 150, Duration::from_secs(30), &no_progress)
        .await
        .unwrap();
    assert!(deleted);
}
