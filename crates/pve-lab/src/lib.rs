//! The lab: a Proxmox VE API server on 127.0.0.1.
//!
//! Why: no cluster is reachable from a laptop or CI, and operators want to rehearse a
//! pipeline before touching their cluster. The lab speaks the same wire format as a real
//! PVE 9 node (validated against the official schema) so that unmodified third-party
//! clients work against it, and tests start it in-process on `127.0.0.1:0`.

pub mod api;
pub mod auth;
mod connection;
mod control;
pub mod faults;
pub mod guest;
pub mod node;
pub mod permissions;
mod router;
pub mod schema;
mod server;
pub mod testing;
pub mod tls;
pub mod wire;

pub use faults::{FaultSpec, FaultSpecError, Faults, HttpFault, InjectedCounts};
pub use schema::returns::{check_response, check_returns};
pub use server::{Lab, LabError, LabHandle, LabOptions};
