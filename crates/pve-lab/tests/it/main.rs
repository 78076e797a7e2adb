//! Integration tests of the lab: one binary, the lab started in-process on 127.0.0.1:0.
//!
//! Why one binary: DESIGN.md rule 6 (link once, share helpers). `common` holds the client
//! helpers and the schema check every node test applies to every response.

mod common;

mod auth;
mod cluster;
mod faults;
mod fuzz;
mod guests;
mod lab;
mod node_flow;
mod tls;
mod validation;
mod wire;
