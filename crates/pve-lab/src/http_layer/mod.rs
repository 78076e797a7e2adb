//! The HTTP layer: from a TCP socket to a call into the node, in one direction.
//!
//! Why a direction: each level only calls the one below it, so a change to request
//! handling never has to look upward, and each level can be read on its own:
//!
//! ```text
//! server -> connection -> router -> control   (and the node, via `Node::handle`)
//!    all four -> shared                       (the leaf: imports none of them)
//! ```
//!
//! `server` starts a lab and owns the handle tests hold; `connection` accepts sockets and
//! serves one hyper connection each; `router` takes one request through faults, schema,
//! authentication and permissions to the node; `control` answers the lab's own `/lab/...`
//! endpoints. [`shared`] holds what several levels need (the handlers' state, the
//! reset error, body reading) and imports none of them. The wire format itself is
//! [`crate::wire`], below all of this.

mod connection;
mod control;
mod router;
mod server;
mod shared;

pub use self::server::{Lab, LabError, LabHandle, LabOptions};
