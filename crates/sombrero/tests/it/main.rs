//! The binary's integration tests: one test binary, one module per feature.

mod api;
mod bad_input;
mod config;
mod deploy;
mod deploy_cli;
mod deploy_errors;
mod deploy_forward;
mod deploy_outputs;
mod history;
mod history_fixture;
mod history_report;
mod lab_serve;
mod sandbox;
mod secrets;
