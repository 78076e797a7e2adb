//! `destroy` when the graceful shutdown fails: it falls back to a hard stop, then deletes
//! with purge (issue 5: "shutdown with a timeout, stop as fallback").
//!
//! The lab fails exactly the shutdown task: task faults are switched on before `destroy`
//! and off again by a request hook as soon as the shutdown request has been answered (the
//! lab draws a task's fault when it creates the task), so the stop and the delete that
//! follow run normally.

use std::sync::{Arc, Mutex};

use pve::Method;
use pve::metrics::{RequestEvent, RequestHook};
use pve_lab::node::TaskFaults;
use sombrero_core::deploy::{self, DeployEvent, Timeouts};

use super::deploy::{client, deploy_env, desired, lab};

#[tokio::test]
async fn a_failed_shutdown_falls_back_to_stop_then_delete() {
    let lab = lab().await;
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    deploy_env(&client(&lab, &lab.token()), &desired)
        .await
        .unwrap();

    let writes: Arc<Mutex<Vec<String>>> = Arc::default();
    let hook: RequestHook = {
        let writes = Arc::clone(&writes);
        let node = lab.node().clone();
        Arc::new(move |event: &RequestEvent| {
            if event.method != Method::Get {
                writes
                    .lock()
                    .unwrap()
                    .push(format!("{:?} {}", event.method, event.path));
            }
            if event.method == Method::Post && event.path.ends_with("/status/shutdown") {
                node.set_task_faults(TaskFaults::default());
            }
        })
    };
    let watched = pve::Client::builder(lab.url())
        .token(lab.token().parse().unwrap())
        .on_request(hook)
        .build()
        .unwrap();
    lab.node().set_task_faults(TaskFaults {
        task_fail: 1.0,
        ..TaskFaults::default()
    });
    let events: Mutex<Vec<String>> = Mutex::default();
    let record = |event: &DeployEvent| events.lock().unwrap().push(format!("{event:?}"));
    let report = deploy::destroy(&watched, &desired, Timeouts::default(), &record)
        .await
        .unwrap();
    assert!(report.deleted);
    assert!(watched.vm_config_opt("lloyd", 152).await.unwrap().is_none());
    let writes = writes.lock().unwrap().clone();
    let position = |suffix: &str| {
        writes
            .iter()
            .position(|write| write.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in {writes:?}"))
    };
    let (shutdown, stop) = (position("/status/shutdown"), position("/status/stop"));
    let delete = writes
        .iter()
        .position(|write| write.starts_with("Delete /nodes/lloyd/qemu/152"))
        .unwrap_or_else(|| panic!("no delete in {writes:?}"));
    assert!(shutdown < stop && stop < delete, "{writes:?}");
    assert!(
        !dir.path().join("outputs").join("staging").exists(),
        "the environment's outputs are removed"
    );
}
