//! A typed async client for the Proxmox VE HTTP API.
//!
//! Why a crate of its own: every stage of sombrero talks to Proxmox, and the failure modes
//! operators hit with existing clients (lock timeouts, clone-lock races, nextid races,
//! hanging agent waits, `sshkeys` encoding, resize surprises, fixed sleeps) are all
//! properties of the client. Keeping it free of printing and of sombrero's domain lets the
//! lab and the tests use exactly the same types the stages do.
//!
//! ```no_run
//! # async fn example() -> Result<(), pve::Error> {
//! use std::time::Duration;
//! use pve::endpoints::CloneOptions;
//!
//! let token: pve::ApiToken = "terraform@pve!token=5ec7e7-a1b2".parse().expect("token");
//! let fingerprint = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
//! let client = pve::Client::builder("https://pve.example.invalid:8006")
//!     .token(token)
//!     .tls(pve::TlsMode::Fingerprint(fingerprint.parse().expect("fingerprint")))
//!     .build()?;
//! let options = CloneOptions { newid: 150, name: Some("jump-01".into()), ..CloneOptions::default() };
//! let progress = |event: &pve::WaitEvent| tracing::info!(?event, "waiting");
//! let config = client
//!     .clone_vm_and_wait("pve1", 9000, &options, Duration::from_secs(600), &progress)
//!     .await?;
//! client.start_vm_and_wait("pve1", 150, Duration::from_secs(120), &progress).await?;
//! let address = client
//!     .wait_agent_address("pve1", 150, Duration::from_secs(300), &pve::no_progress)
//!     .await?;
//! # let _ = (config, address);
//! # Ok(())
//! # }
//! ```
//!
//! Retry delays are zeroed in tests with `SOMBRERO_RETRY_DELAY_MS=0` (see [`retry`]).

pub mod api;
pub mod auth;
pub mod builder;
pub mod client;
mod creation;
pub mod endpoints;
pub mod error;
pub mod lenient;
pub mod metrics;
pub mod operations;
pub mod request;
mod response;
pub mod retry;
pub mod secret;
pub mod tls;
pub mod token;
pub mod types;
pub mod wait;

#[cfg(test)]
mod test_server;

pub use auth::Credentials;
pub use builder::{ClientBuilder, DEFAULT_MAX_RESPONSE_BYTES, REQUEST_TIMEOUT_ENV};
pub use client::Client;
pub use error::{ApiError, Error, Permission, RetrySafety};
pub use metrics::{MetricsSnapshot, RequestEvent, RequestHook};
pub use operations::GrowOutcome;
pub use request::{Method, Params, PathScope, Request, RetryRule};
pub use retry::{RETRY_DELAY_ENV, RetryPolicy};
pub use secret::Secret;
pub use tls::{Fingerprint, TlsMode, TlsProblem};
pub use token::{ApiToken, TokenParseError};
pub use types::*;
pub use wait::{Progress, WaitEvent, no_progress};
