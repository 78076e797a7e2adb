//! Starting labs and clients for the tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pve::{Client, RetryPolicy, WaitEvent};
use pve_lab::{Lab, LabHandle, LabOptions};

/// The lab's seeded template.
pub const TEMPLATE: u64 = 1001;

/// A plain-HTTP lab with the template seeded and fast tasks.
pub async fn lab(adjust: impl FnOnce(&mut LabOptions)) -> LabHandle {
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    adjust(&mut options);
    Lab::start(options).await.expect("the lab starts")
}

/// A token client for `lab` with zero retry delays.
pub fn client(lab: &LabHandle) -> Client {
    client_with_token(lab, &lab.token())
}

/// A client with a given token.
pub fn client_with_token(lab: &LabHandle, token: &str) -> Client {
    Client::builder(lab.url())
        .token(token.parse().expect("lab token parses"))
        .retry(RetryPolicy::default().without_delays())
        .build()
        .expect("client builds")
}

/// The lab's node name.
pub fn node(lab: &LabHandle) -> String {
    lab.node().name().to_owned()
}

/// Collects progress events for assertions.
#[derive(Debug, Default, Clone)]
pub struct Events {
    pub events: Arc<std::sync::Mutex<Vec<WaitEvent>>>,
    pub count: Arc<AtomicUsize>,
}

impl Events {
    pub fn record(&self, event: &WaitEvent) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.events.lock().unwrap().push(event.clone());
    }

    pub fn all(&self) -> Vec<WaitEvent> {
        self.events.lock().unwrap().clone()
    }
}

/// A generous deadline for lab operations (tasks run 100x faster than on PVE).
pub const DEADLINE: Duration = Duration::from_secs(30);
