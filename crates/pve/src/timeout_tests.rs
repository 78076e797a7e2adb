//! Silent servers: a request that gets no answer fails after its timeout and one more
//! try, not after every attempt of the retry policy; the timeout is configurable.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::builder::request_timeout_from;
use crate::client::Client;
use crate::request::{Method, Request};
use crate::retry::RetryPolicy;

/// A server that accepts connections, reads nothing and never answers; counts them.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (base, accepted)
}

#[tokio::test]
async fn a_silent_server_is_given_up_after_two_timed_out_attempts() {
    let (base, accepted) = silent_server().await;
    let client = Client::builder(&base)
        .token("root@pam!lab=s3cret-value".parse().unwrap())
        .request_timeout(Duration::from_millis(200))
        .retry(RetryPolicy::default().without_delays())
        .build()
        .unwrap();
    // A read: the policy would retry it 8 times.
    let error = client
        .execute(&Request::new(Method::Get, "/version".into()))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the timeout and one more try"
    );
    assert_eq!(client.metrics().total(), 2);
}

#[test]
fn the_request_timeout_is_read_in_whole_seconds() {
    assert_eq!(request_timeout_from(None), Duration::from_secs(60));
    assert_eq!(request_timeout_from(Some("15")), Duration::from_secs(15));
    assert_eq!(request_timeout_from(Some(" 5 ")), Duration::from_secs(5));
    assert_eq!(request_timeout_from(Some("0")), Duration::from_secs(60));
    assert_eq!(request_timeout_from(Some("soon")), Duration::from_secs(60));
}
