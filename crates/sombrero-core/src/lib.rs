//! sombrero's domain: settings, environments, stages, stage outputs and history.
//!
//! Why a separate crate from the binary: the domain emits values and events and never
//! prints, so the CLI, tests and benchmarks drive the same code, and output formatting
//! stays in one place (the binary's printer).

pub mod build;
pub mod configure;
pub mod deploy;
pub mod diagnose;
pub mod doctor;
pub mod history;
pub mod lock;
pub mod settings;
pub mod ssh;
pub mod verify;
