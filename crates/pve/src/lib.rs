//! A typed async client for the Proxmox VE HTTP API.
//!
//! Why a crate of its own: every stage of sombrero talks to Proxmox, and the failure modes
//! operators hit with existing clients (lock timeouts, clone-lock races, nextid races,
//! hanging agent waits, `sshkeys` encoding, resize surprises, fixed sleeps) are all
//! properties of the client. Keeping it free of printing and of sombrero's domain lets the
//! lab and the tests use exactly the same types the stages do.

#![cfg_attr(
    test,
    expect(
        clippy::unwrap_used,
        reason = "unit tests fail loudly on unexpected errors"
    )
)]

pub mod api;
pub mod auth;
pub mod builder;
pub mod client;
pub mod endpoints;
pub mod error;
pub mod lenient;
pub mod metrics;
pub mod operations;
pub mod request;
pub mod retry;
pub mod secret;
pub mod tls;
pub mod token;
pub mod types;
pub mod wait;

#[cfg(test)]
mod test_server;

pub use auth::Credentials;
pub use builder::ClientBuilder;
pub use client::Client;
pub use error::{ApiError, Error, Permission, RetrySafety};
pub use metrics::{MetricsSnapshot, RequestEvent, RequestHook};
pub use operations::GrowOutcome;
pub use request::{Method, Params, Request, RetryRule};
pub use retry::{RETRY_DELAY_ENV, RetryPolicy};
pub use secret::Secret;
pub use tls::{Fingerprint, TlsMode};
pub use token::{ApiToken, TokenParseError};
pub use types::*;
pub use wait::{Progress, WaitEvent, no_progress};
