//! OpenSSH to the environment's VM, for the stages that work inside it (configure, and
//! later verify and build).
//!
//! Why the `ssh` binary and not an SSH library: operators' keys, agents, `known_hosts`
//! files and `~/.ssh/config` habits are OpenSSH's, and Ansible drives the same binary; a
//! check that passes here passes for them. Every connection pins the host key deploy
//! recorded (`StrictHostKeyChecking=yes` with the environment's `known_hosts`), and one
//! [`Session`] multiplexes all its commands over a single connection (`ControlMaster`), which
//! Ansible joins when it is given the same control directory.

pub mod key;
mod session;

pub use key::{KeyError, KeySearch, PrivateKey};
pub use session::{RemoteOutput, Session, SshError, SshTarget};
