//! The binary's integration tests: one test binary, one module per feature.

mod api;
mod bad_input;
mod config;
mod history;
mod history_fixture;
mod history_report;
mod lab_serve;
mod sandbox;
mod secrets;
