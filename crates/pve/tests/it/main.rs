//! Integration tests of the client against the in-process lab on 127.0.0.1.
//!
//! Why one binary: DESIGN.md rule 6. Tests unwrap: any unexpected error should fail loudly
//! with its full debug text.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod common;
mod endpoints;
mod faults;
mod real_guest;
mod templates;
mod tls;
