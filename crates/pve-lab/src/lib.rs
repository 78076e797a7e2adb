//! The lab: a Proxmox VE API server on 127.0.0.1.
//!
//! Why: no cluster is reachable from a laptop or CI, and operators want to rehearse a
//! pipeline before touching their cluster. The lab speaks the same wire format as a real
//! PVE 9 node (validated against the official schema) so that unmodified third-party
//! clients work against it, and tests start it in-process on `127.0.0.1:0`.

pub mod api;
pub mod auth;
pub mod faults;
mod http_layer;
pub mod node;
pub mod permissions;
pub mod qemu;
pub mod requests;
pub mod schema;
pub mod testing;
pub mod tls;
pub mod wire;

/// The QEMU backend under its earlier name, so `pve_lab::guest::...` paths keep working.
pub use self::qemu as guest;
pub use faults::{FaultSpec, FaultSpecError, Faults, HttpFault, InjectedCounts};
pub use http_layer::{Lab, LabError, LabHandle, LabOptions};
pub use schema::returns::{check_response, check_returns};
