//! A typed async client for the Proxmox VE HTTP API.
//!
//! Why a crate of its own: every stage of sombrero talks to Proxmox, and the failure modes
//! operators hit with existing clients (lock timeouts, clone-lock races, nextid races,
//! hanging agent waits, `sshkeys` encoding, resize surprises, fixed sleeps) are all
//! properties of the client. Keeping it free of printing and of sombrero's domain lets the
//! lab and the tests use exactly the same types the stages do.

pub mod secret;
pub mod token;

pub use secret::Secret;
pub use token::{ApiToken, TokenParseError};
